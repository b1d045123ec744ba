/**
 * The serve command's configuration: a YAML or JSON file (models and server
 * settings), API keys from a keys file or NEOSERVE_API_KEYS, and the command's
 * flags over both. A file is read only if it is a regular file of at most
 * 1 MiB, parsed with YAML's alias expansion bounded, and checked field by
 * field: anything else is a ConfigError naming the file and the field.
 */
import { parse } from "yaml";
import { ConfigError } from "../errors.js";
import { readRegularFile } from "../files.js";
import type { LoadOptions } from "../model.js";
import type { RemoteBackendOptions } from "../router/remote-backend.js";
import { PRIVACY_CLASSES, type PrivacyClass } from "../router/route-decision.js";
import { parseRules, type Rule } from "../router/rules.js";
import type { TenantConfig } from "../tenants/tenants.js";

/** One model to serve: a Model, or a pool of workers when `slices` is given. */
export interface ModelConfig extends Omit<LoadOptions, "log"> {
  path: string;
  /** A pool: a count of workers, or one device id per worker. */
  slices?: number | string[];
  /** Price of the hardware per hour, for the cost metrics and routing. */
  pricePerHour?: number;
  /** The privacy classes a route may send it. Default: all. */
  privacy?: PrivacyClass[];
  /** Model aliases it serves: each is a route over every model and remote that declares it. */
  aliases?: string[];
}

/** Another OpenAI-compatible server, as a backend routes may use. */
export interface RemoteConfig extends Omit<RemoteBackendOptions, "baseUrl" | "apiKey"> {
  url: string;
  /** The environment variable holding its API key (keys never sit in the config file). */
  apiKeyEnv?: string;
  /** The privacy classes a route may send it. Default: internal and public. */
  privacy?: PrivacyClass[];
  pricePer1kPrompt?: number;
  pricePer1kCompletion?: number;
  /** Model aliases it serves (see ModelConfig.aliases). */
  aliases?: string[];
}

/**
 * A model alias served by a Router over backends (model and remote names):
 * those listed here, then those that declare the alias in their `aliases`.
 */
export interface RouteConfig {
  backends: string[];
  canary?: { backend: string; percent: number };
  shadow?: { backend: string; percent: number };
  rules?: Rule[];
  defaultPrivacy?: PrivacyClass;
  maxAttempts?: number;
}

export interface ServeConfig {
  host: string;
  port: number;
  apiKeys: string[];
  /** Seconds requests in flight get to finish after SIGTERM / SIGINT. */
  shutdownTimeout: number;
  bodyLimit?: number;
  logPrompts: boolean;
  models: Record<string, ModelConfig>;
  remotes: Record<string, RemoteConfig>;
  routes: Record<string, RouteConfig>;
  tenants: Record<string, TenantConfig>;
  audit?: { path: string; rotateBytes?: number };
}

/** What `neoserve serve` uses unless told. */
// batchWindowMs: a burst read off the network reaches the engine one request per
// 0.25-0.4 ms of event-loop work; without a window an idle engine prefills the
// first alone while the rest wait for it (bench/results/server.md).
export const SERVE_DEFAULTS = { host: "127.0.0.1", port: 8000, shutdownTimeout: 30, batchWindowMs: 6 } as const;

const MAX_CONFIG_BYTES = 1 << 20;

