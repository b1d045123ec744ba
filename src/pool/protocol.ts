/** Messages between a pool and its worker processes (one worker per slice). */
import type { LoadOptions } from "../model.js";
import type { GenerateRequest, GenerateResult } from "../types.js";

/** A request as it crosses to a worker: everything but the AbortSignal (the parent keeps that). */
export type WireRequest = Omit<GenerateRequest, "signal">;

export type ToWorker =
  | { t: "load"; path: string; options: LoadOptions }
  | { t: "gen"; id: number; request: WireRequest }
  | { t: "cancel"; id: number };

export type FromWorker =
  | { t: "batch"; messages: FromWorker[] }
  | { t: "ready"; backend: string; device: string; visibleDevices: string | undefined }
  | { t: "loadError"; code: string; message: string }
  /** Tokens of one turn of the worker's event loop, as parallel arrays: request id, token id, text. */
  | { t: "toks"; ids: number[]; tokens: number[]; texts: string[] }
  /** The result less its tokens and text, which the parent already has. */
  | { t: "end"; id: number; result: Omit<GenerateResult, "tokens" | "text"> }
  | { t: "rejected"; id: number; code: string; message: string };
