/** Messages between a pool and its worker processes (one worker per slice). */
import type { StepTimeFit } from "../addon.js";
import type { WireError } from "../errors.js";
import type { LoadOptions, ModelInfo } from "../model.js";
import type { GenerateRequest, GenerateResult, Token } from "../types.js";

/** A request as it crosses to a worker: its prompt already tokenized and checked by the pool; the AbortSignal stays in the parent. */
export type WireRequest = Omit<GenerateRequest, "signal" | "prompt" | "messages"> & { tokens: number[] };

export type ToWorker =
  | { t: "load"; path: string; options: LoadOptions; flushIntervalMs: number }
  | { t: "gen"; id: number; request: WireRequest }
  | { t: "cancel"; id: number };

/** Worker → pool, over the worker's frame pipe (frames.ts); tokens travel there as runs, not as messages. */
export type FromWorker =
  | { t: "ready"; info: ModelInfo; visibleDevices: string | undefined }
  | ({ t: "loadError" } & WireError)
  /** A token with its log probabilities (requests with logprobs): as a message, in order with the runs. */
  | { t: "token"; id: number; token: number; text: string; logprob: Token["logprob"] }
  /** The result less its tokens, text and logprobs, which the parent already has. */
  | { t: "end"; id: number; result: Omit<GenerateResult, "tokens" | "text" | "logprobs"> }
  | ({ t: "rejected"; id: number } & WireError)
  /** A heartbeat: the worker's event loop still runs (any frame counts as one), with its engine's load once loaded. */
  | { t: "alive"; load?: SliceLoad };

/** A worker's engine as routing sees it: its throughput and the wait a new request would have. */
export interface SliceLoad {
  tokensPerSecond: number;
  predictedWaitMs?: number;
  stepTime?: StepTimeFit;
}

/** PoolOptions.flushIntervalMs unless set. */
export const DEFAULT_FLUSH_INTERVAL_MS = 10;

/**
 * How often a worker says it is alive. The pool declares a worker silent for
 * longer than PoolOptions.workerTimeoutMs dead (a stopped or wedged process
 * never exits, so its exit alone would never fail its requests over).
 */
export const HEARTBEAT_INTERVAL_MS = 250;

/** PoolOptions.workerTimeoutMs unless set. */
export const DEFAULT_WORKER_TIMEOUT_MS = 5000;

/** PoolOptions.maxCrashesPerRequest unless set. */
export const DEFAULT_MAX_CRASHES_PER_REQUEST = 2;

/** The worker's file descriptor of its frame pipe to the pool. */
export const FRAME_FD = 4;