type Check = (value: unknown, where: string) => void;
const is = (test: (v: unknown) => boolean, what: string): Check => (v, where) => {
  if (!test(v)) throw new ConfigError(`${where} must be ${what}, got ${JSON.stringify(v)?.slice(0, 80)}`);
};
const string = is((v) => typeof v === "string" && v.length > 0 && v.length <= 4096, "a non-empty string");
const boolean = is((v) => typeof v === "boolean", "true or false");
const nonNegative = is((v) => typeof v === "number" && Number.isFinite(v) && v >= 0, "a number >= 0");
const port = is((v) => Number.isInteger(v) && (v as number) >= 0 && (v as number) <= 65535, "a port number (0-65535)");
const numberOrString = is((v) => (typeof v === "number" && Number.isFinite(v)) || typeof v === "string", "a number or a string");
const stringList = is((v) => Array.isArray(v) && v.length <= 1024 && v.every((s) => typeof s === "string" && s.length > 0 && s.length <= 4096), "a list of non-empty strings");
const slices = is((v) => (Number.isInteger(v) && (v as number) >= 1 && (v as number) <= 1024) || (Array.isArray(v) && v.length >= 1 && v.length <= 1024 && v.every((s) => typeof s === "string")), "a worker count or a list of device ids");
const aliasList = is((v) => Array.isArray(v) && v.length > 0 && v.length <= 64 && new Set(v).size === v.length && v.every((s) => typeof s === "string" && NAME.test(s)), "a list of distinct alias names (letters, digits, . _ : / -)");
const privacyList = is((v) => Array.isArray(v) && v.length > 0 && v.every((x) => (PRIVACY_CLASSES as readonly unknown[]).includes(x)), `a list of privacy classes (${PRIVACY_CLASSES.join(", ")})`);
const privacyClass = is((v) => (PRIVACY_CLASSES as readonly unknown[]).includes(v), `one of ${PRIVACY_CLASSES.join(", ")}`);
const count = (max: number) => is((v) => Number.isInteger(v) && (v as number) >= 1 && (v as number) <= max, `an integer from 1 to ${max}`);
const httpUrl = is((v) => typeof v === "string" && v.length <= 4096 && /^https?:\/\/[^\s]+$/.test(v) && URL.canParse(v), "an http:// or https:// URL");
const envName = is((v) => typeof v === "string" && /^[A-Za-z_][A-Za-z0-9_]{0,127}$/.test(v), "an environment variable name");
const breaker = (v: unknown, where: string) => checkFields(v, { failures: count(1_000_000), cooldownMs: nonNegative }, where);
const numberMap = is((v) => isObject(v) && Object.values(v).every((x) => (typeof x === "number" && Number.isFinite(x)) || typeof x === "string"), "a map of option names to numbers or strings");

const MODEL_FIELDS: Record<string, Check> = {
  path: string,
  backend: string,
  precision: string,
  threads: nonNegative,
  device: numberOrString,
  tokenizer: string,
  memoryLimitBytes: nonNegative,
  weightCache: string,
  weightCacheCheck: string,
  slices,
  pricePerHour: nonNegative,
  privacy: privacyList,
  aliases: aliasList,
  scheduler: numberMap,
  text: numberMap,
};
const REMOTE_FIELDS: Record<string, Check> = {
  url: httpUrl,
  model: string,
  apiKeyEnv: envName,
  privacy: privacyList,
  aliases: aliasList,
  pricePer1kPrompt: nonNegative,
  pricePer1kCompletion: nonNegative,
  connections: count(1024),
  connectTimeoutMs: nonNegative,
  firstTokenTimeoutMs: nonNegative,
  idleTimeoutMs: nonNegative,
  healthIntervalMs: nonNegative,
  maxContext: nonNegative,
  breaker,
};
const percent = is((v) => typeof v === "number" && v >= 0 && v <= 100, "a percentage (0-100)");
const split = (v: unknown, where: string) => {
  const o = checkFields(v, { backend: string, percent }, where);
  for (const key of ["backend", "percent"]) if (o[key] === undefined) throw new ConfigError(`${where}.${key} is required`);
};
const ROUTE_FIELDS: Record<string, Check> = {
  backends: stringList,
  canary: split,
  shadow: split,
  rules: () => {}, // parsed once every backend name is known
  defaultPrivacy: privacyClass,
  maxAttempts: count(16),
};
const keyHashes = is((v) => Array.isArray(v) && v.length > 0 && v.length <= 1024 && v.every((h) => typeof h === "string" && /^[0-9a-fA-F]{64}$/.test(h)), "a list of SHA-256 key hashes (64 hex digits; neoserve keys hash KEY prints one)");
const positive = is((v) => typeof v === "number" && Number.isFinite(v) && v > 0, "a number > 0");
const TENANT_FIELDS: Record<string, Check> = {
  keys: keyHashes,
  models: stringList,
  backends: stringList,
  privacy: privacyClass,
  requestsPerMinute: positive,
  tokensPerMinute: positive,
  maxConcurrent: count(1_000_000),
  budgetPerDay: nonNegative,
  budgetPerMonth: nonNegative,
  auditText: boolean,
  weight: positive,
};
const AUDIT_FIELDS: Record<string, Check> = { path: string, rotateBytes: positive };
const NAME = /^[\w.:/-]{1,256}$/;
const SERVER_FIELDS: Record<string, Check> = {
  host: string,
  port,
  apiKeys: stringList,
  apiKeysFile: string,
  shutdownTimeout: nonNegative,
  bodyLimit: nonNegative,
  logPrompts: boolean,
};

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function checkFields(value: unknown, fields: Record<string, Check>, where: string): Record<string, unknown> {
  if (!isObject(value)) throw new ConfigError(`${where} must be a mapping`);
  for (const [key, v] of Object.entries(value)) {
    const check = fields[key];
    if (!check) throw new ConfigError(`${where}.${key} is not a setting (known: ${Object.keys(fields).join(", ")})`);
    check(v, `${where}.${key}`);
  }
  return value;
}

