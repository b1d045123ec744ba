/**
 * A loaded model: generate() submits to the native scheduler and returns a
 * TokenStream; token events come back in batches and are routed by request id.
 */
import { addon, NativeFinish, type RawEventsCallback, type RawModel, type RawModelInfo } from "./addon.js";
import { fromNative, InvalidRequestError, ModelDisposedError } from "./errors.js";
import { LatencyRecorder } from "./latency.js";
import { TokenStream } from "./token-stream.js";
import { IncrementalDetokenizer } from "./tokenizer/detokenizer.js";
import { TextTokenizer } from "./tokenizer/tokenizer.js";
import type { FinishReason, GenerateRequest } from "./types.js";

export interface SchedulerOptions {
  /** Sequences in one step. Default 16. */
  maxBatchSize?: number;
  /** Tokens in one step (decodes + prompt chunks). Default 512. */
  maxBatchTokens?: number;
  /** Positions per KV-cache block. Default 16. */
  kvBlockSize?: number;
  /** Bytes of KV cache; 0 = the provider's default. */
  kvMemoryBytes?: number;
  /** Waiting requests; beyond it generate() throws QueueFullError. 0 = unbounded. */
  maxQueueSize?: number;
  /** A request not started within this many ms ends with "queue_timeout". 0 = no cap. */
  maxQueueDelayMs?: number;
  /** Inter-token latency cap: prompt work per step is limited so decode steps stay under it. 0 = off. */
  itlCapMs?: number;
  /** Order of waiting requests. Default "fcfs". */
  policy?: "fcfs" | "priority" | "edf";
  /** "no-evict" reserves prompt + maxTokens at admission; "max-utilization" admits on need and preempts by recompute. */
  kvPolicy?: "no-evict" | "max-utilization";
}

export interface LoadOptions {
  /**
   * "auto" picks the best engine this machine has for the model. Default "auto".
   * "synthetic" runs no model at all (a 256-token byte vocabulary, logits a fixed
   * function of the input): it measures the scheduler and binding; give `tokenizer`.
   */
  backend?: "auto" | "cpu" | "tensorrt" | "synthetic";
  /**
   * The accelerator for a TensorRT engine: a CUDA device index, "GPU-<uuid>",
   * or "MIG-<uuid>" (a MIG instance must also be the process's
   * CUDA_VISIBLE_DEVICES; pools do that per worker). Default: the first device.
   */
  device?: number | string;
  /** Where a fallback of backend "auto" to the CPU is reported. Default console.warn. */
  log?: (message: string) => void;
  /** "auto" computes in the checkpoint's own precision; "int8" quantizes weights at load. */
  precision?: "auto" | "f32" | "int8";
  /** Engine threads; 0 = all cores. */
  threads?: number;
  /** A tokenizer.json (or a directory holding one) to use instead of the model's own. */
  tokenizer?: string;
  scheduler?: SchedulerOptions;
}

export type ModelInfo = RawModelInfo;

const finishReasons: Record<number, FinishReason> = {
  [NativeFinish.Stop]: "stop",
  [NativeFinish.Length]: "length",
  [NativeFinish.Cancelled]: "cancelled",
  [NativeFinish.Error]: "error",
  [NativeFinish.DeadlineExceeded]: "deadline_exceeded",
  [NativeFinish.QueueTimeout]: "queue_timeout",
};

export class Model {
  readonly info: ModelInfo;
  private disposed = false;
  /** @internal request latencies; metrics observe them here. */
  readonly latency = new LatencyRecorder();

  private constructor(
    private readonly raw: RawModel,
    readonly tokenizer: TextTokenizer,
    private readonly streams: Map<number, TokenStream>,
    /** @internal each provider step's shape; metrics observe it here. */
    readonly steps: StepObserver,
  ) {
    this.info = raw.info();
  }

  /** True once dispose() has begun. */
  get isDisposed(): boolean {
    return this.disposed;
  }

  /** @internal use loadModel(). */
  static async load(path: string, options: LoadOptions): Promise<Model> {
    if (options.backend === "synthetic" && options.tokenizer === undefined)
      throw new InvalidRequestError('backend "synthetic" has no tokenizer of its own: give options.tokenizer');
    const streams = new Map<number, TokenStream>();
    let raw: RawModel | undefined;
    const steps: StepObserver = { observe: undefined };
    const onEvents = dispatchTo(streams, (id) => raw?.cancel(id), steps);
    raw = await addon()
      .loadModel(path, toRawOptions(options), onEvents)
      .catch((err: unknown) => {
        throw fromNative(err);
      });
    const { fallbackReason } = raw.info();
    if (fallbackReason) (options.log ?? console.warn)(`neoserve: ${path} runs on the cpu: ${fallbackReason}`);
    try {
      const tokenizer = await TextTokenizer.fromModelPath(options.tokenizer ?? path, raw.ggufTokenizer());
      return new Model(raw, tokenizer, streams, steps);
    } catch (err) {
      await raw.dispose();
      throw err;
    }
  }

