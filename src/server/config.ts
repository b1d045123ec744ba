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

/** One model to serve: a Model, or a pool of workers when `slices` is given. */
export interface ModelConfig extends Omit<LoadOptions, "log"> {
  path: string;
  /** A pool: a count of workers, or one device id per worker. */
  slices?: number | string[];
  /** Price of the hardware per hour, for the cost metrics. */
  pricePerHour?: number;
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
}

/** What `neoserve serve` uses unless told. */
export const SERVE_DEFAULTS = { host: "127.0.0.1", port: 8000, shutdownTimeout: 30 } as const;

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
const numberMap = is((v) => isObject(v) && Object.values(v).every((x) => (typeof x === "number" && Number.isFinite(x)) || typeof x === "string"), "a map of option names to numbers or strings");

const MODEL_FIELDS: Record<string, Check> = {
  path: string,
  backend: string,
  precision: string,
  threads: nonNegative,
  device: numberOrString,
  tokenizer: string,
  memoryLimitBytes: nonNegative,
  slices,
  pricePerHour: nonNegative,
  scheduler: numberMap,
  text: numberMap,
};
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

/** What a config file says; ConfigError naming the file and field otherwise. */
export async function readConfigFile(path: string): Promise<{ server: Partial<ServeConfig> & { apiKeysFile?: string }; models: Record<string, ModelConfig> }> {
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
    const top = checkFields(doc ?? {}, { server: () => {}, models: () => {} }, "config");
    const server = top.server === undefined ? {} : checkFields(top.server, SERVER_FIELDS, "server");
    const models: Record<string, ModelConfig> = {};
    if (top.models !== undefined) {
      if (!isObject(top.models)) throw new ConfigError("models must be a mapping of names to models");
      for (const [name, m] of Object.entries(top.models)) {
        if (!/^[\w.:/-]{1,256}$/.test(name)) throw new ConfigError(`models: ${JSON.stringify(name.slice(0, 80))} is not a usable model name (letters, digits, . _ : / -)`);
        const model = checkFields(m, MODEL_FIELDS, `models.${name}`);
        if (model.path === undefined) throw new ConfigError(`models.${name}.path is required`);
        models[name] = model as unknown as ModelConfig;
      }
    }
    return { server: server as Partial<ServeConfig>, models };
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