// Each alias that models and remotes declare, with its backends in config order; an alias may not be a backend's own name.
function declaredAliases(models: Record<string, ModelConfig>, remotes: Record<string, RemoteConfig>, backends: readonly string[]): Map<string, string[]> {
  const declared = new Map<string, string[]>();
  for (const [kind, entries] of [["models", models], ["remotes", remotes]] as const)
    for (const [name, entry] of Object.entries(entries))
      for (const alias of entry.aliases ?? []) {
        if (backends.includes(alias)) throw new ConfigError(`${kind}.${name}.aliases: ${JSON.stringify(alias)} is a model or remote name`);
        declared.set(alias, [...(declared.get(alias) ?? []), name]);
      }
  return declared;
}

// A mapping of names to entries, each checked by `check`.
function named<T>(value: unknown, where: string, check: (v: unknown, where: string, name: string) => T): Record<string, T> {
  if (value === undefined) return {};
  if (!isObject(value)) throw new ConfigError(`${where} must be a mapping of names to entries`);
  const out: Record<string, T> = {};
  for (const [name, v] of Object.entries(value)) {
    if (!NAME.test(name)) throw new ConfigError(`${where}: ${JSON.stringify(name.slice(0, 80))} is not a usable name (letters, digits, . _ : / -)`);
    out[name] = check(v, `${where}.${name}`, name);
  }
  return out;
}

export type ConfigFile = Pick<ServeConfig, "models" | "remotes" | "routes" | "tenants" | "audit"> & { server: Partial<ServeConfig> & { apiKeysFile?: string } };

