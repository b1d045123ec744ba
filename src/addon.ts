/**
 * The one typed description of the raw native addon (native/binding). Nothing
 * else in src/ touches the addon untyped.
 */
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import type { GenerateRequest, SamplingOptions } from "./types.js";

/**
 * The load options of native/core/options.h, where each is defined once with
 * its default, range and meaning (`addon().optionTable()` lists them). Absent
 * means the native default. A test checks these names against the table.
 */
export interface RawLoadOptions {
  /** "auto" picks the best engine this machine has; "synthetic" runs no model (scheduler benchmarks). Default "auto". */
  backend?: "auto" | "cpu" | "tensorrt" | "synthetic";
  /** "auto" computes in the checkpoint's own precision; "int8" quantizes weights at load. Default "auto". */
  precision?: "auto" | "f32" | "int8";
  /** Engine threads; 0 = all cores. Default 0, at most 1024. */
  threads?: number;
  /** An accelerator: a CUDA index, "GPU-<uuid>" or "MIG-<uuid>"; "" = the first. */
  device?: string;
  /** Positions per KV-cache block. Default 16, in [1, 1024]. */
  kvBlockSize?: number;
  /** Bytes of KV cache. Default 0 = the provider's own (CPU: 8 full-context sequences, at most 1 GiB; TensorRT: 60% of free device memory). */
  kvMemoryBytes?: number;
  /**
   * The CPU engine's KV-cache element: "f16" halves the cache's memory (keys and
   * values rounded to fp16; attention still computes in fp32). Default "f32".
   * A TensorRT engine keeps the KV type it was built with.
   */
  kvCacheDtype?: "f32" | "f16";
  /**
   * Host memory the engine may plan for: resident weights, KV cache and scratch
   * for steps of maxBatchTokens, checked at load (OutOfMemoryError naming the
   * parts). Default 0 = the machine's memory, or its cgroup's limit if lower.
   */
  memoryLimitBytes?: number;
  /**
   * A directory where the CPU engine keeps the weights it converts at load
   * (int8 and 4-bit panels, fp32 widened), one file per model and settings,
   * mapped on the next load of the same files with the same settings instead
   * of converted again (`info.weightCache` says which happened). Default "" = off.
   */
  weightCache?: string;
  /**
   * What a load checks of a weight cache file before it maps it: "header"
   * (layout, key, bounds, the header's checksum) or "full" (also every
   * matrix's checksum: one more pass over the weights, ~0.1 s per GB).
   * Default "header".
   */
  weightCacheCheck?: "header" | "full";
  /** Sequences in one step. Default 16, in [1, 16384]. */
  maxBatchSize?: number;
  /** Tokens in one step: decodes + prompt chunks (longer prompts are chunked). Default 512. */
  maxBatchTokens?: number;
  /** Waiting requests; beyond it generate() throws QueueFullError. Default 0 = unbounded. */
  maxQueueSize?: number;
  /** A request not started within this many ms ends with "queue_timeout". Default 0 = no cap. */
  maxQueueDelayMs?: number;
  /** Inter-token latency cap: prompt work per step is limited so decode steps stay under it. Default 0 = off. */
  itlCapMs?: number;
  /** An idle engine waits up to this long for a burst to join its first step (starting once a quarter of it passes with no new request). Default 0 = off, at most 1000. */
  batchWindowMs?: number;
  /** Order of waiting requests: arrival, request priority, or earliest deadline. Default "fcfs". */
  policy?: "fcfs" | "priority" | "edf";
  /** "no-evict" reserves prompt + maxTokens at admission; "max-utilization" admits on need and preempts by recompute. Default "no-evict". */
  kvPolicy?: "no-evict" | "max-utilization";
}

/** One load option as native/core/options.h defines it. */
export interface RawOptionDescription {
  name: keyof RawLoadOptions;
  kind: "integer" | "number" | "bytes" | "text" | "choice";
  default: number | string;
  min?: number;
  max?: number;
  choices: string[];
  meaning: string;
}

/** What a model can take (native RequestLimits). */
export interface RawRequestLimits {
  vocabSize: number;
  maxContext: number;
  kvBlockSize: number;
  kvBlocks: number;
}

/**
 * A request as native code reads it (native/binding/js_request.h): the public
 * request's parameters, its prompt as ids; absent fields take the defaults of
 * native GenerationRequest.
 */
