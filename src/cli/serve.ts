/**
 * `neoserve serve`: the OpenAI API over HTTP. It listens at once (/ready is
 * 503 while the models load), loads each model (a pool when it has slices),
 * then serves; SIGTERM or SIGINT drains it: new work gets 503, requests in
 * flight get --shutdown-timeout seconds to finish, the rest are cancelled with
 * a final chunk saying why, engines are disposed, and it exits 0.
 */
import type { Command } from "commander";
import { collectDefaultMetrics } from "prom-client";
import { ConfigError } from "../errors.js";
import type { Engine } from "../engine.js";
import { PRIVACY_CLASSES } from "../router/route-decision.js";
import type { Backend } from "../router/router.js";
import { AuditLog } from "../audit/audit-log.js";
import { FairQueue } from "../tenants/fair-queue.js";
import { TenantRegistry } from "../tenants/tenants.js";
import { Runtime } from "../runtime.js";
import { createServer } from "../server/create-server.js";
import { type ConfigFile, type ModelConfig, parseModelFlag, readConfigFile, readKeysFile, SERVE_DEFAULTS } from "../server/config.js";
import { defaultModelPath, ENGINE_FLAGS, integer, loadOption, number, schedulerFlags } from "./options.js";

export interface ServeFlags {
  model?: string[];
  config?: string;
  host?: string;
  port?: number;
  apiKey?: string[];
  apiKeysFile?: string;
  shutdownTimeout?: number;
  bodyLimit?: number;
  logPrompts?: boolean;
  [option: string]: unknown;
}

const collect = (value: string, list: string[] = []) => [...list, value];

export function registerServe(program: Command): void {
  const command = program
    .command("serve")
    .description("serve models over the OpenAI API (chat and text completions, streaming)")
    .option("-m, --model <[name=]path>", "a model to serve (repeatable); a path alone is named after its file", collect)
    .option("-c, --config <file>", "a YAML or JSON file of models and server settings (flags override it)")
    .option("--host <address>", `address to listen on (default: ${SERVE_DEFAULTS.host})`)
    .option("-p, --port <n>", `port (default: ${SERVE_DEFAULTS.port})`, integer)
    .option("--api-key <key>", "a key clients must send as Authorization: Bearer (repeatable; also NEOSERVE_API_KEYS, comma-separated)", collect)
    .option("--api-keys-file <file>", "a file of API keys, one per line")
    .option("--shutdown-timeout <seconds>", `seconds requests in flight get to finish on SIGTERM (default: ${SERVE_DEFAULTS.shutdownTimeout})`, number)
    .option("--body-limit <bytes>", "largest request body (default: 16 MiB)", integer)
    .option("--log-prompts", "log prompts and outputs with each request");
  for (const name of ENGINE_FLAGS)
    if (name === "threads") command.option(`--${name} <n>`, loadOption(name), integer);
    else command.option(`--${name} <value>`, loadOption(name));
  for (const f of schedulerFlags())
    command.option(f.flag, f.name === "batchWindowMs" ? `${f.help.replace(/ \(default: [^)]*\)$/, "")} (default here: ${SERVE_DEFAULTS.batchWindowMs})` : f.help, f.parse);
  command.action((flags: ServeFlags) => serve(flags));
}

// Load options of the generated flags that are not scheduler knobs: they sit beside path and threads in a model's config.
const LOAD_LEVEL = ["memoryLimitBytes", "weightCache", "weightCacheCheck"] as const satisfies readonly (keyof ModelConfig)[];

/** Each model's load options: serve's defaults, the config file's over them, the command's flags over both. */
export function withFlags(model: ModelConfig, flags: ServeFlags): ModelConfig {
  const out: ModelConfig = { ...model, scheduler: { batchWindowMs: SERVE_DEFAULTS.batchWindowMs, ...model.scheduler } };
  for (const name of ENGINE_FLAGS) if (flags[name] !== undefined) (out as unknown as Record<string, unknown>)[name] = flags[name];
  for (const f of schedulerFlags()) {
    const value = flags[f.name];
    if (value === undefined) continue;
    const target = (LOAD_LEVEL as readonly string[]).includes(f.name) ? out : out.scheduler!;
    (target as Record<string, unknown>)[f.name] = value;
  }
  return out;
}

