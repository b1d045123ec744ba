/**
 * createServer(): a fastify app serving the OpenAI API over engines the
 * caller loaded, with the server-wide settings routes cannot set themselves:
 * request ids (a client's x-request-id, else a fresh one), a body-size limit,
 * strict schema validation (no type coercion), 503 while closing, JSON logs
 * (pino), and OpenAI's envelope for unknown routes.
 */
import { randomUUID } from "node:crypto";
import type { FastifyInstance, FastifyServerOptions } from "fastify";
import type { Registry } from "prom-client";
import type { AuditLog } from "../audit/audit-log.js";
import type { Engine } from "../engine.js";
import { lazyRequire } from "../lazy-require.js";
import type { TenantRegistry } from "../tenants/tenants.js";
import { neoserveRoutes } from "./routes.js";
import { ServingState } from "./serving-state.js";

const fastify = lazyRequire<typeof import("fastify")>("fastify");

export interface ServerOptions {
  /** The engines to serve, by model name; more can be added (server.neoserve.addModel). */
  models?: Record<string, Engine>;
  /** Bearer keys that may call the API; none: no authentication. */
  apiKeys?: readonly string[];
  /** Largest request body, bytes; larger is a 413. Default 16 MiB. */
  bodyLimit?: number;
  /** Where HTTP metrics go and what /metrics exposes (pass a Runtime's: runtime.metrics()). */
  registry?: Registry;
  /** fastify's logger option: pino settings, or false. Default: JSON lines at info to stdout. */
  logger?: FastifyServerOptions["logger"];
  /** Seconds between keep-alive comments of an idle stream. Default 15. */
  keepAliveSeconds?: number;
  /** Log prompts and outputs. Default false. */
  logPrompts?: boolean;
  /** /health fails when an engine with work in flight makes no progress for this long, ms. Default 30000. */
  healthStallMs?: number;
  /** Tenants: their keys may call the API too, within their limits and budgets. */
  tenants?: TenantRegistry;
  /** The audit trail: one hash-chained record per completion. */
  audit?: AuditLog;
}

export type NeoserveServer = FastifyInstance & { neoserve: ServingState };

const REQUEST_ID = /^[\w.:-]{1,128}$/;

export function createServer(options: ServerOptions = {}): NeoserveServer {
  const { default: Fastify, LogController } = fastify();
  const app = Fastify({
    logger: options.logger ?? { level: "info" },
    logController: new LogController({ disableRequestLogging: true }), // one line per completion, with tokens and timings, from the routes
    bodyLimit: options.bodyLimit ?? 16 << 20,
    return503OnClosing: true,
    genReqId: (req) => {
      const given = req.headers["x-request-id"];
      return typeof given === "string" && REQUEST_ID.test(given) ? given : randomUUID();
    },
    ajv: { customOptions: { coerceTypes: false, removeAdditional: false, allErrors: false } },
  }) as unknown as NeoserveServer;
  const state = new ServingState(options.healthStallMs ?? 30_000);
  for (const [name, engine] of Object.entries(options.models ?? {})) state.addModel(name, engine);
  if (options.models) state.setReady();
  app.decorate("neoserve", state);
  app.removeContentTypeParser("text/plain"); // JSON only: anything else is a 415
  app.setNotFoundHandler((request, reply) => {
    void reply.code(404).send({ error: { message: `no route ${request.method} ${request.url.split("?")[0]}`, type: "not_found_error", param: null, code: "route_not_found" } });
  });
  void app.register(neoserveRoutes, {
    state,
    apiKeys: options.apiKeys,
    registry: options.registry,
    keepAliveSeconds: options.keepAliveSeconds,
    logPrompts: options.logPrompts,
    tenants: options.tenants,
    audit: options.audit,
  });
  return app;
}
