/**
 * The one face of everything that generates: a Model, a ModelPool, a
 * RemoteBackend and a Router. A server or router takes an Engine and never
 * asks which kind it holds.
 */
import type { StepTimeFit } from "./addon.js";
import type { GenerationStream } from "./generation-stream.js";
import type { ModelInfo } from "./model.js";
import type { TextInput } from "./tokenizer/text-workers.js";
import type { GenerateRequest } from "./types.js";

/** What every engine tells about itself; a Model's ModelInfo says much more. */
export type EngineInfo = Pick<ModelInfo, "backend" | "device" | "source" | "maxContext" | "vocabSize">;

export type { StepTimeFit };

/** One step of `tokens` tokens that attend `attended` positions in all, by the fit (step_time_model.h). */
export function predictStepMs(fit: StepTimeFit, tokens: number, attended: number): number {
  return Math.max(0, fit.a + fit.b * tokens + fit.c * attended, tokens >= fit.minTokens ? fit.minMs : 0);
}

/** A prompt of n tokens alone in a step, by the fit. */
export const predictPrefillMs = (fit: StepTimeFit, n: number): number => predictStepMs(fit, n, (n * (n + 1)) / 2);

export interface EngineStats {
  /** Requests whose streams have not ended. */
  inFlight: number;
  /**
   * A count that grows while the engine does work (a Model's steps, the
   * tokens a pool's workers streamed): a health check sees an engine with
   * requests in flight whose progress stands still as stuck.
   */
  progress: number;
  /** Until a request submitted now would start, in ms, from the engine's live state (a Model's queue and step-time model); absent when it cannot tell. */
  predictedWaitMs?: number;
  /** The engine's fitted step time (a prompt's own prefill); absent when unknown. */
  stepTime?: StepTimeFit;
  /** false while it would refuse new work (a remote that is down, its circuit breaker open). */
  available?: boolean;
}

export interface Engine {
  /** What runs the requests: backend, device, precision, the model's config and KV cache. */
  readonly info: EngineInfo;
  /**
   * Starts a request. Throws at once, with a typed error, for a request it
   * would never run whatever its text: InvalidRequestError (the same for
   * every engine of one model), ModelDisposedError. A text prompt is
   * tokenized off the event loop; a refusal then (too long, a template's
   * error, an InputLimitError) rejects `stream.accepted` and ends the stream
   * with finish reason "error". A full queue is QueueFullError from a Model;
   * a pool, whose queues are in its workers, ends the request with finish
   * reason "queue_full". Every other ending is the stream's finish reason.
   */
  generate(request: GenerateRequest): GenerationStream;
  /**
   * The ids of a text (with the model's special tokens unless
   * addSpecialTokens is false), or of a conversation through the chat
   * template, computed off the event loop as generate() would.
   */
  tokenize(input: TextInput): Promise<Int32Array>;
  /** The text of token ids, computed off the event loop. */
  detokenize(ids: ArrayLike<number>, options?: { skipSpecialTokens?: boolean }): Promise<string>;
  stats(): EngineStats;
  /** Ends every request in flight ("cancelled") and frees what the engine holds. */
  dispose(): Promise<void>;
}
