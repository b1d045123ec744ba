/** Messages between a pool and its worker processes (one worker per slice). */
import type { LoadOptions } from "../model.js";
import type { GenerateRequest, GenerateResult } from "../types.js";

/** A request as it crosses to a worker: everything but the AbortSignal (the parent keeps that). */
export type WireRequest = Omit<GenerateRequest, "signal">;

export type ToWorker =
  | { t: "load"; path: string; options: LoadOptions; flushIntervalMs: number }
  | { t: "gen"; id: number; request: WireRequest }
  | { t: "cancel"; id: number };

/** Worker → pool, over the worker's frame pipe (frames.ts); tokens travel there as runs, not as messages. */
export type FromWorker =
  | { t: "ready"; backend: string; device: string; visibleDevices: string | undefined }
  | { t: "loadError"; code: string; message: string }
  /** The result less its tokens and text, which the parent already has. */
  | { t: "end"; id: number; result: Omit<GenerateResult, "tokens" | "text"> }
  | { t: "rejected"; id: number; code: string; message: string };

/** The worker's file descriptor of its frame pipe to the pool. */
export const FRAME_FD = 4;