export interface RawRequest
  extends SamplingOptions,
    Pick<GenerateRequest, "maxTokens" | "stopTokenIds" | "ignoreEos" | "priority" | "deadlineMs"> {
  tokens: Int32Array;
  returnLogits?: boolean;
  logprobs?: number;
}

/** One generated token's log probability and its top alternatives (native/core/sampling/logprobs.h). */
export interface RawLogprobs {
  id: number;
  logprob: number;
  topIds: Int32Array;
  topLogprobs: Float32Array;
}

export interface RawModelInfo {
  backend: string;
  device: string;
  precision: string;
  vocabSize: number;
  maxContext: number;
  source: string;
  format: "huggingface" | "gguf" | "tensorrt";
  /** Why backend "auto" did not use the engine it was given (it runs on the CPU instead); "" otherwise. */
  fallbackReason: string;
  /** The CPU engine's weight cache: "off", "hit", "written", "rewritten (why)" or "not written: why". */
  weightCache: string;
  config: {
    hiddenSize: number;
    intermediateSize: number;
    numLayers: number;
    numHeads: number;
    numKvHeads: number;
    headDim: number;
    vocabSize: number;
    maxPositionEmbeddings: number;
    bosTokenId: number;
    eosTokenIds: number[];
  };
  kv: { blockSize: number; numBlocks: number; bytesPerBlock: number };
  /**
   * Host memory the engine planned before allocating, checked against the
   * machine at load: resident weights, the KV cache, and scratch for steps of
   * maxBatchTokens. 0 for what an engine keeps on a GPU.
   */
  memory: { weightsBytes: number; kvBytes: number; scratchBytes: number };
}

/** readGgufTensor's result. */
export interface RawGgufTensor {
  /** ggml's type name: "F32", "Q4_K", ... */
  type: string;
  /** outermost first (a Linear weight is [out_features, in_features]) */
  shape: number[];
  values: Float32Array;
}

/** The tokenizer.ggml.* metadata of a GGUF (see GgufTokenizerMetadata in src/tokenizer). */
export interface RawGgufTokenizer {
  model: string;
  pre: string;
  tokens: string[];
  merges: string[];
  tokenTypes: Int32Array;
  bosId?: number;
  eosId?: number;
  eotId?: number;
  addBos?: boolean;
  chatTemplate?: string;
}

/**
 * A step of `tokens` tokens attending `attended` positions takes about
 * a + b·tokens + c·attended ms, and never less than minMs once it has at least minTokens tokens.
 */
export interface StepTimeFit {
  a: number;
  b: number;
  c: number;
  /** The fastest of the smallest steps seen (minTokens tokens), ms. */
  minMs: number;
  minTokens: number;
}

export interface RawStats {
  waiting: number;
  running: number;
  kvBlocksUsed: number;
  kvBlocksFree: number;
  steps: number;
  tokensGenerated: number;
  promptTokens: number;
  preemptions: number;
  /** Requests that ended without finishing, by reason (queue_full counts rejections at submit). */
  endedEarly: Record<"queue_full" | "queue_timeout" | "deadline_exceeded" | "deadline_unmeetable" | "cancelled" | "error", number>;
  stepMsTotal: number;
  /** The scheduler's own work (excluding provider steps and sampling). */
  scheduleMsTotal: number;
  /** Sampling and emitting tokens. */
  sampleMsTotal: number;
  /** Until a request submitted now would start its prefill, in ms; absent until the step-time model has seen enough steps (0 when idle). */
  predictedWaitMs?: number;
  /** The fitted step time; absent until fitted. */
  stepTime?: StepTimeFit;
}

/** Called on the JS thread with every event of one scheduler iteration. */
export type RawEventsCallback = (
  ids: Uint32Array,
  tokens: Int32Array,
  finishes: Uint8Array,
  errors: { id: number; message: string }[],
  logits: { id: number; data: Float32Array }[],
  admissions: { id: number; queuedMs: number }[],
  /** [sequences, tokens] of this iteration's provider step; [0, 0] when it ran none. */
  step: [number, number],
  /** For requests with logprobs, in token order. */
  logprobs: RawLogprobs[],
) => void;

