/** Messages between a pool and its worker processes (one worker per slice). */
import type { LoadOptions } from "../model.js";
import type { GenerateRequest, GenerateResult, Token } from "../types.js";

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
  | { t: "tok"; id: number; token: Token }
  | { t: "end"; id: number; result: GenerateResult }
  | { t: "rejected"; id: number; code: string; message: string };
