/** Messages between a pool and its worker processes (one worker per slice). */
import type { RawGgufTokenizer } from "../addon.js";
import type { WireError } from "../errors.js";
import type { LoadOptions, ModelInfo } from "../model.js";
import type { GenerateRequest, GenerateResult } from "../types.js";

/** A request as it crosses to a worker: its prompt already tokenized and checked by the pool; the AbortSignal stays in the parent. */
export type WireRequest = Omit<GenerateRequest, "signal" | "prompt" | "messages"> & { tokens: number[] };

/** GGUF tokenizer metadata as JSON carries it (tokenTypes as a plain array). */
export type WireGgufTokenizer = Omit<RawGgufTokenizer, "tokenTypes"> & { tokenTypes: number[] };

export type ToWorker =
  /** `describe`: also send the GGUF tokenizer with "ready" (the pool has none yet). */
  | { t: "load"; path: string; options: LoadOptions; flushIntervalMs: number; describe: boolean }
  | { t: "gen"; id: number; request: WireRequest }
  | { t: "cancel"; id: number };

/** Worker → pool, over the worker's frame pipe (frames.ts); tokens travel there as runs, not as messages. */
export type FromWorker =
  | { t: "ready"; info: ModelInfo; gguf: WireGgufTokenizer | null; visibleDevices: string | undefined }
  | ({ t: "loadError" } & WireError)
  /** The result less its tokens and text, which the parent already has. */
  | { t: "end"; id: number; result: Omit<GenerateResult, "tokens" | "text"> }
  | ({ t: "rejected"; id: number } & WireError);

/** PoolOptions.flushIntervalMs unless set. */
export const DEFAULT_FLUSH_INTERVAL_MS = 10;

/** The worker's file descriptor of its frame pipe to the pool. */
export const FRAME_FD = 4;
