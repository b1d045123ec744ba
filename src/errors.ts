/**
 * Typed errors. Every error neoserve raises is a NeoserveError with a stable
 * `code`; finish reasons that end a request abnormally use the same strings.
 * The codes native code raises (native/core/error.h) are checked against
 * NATIVE_ERROR_CODES by a test, so the two lists cannot drift apart.
 */

/** The codes of native/core/error.h ErrorCode, in the order of their values. */
export const NATIVE_ERROR_CODES = [
  "invalid_request",
  "model_load_failed",
  "provider_unavailable",
  "queue_full",
  "internal",
  "disposed",
  "out_of_memory",
] as const;

/** Raised in TypeScript only: finish reasons of requests that end abnormally, as errors. */
const TS_ERROR_CODES = ["device_lost", "cancelled", "deadline_exceeded", "deadline_unmeetable", "queue_timeout", "invalid_config"] as const;

export type ErrorCode = (typeof NATIVE_ERROR_CODES)[number] | (typeof TS_ERROR_CODES)[number];
const ERROR_CODES: ReadonlySet<string> = new Set([...NATIVE_ERROR_CODES, ...TS_ERROR_CODES]);

type ErrorOptions = { cause?: unknown };

export class NeoserveError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

export class InvalidRequestError extends NeoserveError {
  constructor(message: string, options?: ErrorOptions) {
    super("invalid_request", message, options);
  }
}

/**
 * A request's text went past a limit of the text workers: its size, the chat
 * template's steps or output, the time or memory to tokenize it.
 */
export class InputLimitError extends InvalidRequestError {}

/** A server configuration (file, flags, keys file) that cannot be used; the message names the file and field. */
export class ConfigError extends NeoserveError {
  constructor(message: string, options?: ErrorOptions) {
    super("invalid_config", message, options);
  }
}

export class ModelLoadError extends NeoserveError {
  constructor(message: string, options?: ErrorOptions) {
    super("model_load_failed", message, options);
  }
}

export class ProviderUnavailableError extends NeoserveError {
  constructor(message: string, options?: ErrorOptions) {
    super("provider_unavailable", message, options);
  }
}

/** The scheduler's waiting queue is at maxQueueSize: retry later or elsewhere. */
export class QueueFullError extends NeoserveError {
  constructor(message: string, options?: ErrorOptions) {
    super("queue_full", message, options);
  }
}

/** The model or pool was disposed: it takes no more requests. */
export class ModelDisposedError extends NeoserveError {
  constructor(message = "the model has been disposed", options?: ErrorOptions) {
    super("disposed", message, options);
  }
}

/** Weights, KV cache or buffers do not fit in host or device memory, on any backend. */
export class OutOfMemoryError extends NeoserveError {
  constructor(message: string, options?: ErrorOptions) {
    super("out_of_memory", message, options);
  }
}

const byCode: Partial<Record<ErrorCode, new (message: string, options?: ErrorOptions) => NeoserveError>> = {
  invalid_request: InvalidRequestError,
  model_load_failed: ModelLoadError,
  provider_unavailable: ProviderUnavailableError,
  queue_full: QueueFullError,
  disposed: ModelDisposedError,
  out_of_memory: OutOfMemoryError,
};

/** The typed error for `code` (an error that crossed a process or the addon as code + message). */
export function errorFromCode(code: string, message: string, options?: ErrorOptions): NeoserveError {
  const Cls = byCode[code as ErrorCode];
  if (Cls) return new Cls(message, options);
  return new NeoserveError(ERROR_CODES.has(code) ? (code as ErrorCode) : "internal", message, options);
}

/** Turns an error thrown by the addon (an Error with a `code` set by native/binding) into its typed class. */
export function fromNative(err: unknown): unknown {
  if (!(err instanceof Error) || err instanceof NeoserveError) return err;
  const code = (err as { code?: unknown }).code;
  return errorFromCode(typeof code === "string" ? code : "internal", err.message, { cause: err });
}

/** What crosses a process boundary for an error (a pool worker's load failure or rejection). */
export interface WireError {
  code: string;
  message: string;
}

export function toWireError(e: unknown): WireError {
  if (e instanceof NeoserveError) return { code: e.code, message: e.message };
  return { code: "internal", message: e instanceof Error ? e.message : String(e) };
}