async function serve(flags: ServeFlags): Promise<void> {
  const file: ConfigFile = flags.config ? await readConfigFile(flags.config) : { server: {}, models: {}, remotes: {}, routes: {}, tenants: {} };
  const { server } = file;
  const models: Record<string, ModelConfig> = { ...file.models };
  for (const flag of flags.model ?? []) {
    const [name, path] = parseModelFlag(flag);
    models[name] = { ...models[name], path };
  }
  if (Object.keys(models).length === 0) models.tiny = { path: defaultModelPath };
  const keysFile = flags.apiKeysFile ?? server.apiKeysFile;
  const apiKeys = [
    ...(server.apiKeys ?? []),
    ...(flags.apiKey ?? []),
    ...(process.env.NEOSERVE_API_KEYS ?? "").split(",").map((k) => k.trim()).filter(Boolean),
    ...(keysFile ? await readKeysFile(keysFile) : []),
  ];
  const shutdownSeconds = flags.shutdownTimeout ?? server.shutdownTimeout ?? SERVE_DEFAULTS.shutdownTimeout;
  if (!(shutdownSeconds >= 0)) throw new ConfigError(`--shutdown-timeout must be >= 0, got ${shutdownSeconds}`);

  const runtime = new Runtime();
  collectDefaultMetrics({ register: runtime.metrics() }); // process memory, CPU, event-loop lag beside the engines' own
  const tenants = Object.keys(file.tenants).length ? new TenantRegistry(file.tenants) : undefined;
  const audit = file.audit ? await AuditLog.open(file.audit.path, { rotateBytes: file.audit.rotateBytes }) : undefined;
  const app = createServer({ apiKeys, registry: runtime.metrics(), bodyLimit: flags.bodyLimit ?? server.bodyLimit, logPrompts: flags.logPrompts ?? server.logPrompts, tenants, audit });
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return process.exit(1); // a second signal: now
    stopping = true;
    app.log.info({ signal, inFlight: app.neoserve.inFlight, shutdownTimeoutSeconds: shutdownSeconds }, "draining");
    await app.neoserve.drain(shutdownSeconds * 1000);
    await app.close();
    await runtime.dispose();
    await audit?.close();
    app.log.info("stopped");
    process.exit(0);
  };
  process.on("SIGTERM", () => void stop("SIGTERM"));
  process.on("SIGINT", () => void stop("SIGINT"));

  const address = await app.listen({ host: flags.host ?? server.host ?? SERVE_DEFAULTS.host, port: flags.port ?? server.port ?? SERVE_DEFAULTS.port });
  app.log.info({ address, models: Object.keys(models), auth: apiKeys.length > 0 }, "listening; loading models");
  const backends = new Map<string, Backend>();
  for (const [name, config] of Object.entries(models)) {
    const { path, slices, pricePerHour, privacy, aliases: _aliases, ...load } = withFlags(config, flags);
    const loaded: Engine = slices !== undefined
      ? await runtime.pool({ model: path, slices, load })
      : await runtime.loadModel(path, { ...load, name, pricePerHour });
    // With tenants, a batch's worth of requests runs at once and the rest wait their tenant's turn.
    const batch = (load.scheduler?.maxBatchSize ?? 16) * (slices === undefined ? 1 : typeof slices === "number" ? slices : slices.length);
    const engine = tenants ? new FairQueue(loaded, batch, (t) => tenants.weightOf(t)) : loaded;
    const price = pricePerHour === undefined ? undefined : { perHour: pricePerHour };
    app.neoserve.addModel(name, engine, price);
    backends.set(name, { name, engine, where: "local", privacy: privacy ?? PRIVACY_CLASSES, price, capacity: batch });
    app.log.info({ model: name, path, backend: engine.info.backend, device: engine.info.device }, "model loaded");
  }
  for (const [name, r] of Object.entries(file.remotes)) {
    const { url, apiKeyEnv, privacy, pricePer1kPrompt, pricePer1kCompletion, aliases: _aliases, ...options } = r;
    const engine = await runtime.remote({ ...options, name, baseUrl: url, apiKey: apiKeyEnv ? process.env[apiKeyEnv] : undefined });
    backends.set(name, { name, engine, where: "remote", privacy: privacy ?? ["internal", "public"], price: { per1kPrompt: pricePer1kPrompt, per1kCompletion: pricePer1kCompletion } });
    app.log.info({ remote: name, url: engine.info.device, healthy: engine.stats().healthy }, "remote added");
  }
  for (const [alias, route] of Object.entries(file.routes)) {
    const shadow = route.shadow && { backend: backends.get(route.shadow.backend)!, percent: route.shadow.percent };
    app.neoserve.addModel(alias, runtime.router({ ...route, alias, backends: route.backends.map((b) => backends.get(b)!), shadow }));
    app.log.info({ route: alias, backends: route.backends, rules: route.rules?.length ?? 0 }, "route added");
  }
  app.neoserve.setReady();
  app.log.info({ address }, "ready");
}