export interface RawModel {
  info(): RawModelInfo;
  /** Throws an Error with code "invalid_request", "queue_full" or "disposed" when the request is not queued. */
  submit(request: RawRequest): number;
  /** "stop": the caller's stop string ended it (a normal completion); otherwise a cancellation. */
  cancel(id: number, reason?: "stop"): void;
  /** An idle engine starts no step until releaseStart() (or 20 ms pass): requests submitted together start together. */
  holdStart(): void;
  releaseStart(): void;
  stats(): RawStats;
  dispose(): Promise<void>;
}

/** A MIG instance. NVML has no per-instance utilization: `utilizationGpuPct` is absent, and `absent` says why. */
export interface MigTelemetry {
  index: number;
  uuid: string;
  name: string;
  /** e.g. "1g.10gb"; "" when NVML does not say. */
  profile: string;
  gpuInstanceId?: number;
  computeInstanceId?: number;
  memoryTotalBytes?: number;
  memoryUsedBytes?: number;
  memoryFreeBytes?: number;
  utilizationGpuPct?: number;
  absent: Record<string, string>;
}

/** One GPU. A field NVML refuses or the driver lacks is absent (never 0), with the reason in `absent`. */
export interface GpuTelemetry {
  index: number;
  name: string;
  uuid: string;
  pciBusId: string;
  memoryTotalBytes?: number;
  memoryUsedBytes?: number;
  memoryFreeBytes?: number;
  utilizationGpuPct?: number;
  utilizationMemoryPct?: number;
  temperatureC?: number;
  powerDrawW?: number;
  powerLimitW?: number;
  smClockMhz?: number;
  memClockMhz?: number;
  migMode: boolean;
  mig: MigTelemetry[];
  absent: Record<string, string>;
}

export interface TelemetrySnapshot {
  timestampMs: number;
  /** False when NVML cannot be used here; `reason` says why (no library, no driver, no GPU). */
  available: boolean;
  reason: string;
  gpus: GpuTelemetry[];
  process: { cpuUserSeconds: number; cpuSystemSeconds: number; rssBytes: number; engineBytes: number };
}

export interface RawTelemetry {
  /** `engineBytes`: memory the engines hold (reported as process.engineBytes). */
  snapshot(engineBytes?: number): TelemetrySnapshot;
  startSampler(periodMs: number, onSample: (s: TelemetrySnapshot) => void): void;
  close(): void;
}

export interface RawAddon {
  loadModel(path: string, options: RawLoadOptions, onEvents: RawEventsCallback): Promise<RawModel>;
  /**
   * What loadModel will find at `path`, from the files' headers alone (milliseconds): its format and vocabulary
   * size. Throws (code "model_load_failed") what loadModel would for a malformed model. Synchronous.
   */
  describeModel(path: string): { format: RawModelInfo["format"]; vocabSize: number };
  optionTable(): RawOptionDescription[];
  /** Throws (code "invalid_request") what submit() would throw for `request` on a model with these limits. */
  checkRequest(request: RawRequest, limits: RawRequestLimits): void;
  /** A GGUF file's tokenizer metadata (null: it has none); throws code "model_load_failed" naming the file. Synchronous. */
  readGgufTokenizer(path: string): RawGgufTokenizer | null;
  /**
   * One GGUF tensor by its name in the file ("blk.0.attn_q.weight"), dequantized to fp32 in the file's row
   * order, bit-exact with ggml's reference decoders. Throws code "model_load_failed" naming the file. Synchronous.
   */
  readGgufTensor(path: string, name: string): RawGgufTensor;
  /** GenerationRequest's max_tokens when a request gives none (native/core/scheduler/request.h). */
  defaultMaxTokens: number;
  /** native ErrorCode names, indexed by value (native/core/error.h). */
  errorCodes: string[];
  /** native FinishReason names, indexed by the values in `finishes` of RawEventsCallback; [0] is "none" (a token). */
  finishReasons: string[];
  /** NVML from `nvmlLibrary` (default: $NEOSERVE_NVML_LIBRARY, else libnvidia-ml.so.1). */
  TelemetryHandle: new (nvmlLibrary?: string) => RawTelemetry;
}

/** The package root (holding build/ or prebuilds/), whether this runs from src/ or dist/src/. */
export function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, "package.json"))) {
    const up = dirname(dir);
    if (up === dir) throw new Error("neoserve: cannot find the package root");
    dir = up;
  }
  return dir;
}

let cached: RawAddon | undefined;

export function addon(): RawAddon {
  cached ??= createRequire(import.meta.url)("node-gyp-build")(packageRoot()) as RawAddon;
  return cached;
}
