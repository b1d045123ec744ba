/**
 * The OpenAI-compatible routes, as a fastify plugin over a ServingState:
 * /v1/chat/completions, /v1/completions, /v1/models, /tokenize, /detokenize,
 * /metrics, /health, /ready. Mount it on any fastify app (createServer does,
 * with the server-wide settings), over engines the caller loaded.
 */
import { createHash, timingSafeEqual } from "node:crypto";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { Counter, Histogram, Registry } from "prom-client";
import type { Engine } from "../engine.js";
import { runCompletion, type CompletionKind, type RunSummary } from "./completion-run.js";
import { HttpError, toHttpFailure } from "./http-errors.js";
import { chatPlan, completionPlan, type CompletionPlan, withRouteHeaders } from "./openai-requests.js";
import { chatCompletionBody, completionBody, detokenizeBody, tokenizeBody, unknownFields } from "./openai-schemas.js";
import type { ServingState } from "./serving-state.js";
import type { AuditLog } from "../audit/audit-log.js";
import { TenantMetrics } from "../metrics/tenant-metrics.js";
import type { Tenant, TenantRegistry } from "../tenants/tenants.js";
import { Accounting } from "./accounting.js";

export interface RoutesOptions {
  state: ServingState;
  /** Bearer keys that may call the API; none: no authentication. /health and /ready are always open. */
  apiKeys?: readonly string[];
  /** Where the HTTP metrics go, and what /metrics exposes (a Runtime's registry: engine and GPU metrics too). */
  registry?: Registry;
  /** Seconds between keep-alive comments of an idle stream. Default 15. */
  keepAliveSeconds?: number;
  /** Log prompts and outputs with each request. Default false. */
  logPrompts?: boolean;
  /** Tenants: their keys may call the API too, within their limits. */
  tenants?: TenantRegistry;
  /** Where each completion's record goes. */
  audit?: AuditLog;
}

const OPEN_ROUTES = new Set(["/health", "/ready"]);
const digest = (key: string) => createHash("sha256").update(key).digest();

