/**
 * Errors as OpenAI's API sends them: `{"error": {message, type, param, code}}`
 * with the status a client library turns into its own typed error. A typed
 * neoserve error keeps its message; anything else is an internal error whose
 * details stay in the log, never in the response.
 */
import { InvalidRequestError, NeoserveError } from "../errors.js";

export interface OpenAIErrorBody {
  error: { message: string; type: string; param: string | null; code: string | null };
}

/** An HTTP-level refusal raised by the server itself (a missing key, an unknown model, a field it cannot honour). */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly param: string | null = null,
    readonly code: string | null = null,
    /** Seconds a client should wait before retrying (429, 503). */
    readonly retryAfter?: number,
  ) {
    super(message);
    this.name = "HttpError";
  }
}

export interface HttpFailure {
  status: number;
  body: OpenAIErrorBody;
  headers: Record<string, string>;
}

const TYPE_BY_STATUS: Record<number, string> = {
  400: "invalid_request_error",
  401: "authentication_error",
  403: "permission_denied_error",
  404: "not_found_error",
  413: "invalid_request_error",
  415: "invalid_request_error",
  429: "rate_limit_error",
  503: "server_error",
};

function failure(status: number, message: string, param: string | null, code: string | null, retryAfter?: number): HttpFailure {
  return {
    status,
    body: { error: { message, type: TYPE_BY_STATUS[status] ?? (status >= 500 ? "server_error" : "invalid_request_error"), param, code } },
    // retry-after-ms, which OpenAI's clients read first, says how soon: a queue frees a place within a request's time.
    headers: retryAfter !== undefined ? { "retry-after": String(Math.ceil(retryAfter)), "retry-after-ms": String(Math.round(retryAfter * 1000)) } : {},
  };
}

/** The response for `err`; `internal` is called with errors whose details must not reach the client. */
export function toHttpFailure(err: unknown, internal: (err: unknown) => void): HttpFailure {
  if (err instanceof HttpError) return failure(err.status, err.message, err.param, err.code, err.retryAfter);
  if (err instanceof InvalidRequestError) return failure(400, err.message, null, err.code);
  if (err instanceof NeoserveError) {
    switch (err.code) {
      case "queue_full":
        return failure(503, err.message, null, err.code, 0.1);
      case "provider_unavailable":
        // The detail names backends and their addresses: it goes to the log, not to the client.
        internal(err);
        return failure(503, "no backend could take the request now", null, err.code, 1);
      case "disposed":
      case "cancelled":
        return failure(503, "the server is shutting down", null, err.code, 5);
      default:
        internal(err);
        return failure(500, `the engine failed (${err.code})`, null, err.code);
    }
  }
  // Fastify's own: schema validation, JSON syntax, body size, media type.
  const f = err as { validation?: { instancePath?: string; message?: string }[]; statusCode?: number; code?: string; message?: string };
  if (f.validation) {
    const first = f.validation[0];
    const param = first?.instancePath ? first.instancePath.replace(/^\//, "").replace(/\//g, ".") : null;
    return failure(400, `${param ?? "the body"} ${first?.message ?? "is invalid"}`, param, "invalid_request");
  }
  if (f.code === "FST_ERR_CTP_BODY_TOO_LARGE") return failure(413, "the request body is too large", null, "body_too_large");
  if (f.code === "FST_ERR_CTP_INVALID_MEDIA_TYPE") return failure(415, "send the body as application/json", null, "unsupported_media_type");
  if (typeof f.statusCode === "number" && f.statusCode >= 400 && f.statusCode < 500)
    return failure(f.statusCode, f.statusCode === 400 ? `malformed request: ${f.message ?? "bad body"}` : (f.message ?? "bad request"), null, f.code ?? null);
  internal(err);
  return failure(500, "internal server error", null, "internal");
}
