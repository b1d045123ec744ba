/**
 * Typed errors. Every error neoserve raises is a NeoserveError with a stable
 * `code`; finish reasons that end a request abnormally use the same strings.
 */
export type ErrorCode =
  | "invalid_request"
  | "model_load_failed"
  | "provider_unavailable"
  | "device_lost"
  | "cancelled"
  | "deadline_exceeded"
  | "queue_timeout"
  | "queue_full"
  | "disposed"
  | "internal";

export class NeoserveError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

export class InvalidRequestError extends NeoserveError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("invalid_request", message, options);
  }
}

export class ModelLoadError extends NeoserveError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("model_load_failed", message, options);
  }
}

export class ProviderUnavailableError extends NeoserveError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("provider_unavailable", message, options);
  }
}

/** The scheduler's waiting queue is at maxQueueSize: retry later or elsewhere. */
export class QueueFullError extends NeoserveError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("queue_full", message, options);
  }
}

export class ModelDisposedError extends NeoserveError {
  constructor(message = "the model has been disposed") {
    super("disposed", message);
  }
}

const byCode: Record<string, new (message: string, options?: { cause?: unknown }) => NeoserveError> = {
  invalid_request: InvalidRequestError,
  model_load_failed: ModelLoadError,
  provider_unavailable: ProviderUnavailableError,
  queue_full: QueueFullError,
  disposed: ModelDisposedError,
};

/** Turns an error thrown by the addon (an Error with a `code` set by native/binding) into its typed class. */
export function fromNative(err: unknown): unknown {
  if (!(err instanceof Error) || err instanceof NeoserveError) return err;
  const code = (err as { code?: unknown }).code;
  const Cls = typeof code === "string" ? byCode[code] : undefined;
  return Cls ? new Cls(err.message, { cause: err }) : new NeoserveError("internal", err.message, { cause: err });
}