/** What a config file says; ConfigError naming the file and field otherwise. */
export async function readConfigFile(path: string): Promise<ConfigFile> {
  const fail = (message: string, cause?: unknown) => new ConfigError(message, { cause });
  const text = await readRegularFile(path, fail, MAX_CONFIG_BYTES);
  if (text === null) throw new ConfigError(`${path}: no such file`);
  let doc: unknown;
  try {
    doc = parse(text, { maxAliasCount: 100, prettyErrors: false, uniqueKeys: true });
  } catch (err) {
    throw new ConfigError(`${path}: not YAML or JSON (${err instanceof Error ? err.message.split("\n")[0] : String(err)})`, { cause: err });
  }
  try {
    const top = checkFields(doc ?? {}, { server: () => {}, models: () => {}, remotes: () => {}, routes: () => {}, tenants: () => {}, audit: () => {} }, "config");
    const server = top.server === undefined ? {} : checkFields(top.server, SERVER_FIELDS, "server");
    const models = named(top.models, "models", (m, where) => {
      const model = checkFields(m, MODEL_FIELDS, where);
      if (model.path === undefined) throw new ConfigError(`${where}.path is required`);
      return model as unknown as ModelConfig;
    });
    const remotes = named(top.remotes, "remotes", (r, where) => {
      const remote = checkFields(r, REMOTE_FIELDS, where);
      for (const key of ["url", "model"]) if (remote[key] === undefined) throw new ConfigError(`${where}.${key} is required`);
      return remote as unknown as RemoteConfig;
    });
    for (const name of Object.keys(remotes)) if (models[name]) throw new ConfigError(`remotes.${name}: a model has that name too`);
    const backends = [...Object.keys(models), ...Object.keys(remotes)];
    const declared = declaredAliases(models, remotes, backends);
    const routes = named(top.routes, "routes", (r, where, alias) => {
      const route = checkFields(r, ROUTE_FIELDS, where) as unknown as RouteConfig & { rules?: unknown };
      if (backends.includes(alias)) throw new ConfigError(`${where}: a model or remote has that name too`);
      for (const b of route.backends ?? []) if (!backends.includes(b)) throw new ConfigError(`${where}.backends: no model or remote named ${JSON.stringify(b)}`);
      route.backends = [...new Set([...(route.backends ?? []), ...(declared.get(alias) ?? [])])];
      if (!route.backends.length) throw new ConfigError(`${where}.backends is required (the models and remotes it routes over), unless some declare ${JSON.stringify(alias)} in their aliases`);
      if (route.canary && !route.backends.includes(route.canary.backend)) throw new ConfigError(`${where}.canary.backend: ${JSON.stringify(route.canary.backend)} is not one of the route's backends`);
      if (route.shadow && !backends.includes(route.shadow.backend)) throw new ConfigError(`${where}.shadow.backend: no model or remote named ${JSON.stringify(route.shadow.backend)}`);
      return { ...route, rules: route.rules === undefined ? [] : parseRules(route.rules, `${where}.rules`, route.backends) };
    });
    for (const [alias, by] of declared) routes[alias] ??= { backends: by, rules: [] };
    const served = [...Object.keys(models), ...Object.keys(routes)];
    const tenants = named(top.tenants, "tenants", (t, where) => {
      const tenant = checkFields(t, TENANT_FIELDS, where) as unknown as TenantConfig;
      if (!tenant.keys) throw new ConfigError(`${where}.keys is required: the SHA-256 hashes of its API keys`);
      for (const m of tenant.models ?? []) if (!served.includes(m)) throw new ConfigError(`${where}.models: no model or route named ${JSON.stringify(m)}`);
      for (const b of tenant.backends ?? []) if (!backends.includes(b)) throw new ConfigError(`${where}.backends: no model or remote named ${JSON.stringify(b)}`);
      return tenant;
    });
    const owner = new Map<string, string>();
    for (const [name, t] of Object.entries(tenants))
      for (const h of t.keys) {
        const other = owner.get(h.toLowerCase());
        if (other) throw new ConfigError(`tenants.${name}.keys: a key hash of tenant ${other} too`);
        owner.set(h.toLowerCase(), name);
      }
    let audit: ServeConfig["audit"];
    if (top.audit !== undefined) {
      audit = checkFields(top.audit, AUDIT_FIELDS, "audit") as unknown as ServeConfig["audit"];
      if (!audit!.path) throw new ConfigError("audit.path is required");
    }
    return { server: server as Partial<ServeConfig>, models, remotes, routes, tenants, ...(audit ? { audit } : {}) };
  } catch (err) {
    if (err instanceof ConfigError) throw new ConfigError(`${path}: ${err.message}`, { cause: err });
    throw err;
  }
}

/** API keys of a keys file: one per line; blank lines and # comments skipped. */
export async function readKeysFile(path: string): Promise<string[]> {
  const text = await readRegularFile(path, (message, cause) => new ConfigError(message, { cause }), MAX_CONFIG_BYTES);
  if (text === null) throw new ConfigError(`${path}: no such file`);
  return text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l.length > 0 && !l.startsWith("#"));
}

/** NAME=PATH, or PATH alone (named after its file: "model.gguf" → "model"). */
export function parseModelFlag(flag: string): [string, string] {
  const eq = flag.indexOf("=");
  if (eq > 0 && !flag.slice(0, eq).includes("/")) return [flag.slice(0, eq), flag.slice(eq + 1)];
  const base = flag.replace(/\/+$/, "").split("/").pop() ?? flag;
  const name = base.replace(/\.gguf$/i, "");
  return [name === "hf" ? (flag.replace(/\/+$/, "").split("/").slice(-2, -1)[0] ?? name) : name, flag];
}