  /** Starts a request. Throws InvalidRequestError at once if the request is malformed. */
  generate(request: GenerateRequest): TokenStream {
    const startedAt = performance.now(); // timings count from here, tokenizing and submitting included
    if (this.disposed) throw new ModelDisposedError();
    const prompt = this.promptTokens(request);
    const stop = typeof request.stop === "string" ? [request.stop] : [...(request.stop ?? [])];
    if (stop.some((s) => typeof s !== "string" || s.length === 0))
      throw new InvalidRequestError("stop must be a non-empty string or an array of them");
    const stopTokenIds = [...(request.ignoreEos ? [] : this.tokenizer.eosTokenIds), ...(request.stopTokenIds ?? [])];
    if (request.signal?.aborted) {
      // Aborted before it began: validated, but never queued.
      const stream = new TokenStream(prompt.length, new IncrementalDetokenizer(this.tokenizer), stop, () => {});
      stream.end("cancelled", "the request's AbortSignal was already aborted");
      return stream;
    }

    let id: number;
    try {
      id = this.raw.submit({
        tokens: Int32Array.from(prompt),
        maxTokens: request.maxTokens ?? 128,
        temperature: request.temperature ?? 1,
        topK: request.topK ?? 0,
        topP: request.topP ?? 1,
        minP: request.minP ?? 0,
        repetitionPenalty: request.repetitionPenalty ?? 1,
        frequencyPenalty: request.frequencyPenalty ?? 0,
        presencePenalty: request.presencePenalty ?? 0,
        seed: request.seed ?? Math.floor(Math.random() * 2 ** 32),
        stopTokenIds: Int32Array.from(stopTokenIds),
        captureLogits: request.returnLogits === true,
        priority: request.priority ?? 0,
        deadlineMs: request.deadlineMs ?? 0,
      });
    } catch (err) {
      throw fromNative(err);
    }

    const signal = request.signal;
    const onAbort = () => stream.cancel();
    const stream = new TokenStream(
      prompt.length,
      new IncrementalDetokenizer(this.tokenizer),
      stop,
      () => this.raw.cancel(id),
      this.latency,
      startedAt,
    );
    this.streams.set(id, stream);
    if (signal) {
      signal.addEventListener("abort", onAbort, { once: true });
      void stream.result.then(() => signal.removeEventListener("abort", onAbort));
    }
    return stream;
  }

  /**
   * Scheduler counters (queue, running sequences, KV blocks, steps, tokens,
   * preemptions, requests ended early by reason) and latency percentiles of
   * recent requests, in ms.
   */
  stats() {
    if (this.disposed) throw new ModelDisposedError();
    const raw = this.raw.stats();
    // Generated tokens per second of engine time (steps, scheduling and sampling; idle time excluded).
    const busyMs = raw.stepMsTotal + raw.scheduleMsTotal + raw.sampleMsTotal;
    const tokensPerSecond = busyMs > 0 ? (raw.tokensGenerated * 1000) / busyMs : 0;
    return { ...raw, tokensPerSecond, inFlight: this.streams.size, latency: this.latency.summary() };
  }

  /** Ends every request in flight (finish reason "cancelled") and frees the engine's memory. */
  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    await this.raw.dispose();
    for (const stream of this.streams.values()) stream.end("cancelled", "the model was disposed");
    this.streams.clear();
  }

  private promptTokens(request: GenerateRequest): number[] {
    const given = [request.prompt, request.tokens, request.messages].filter((x) => x !== undefined).length;
    if (given !== 1) throw new InvalidRequestError("give exactly one of prompt, tokens or messages");
    if (request.tokens !== undefined) {
      if (!Array.isArray(request.tokens) || !request.tokens.every((t) => Number.isInteger(t)))
        throw new InvalidRequestError("tokens must be an array of integer token ids");
      return [...request.tokens];
    }
    if (request.messages !== undefined) {
      const text = this.tokenizer.applyChatTemplate(request.messages, { addGenerationPrompt: true });
      return this.tokenizer.encode(text, { addSpecialTokens: false });
    }
    if (typeof request.prompt !== "string") throw new InvalidRequestError("prompt must be a string");
    return this.tokenizer.encode(request.prompt, { addSpecialTokens: true });
  }
}

function toRawOptions(options: LoadOptions) {
  const s = options.scheduler ?? {};
  return {
    backend: options.backend ?? "auto",
    precision: options.precision ?? "auto",
    threads: options.threads ?? 0,
    device: options.device === undefined ? "" : String(options.device),
    kvBlockSize: s.kvBlockSize,
    kvMemoryBytes: s.kvMemoryBytes,
    maxBatchSize: s.maxBatchSize,
    maxBatchTokens: s.maxBatchTokens,
    maxQueueSize: s.maxQueueSize,
    maxQueueDelayMs: s.maxQueueDelayMs,
    itlCapMs: s.itlCapMs,
    policy: s.policy,
    kvPolicy: s.kvPolicy,
  };
}

// Routes one batch of native events to the streams they belong to.
/** Sees the shape of every provider step (batch size and tokens). */
export interface StepObserver {
  observe: ((sequences: number, tokens: number) => void) | undefined;
}

function dispatchTo(streams: Map<number, TokenStream>, cancel: (id: number) => void, steps: StepObserver): RawEventsCallback {
  return (ids, tokens, finishes, errors, logits, admissions, step) => {
    if (step[0] > 0) steps.observe?.(step[0], step[1]);
    for (const a of admissions) streams.get(a.id)?.started(a.queuedMs);
    // Logits first: they belong to tokens of this same batch.
    for (const row of logits) streams.get(row.id)?.pushLogits(row.data);
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i]!;
      const stream = streams.get(id);
      if (!stream) continue;
      const finish = finishes[i]!;
      const token = tokens[i]!;
      if (finish === NativeFinish.None) {
        if (stream.pushToken(token)) {
          streams.delete(id);
          cancel(id); // a stop string ended it: free its sequence now
        }
        continue;
      }
      if (token >= 0) stream.pushToken(token, true);
      const error = errors.find((e) => e.id === id)?.message;
      stream.end(finishReasons[finish] ?? "error", error);
      streams.delete(id);
    }
  };
}

/**
 * Loads a Hugging Face directory or a GGUF file and starts its scheduler.
 * Rejects with ModelLoadError / ProviderUnavailableError / InvalidRequestError.
 */
export function loadModel(path: string, options: LoadOptions = {}): Promise<Model> {
  return Model.load(path, options);
}