export async function neoserveRoutes(app: FastifyInstance, options: RoutesOptions): Promise<void> {
  const { state } = options;
  const registry = options.registry ?? new Registry();
  const keys = (options.apiKeys ?? []).map((k) => ({ digest: digest(k), id: `key-${digest(k).toString("hex").slice(0, 8)}` }));
  const keepAliveMs = (options.keepAliveSeconds ?? 15) * 1000;
  const httpRequests = new Counter({ name: "neoserve_http_requests_total", help: "HTTP requests by route and status", labelNames: ["route", "method", "status"], registers: [registry] });
  const httpSeconds = new Histogram({
    name: "neoserve_http_request_duration_seconds",
    help: "HTTP request duration (to the end of a stream), seconds",
    labelNames: ["route", "method"],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120],
    registers: [registry],
  });
  const keyIds = new WeakMap<FastifyRequest, string>();
  const tenantOf = new WeakMap<FastifyRequest, Tenant>();
  const accounting = new Accounting({
    audit: options.audit,
    metrics: options.tenants ? new TenantMetrics(registry) : undefined,
    log: (err) => app.log.error({ err }, "audit write failed"),
  });
  const startedAt = new WeakMap<FastifyRequest, number>();
  const observe = (request: FastifyRequest, status: number) => {
    const route = request.routeOptions.url ?? "unknown";
    httpRequests.inc({ route, method: request.method, status: String(status) });
    httpSeconds.observe({ route, method: request.method }, (performance.now() - (startedAt.get(request) ?? performance.now())) / 1000);
  };

  app.addHook("onRequest", async (request) => {
    startedAt.set(request, performance.now());
    if ((keys.length === 0 && !options.tenants) || OPEN_ROUTES.has(request.url.split("?")[0]!)) return;
    const header = request.headers.authorization ?? "";
    const key = header.startsWith("Bearer ") ? header.slice(7) : "";
    const given = digest(key);
    let match: string | undefined;
    for (const k of keys) if (timingSafeEqual(k.digest, given)) match = k.id; // every key compared: no early exit
    const tenant = options.tenants?.byKey(key);
    if (tenant) {
      tenantOf.set(request, tenant);
      match = `tenant-${tenant.name}`;
    }
    if (!match) throw new HttpError(401, "a valid API key is required: Authorization: Bearer <key>", null, "invalid_api_key");
    keyIds.set(request, match);
  });
  app.addHook("onSend", async (request, reply) => {
    reply.header("x-request-id", request.id);
  });
  app.addHook("onResponse", async (request, reply) => observe(request, reply.statusCode));
  app.setErrorHandler((err, request, reply) => {
    const failure = toHttpFailure(err, (e) => request.log.error({ err: e }, "internal error"));
    void reply.code(failure.status).headers(failure.headers).send(failure.body);
  });

  const engineFor = (model: unknown): Engine => {
    if (state.phase === "loading") throw new HttpError(503, "the server is loading its models", null, "loading", 5);
    if (state.phase === "draining") throw new HttpError(503, "the server is shutting down", null, "shutting_down", 5);
    const engine = state.engines.get(String(model));
    if (!engine) throw new HttpError(404, `no model ${JSON.stringify(model)} here; GET /v1/models lists them`, "model", "model_not_found");
    return engine;
  };

  const completion = (kind: CompletionKind, schema: { properties: object }, plan: (body: Record<string, unknown>) => CompletionPlan) =>
    async (request: FastifyRequest, reply: FastifyReply) => {
      const body = withRouteHeaders(request.body as Record<string, unknown>, request.headers);
      const ignored = unknownFields(body, schema);
      if (ignored.length) request.log.debug({ ignored }, "unknown fields ignored");
      const engine = engineFor(body.model);
      const log = (s: RunSummary) => {
        request.log.info(
          {
            model: body.model,
            key: keyIds.get(request),
            tenant: tenantOf.get(request)?.name,
            user: body.user,
            status: s.status,
            promptTokens: s.promptTokens,
            completionTokens: s.completionTokens,
            finish: s.finishReasons,
            ttftMs: s.timeToFirstTokenMs,
            totalMs: performance.now() - (startedAt.get(request) ?? 0),
            ...(options.logPrompts ? { input: body.messages ?? body.prompt } : {}),
          },
          "completion",
        );
      };
      const model = String(body.model);
      const ticket = accounting.admit(request.id, model, tenantOf.get(request), plan(body));
      let summary: RunSummary | undefined;
      let status = 500;
      try {
        return await runCompletion(
          { engine, model, kind, keepAliveMs, track: (c) => state.track(c), log: (s) => ((summary = s), log(s)) },
          ticket.plan,
          request,
          reply,
        );
      } catch (err) {
        status = toHttpFailure(err, () => {}).status;
        throw err;
      } finally {
        accounting.settle(ticket, engine, state.prices.get(model), summary, status);
      }
    };

  app.post("/v1/chat/completions", { schema: { body: chatCompletionBody } }, completion("chat", chatCompletionBody, chatPlan));
  app.post("/v1/completions", { schema: { body: completionBody } }, completion("text", completionBody, completionPlan));

  const started = Math.floor(Date.now() / 1000);
  app.get("/v1/models", async () => ({
    object: "list",
    data: [...state.engines].map(([id, engine]) => ({
      id,
      object: "model",
      created: started,
      owned_by: "neoserve",
      root: engine.info.source,
      max_model_len: engine.info.maxContext,
    })),
  }));

  app.post("/tokenize", { schema: { body: tokenizeBody } }, async (request) => {
    const body = request.body as { model: string; prompt?: string; messages?: { role: string; content: string }[]; add_special_tokens?: boolean; add_generation_prompt?: boolean };
    const engine = engineFor(body.model);
    if ((body.prompt === undefined) === (body.messages === undefined)) throw new HttpError(400, "give exactly one of prompt or messages", "prompt");
    const ids = await engine.tokenize(
      body.prompt !== undefined
        ? { prompt: body.prompt, addSpecialTokens: body.add_special_tokens ?? true }
        : { messages: body.messages!.map((m) => ({ role: m.role, content: typeof m.content === "string" ? m.content : "" })), parseSpecialTokens: false, addGenerationPrompt: body.add_generation_prompt ?? true },
    );
    return { count: ids.length, max_model_len: engine.info.maxContext, tokens: Array.from(ids) };
  });

  app.post("/detokenize", { schema: { body: detokenizeBody } }, async (request) => {
    const body = request.body as { model: string; tokens: number[] };
    const engine = engineFor(body.model);
    const vocab = engine.info.vocabSize;
    const bad = body.tokens.findIndex((t) => t >= vocab);
    if (bad >= 0) throw new HttpError(400, `tokens[${bad}] = ${body.tokens[bad]} is outside the vocabulary [0, ${vocab})`, `tokens[${bad}]`);
    return { prompt: await engine.detokenize(body.tokens) };
  });

  app.get("/metrics", async (_request, reply) => {
    void reply.header("content-type", registry.contentType);
    return registry.metrics();
  });

  app.get("/health", async (_request, reply) => {
    const stalled = state.stalled();
    if (stalled.length) return reply.code(503).send({ status: "stalled", stalled });
    return { status: "ok" };
  });

  app.get("/ready", async (_request, reply) => {
    if (state.phase !== "ready") return reply.code(503).send({ status: state.phase });
    return { status: "ready" };
  });
}
