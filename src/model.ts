/**
 * A loaded model: generate() submits to the native scheduler and returns a
 * TokenStream; token events come back in batches and are routed by request id.
 */
import { addon, type RawEventsCallback, type RawLoadOptions, type RawModel, type RawModelInfo } from "./addon.js";
import type { Engine, EngineStats } from "./engine.js";
import { fromNative, InvalidRequestError, ModelDisposedError, type NeoserveError } from "./errors.js";
import { ABORTED_BEFORE_START } from "./generation-stream.js";
import { LatencyRecorder } from "./latency.js";
import { admitWhenTokenized, checkAtOnce, parseRequest, requestLimits } from "./request.js";
import { TokenStream } from "./token-stream.js";
import { IncrementalDetokenizer, tableDecoder, type TokenDecoder } from "./tokenizer/detokenizer.js";
import { type TextInput, type TextOptions, TextWorkers } from "./tokenizer/text-workers.js";
import { readSummary, removeSummary, summaryKey, writeSummary } from "./tokenizer/summary-cache.js";
import { TextTokenizer, type TokenizerSource } from "./tokenizer/tokenizer.js";
import type { FinishReason, GenerateRequest } from "./types.js";

/** The scheduler's knobs (defaults, ranges and meanings: RawLoadOptions, from native/core/options.h). */
export type SchedulerOptions = Pick<
  RawLoadOptions,
  | "maxBatchSize"
  | "maxBatchTokens"
  | "kvBlockSize"
  | "kvMemoryBytes"
  | "kvCacheDtype"
  | "maxQueueSize"
  | "maxQueueDelayMs"
  | "itlCapMs"
  | "batchWindowMs"
  | "policy"
  | "kvPolicy"
>;

export interface LoadOptions {
  /**
   * "auto" picks the best engine this machine has for the model. Default "auto".
   * "synthetic" runs no model at all (a 256-token byte vocabulary, logits a fixed
   * function of the input): it measures the scheduler and binding; give `tokenizer`.
   */
  backend?: RawLoadOptions["backend"];
  /**
   * The accelerator for a TensorRT engine: a CUDA device index, "GPU-<uuid>",
   * or "MIG-<uuid>" (a MIG instance must also be the process's
   * CUDA_VISIBLE_DEVICES; pools do that per worker). Default: the first device.
   */
  device?: number | string;
  /** Where a fallback of backend "auto" to the CPU is reported. Default console.warn. */
  log?: (message: string) => void;
  /** "auto" computes in the checkpoint's own precision; "int8" quantizes weights at load. */
  precision?: RawLoadOptions["precision"];
  threads?: RawLoadOptions["threads"];
  memoryLimitBytes?: RawLoadOptions["memoryLimitBytes"];
  weightCache?: RawLoadOptions["weightCache"];
  weightCacheCheck?: RawLoadOptions["weightCacheCheck"];
  /** A tokenizer.json (or a directory holding one) to use instead of the model's own. */
  tokenizer?: string;
  /** The threads that tokenize request text, and the limits each request's text is held to. */
  text?: TextOptions;
  scheduler?: SchedulerOptions;
}

export type ModelInfo = RawModelInfo;

export interface ModelStats extends EngineStats, ReturnType<RawModel["stats"]> {
  /** Generated tokens per second of engine time (steps, scheduling and sampling; idle time excluded). */
  tokensPerSecond: number;
  latency: ReturnType<LatencyRecorder["summary"]>;
}

export class Model implements Engine {
  readonly info: ModelInfo;
  private disposed = false;
  /** holdStart() was called this event-loop turn; released at its end (setImmediate). */
  private startHeld = false;
  /** @internal request latencies; metrics observe them here. */
  readonly latency = new LatencyRecorder();

  private constructor(
    private readonly raw: RawModel,
    private readonly text: TextWorkers,
    /** Detokenizes streamed tokens on this thread. */
    private readonly decoder: TokenDecoder,
    private readonly tokenizerSource: TokenizerSource,
    /** The tokenizer on this thread, once built (tokenizer()). */
    private mainTokenizer: Promise<TextTokenizer> | undefined,
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
    const onEvents = dispatchTo(streams, (id) => raw?.cancel(id, "stop"), steps);
    let loading: Promise<RawModel>;
    try {
      loading = addon().loadModel(path, toRawOptions(options), onEvents); // bad options throw before the promise
    } catch (err) {
      throw fromNative(err);
    }
    // The text workers build the tokenizer while the engine loads (its weights are converted on other threads):
    // what they need of the model comes from its headers. A model whose headers do not read fails its load.
    const describe = async (): Promise<{ format: string; vocabSize: number }> => {
      if (options.backend === "synthetic") return { format: "", vocabSize: 0 };
      try {
        return addon().describeModel(path);
      } catch {
        return (await loading).info(); // the load's own error (or, headers readable after all, its answer)
      }
    };
    const model = await describe().catch((err: unknown) => {
      throw fromNative(err);
    });
    const source: TokenizerSource = {
      path: options.tokenizer ?? path,
      ggufPath: model.format === "gguf" ? path : undefined,
      // A synthetic model's 256 ids sit inside any byte-level vocabulary: there is no model vocabulary to check against.
      vocabLimit: options.backend === "synthetic" ? undefined : model.vocabSize,
    };
    const [loaded, textStarted] = await Promise.allSettled([loading, startText(source, options)]);
    if (loaded.status === "rejected") {
      if (textStarted.status === "fulfilled") await textStarted.value.text.dispose();
      throw fromNative(loaded.reason);
    }
    raw = loaded.value;
    const info = raw.info();
    if (info.fallbackReason) (options.log ?? console.warn)(`neoserve: ${path} runs on the cpu: ${info.fallbackReason}`);
    let text: TextWorkers | undefined;
    try {
      if (textStarted.status === "rejected") throw textStarted.reason;
      const started = textStarted.value;
      text = started.text;
      const { vocabSize, decodeTable } = started.summary;
      // A decoder no byte table describes runs the tokenizer itself, on this thread.
      const tokenizer = decodeTable ? undefined : await TextTokenizer.fromSource(source);
      const decoder = decodeTable ? tableDecoder(vocabSize, decodeTable) : tokenizer!;
      return new Model(raw, text, decoder, source, tokenizer && Promise.resolve(tokenizer), streams, steps);
    } catch (err) {
      await text?.dispose();
      await raw.dispose();
      throw err;
    }
  }

  /**
   * The model's tokenizer on this thread, for synchronous text tools (encode,
   * decode, applyChatTemplate), built on first use. Building it holds the event
   * loop (hundreds of ms for a large vocabulary), and so can what a
   * third-party tokenizer then does: generate() never uses it for request
   * text, which its text workers tokenize.
   */
  tokenizer(): Promise<TextTokenizer> {
    this.mainTokenizer ??= TextTokenizer.fromSource(this.tokenizerSource);
    return this.mainTokenizer;
  }

  /**
   * Starts a request. Throws InvalidRequestError at once for a malformed
   * request or parameters, and for a prompt given as ids that the model cannot
   * take (QueueFullError when its queue is full). A text prompt is tokenized
   * off the event loop: what is wrong with it ends the stream, and rejects
   * `stream.accepted` with the typed error.
   */
  generate(request: GenerateRequest): TokenStream {
    const startedAt = performance.now(); // timings count from here, tokenizing and submitting included
    if (this.disposed) throw new ModelDisposedError();
    const parsed = parseRequest(request);
    // A prompt of ids is checked by submit() itself, as synchronously; one never submitted (aborted) is checked here.
    if (!("tokens" in parsed.input) || request.signal?.aborted) checkAtOnce(parsed, requestLimits(this.info));
    let id: number | undefined;
    const cancel = () => (id === undefined ? stream.end("cancelled", "cancelled before it was queued") : this.raw.cancel(id));
    const stream = new TokenStream(new IncrementalDetokenizer(this.decoder), parsed.stop, cancel, this.latency, startedAt);
    if (request.signal?.aborted) {
      stream.end("cancelled", ABORTED_BEFORE_START); // validated as if submitted, but never queued
      return stream;
    }
    admitWhenTokenized(parsed, this.text, stream, startedAt, (raw) => {
      if (this.disposed) return new ModelDisposedError();
      try {
        this.holdStartThisTurn();
        id = this.raw.submit(raw);
      } catch (err) {
        return fromNative(err) as NeoserveError;
      }
      this.streams.set(id, stream);
      return undefined;
    });
    stream.watch(request.signal);
    return stream;
  }

  // Requests submitted in one event-loop turn (a caller's Promise.all, the requests one network read
  // brought) share the idle engine's first step, instead of the first prefilling alone while the
  // rest wait for it. setImmediate runs once the turn's I/O callbacks are done. An engine with
  // requests in flight is not idle: arrivals join its next step, and it is not held.
  private holdStartThisTurn(): void {
    if (this.startHeld || this.streams.size > 0) return;
    this.startHeld = true;
    this.raw.holdStart();
    setImmediate(() => {
      this.startHeld = false;
      if (!this.disposed) this.raw.releaseStart();
    });
  }

  tokenize(input: TextInput): Promise<Int32Array> {
    if (this.disposed) return Promise.reject(new ModelDisposedError());
    return this.text.encode(input);
  }

  detokenize(ids: ArrayLike<number>, options: { skipSpecialTokens?: boolean } = {}): Promise<string> {
    if (this.disposed) return Promise.reject(new ModelDisposedError());
    return this.text.decode(ids, options);
  }

  /**
   * Scheduler counters (queue, running sequences, KV blocks, steps, tokens,
   * preemptions, requests ended early by reason) and latency percentiles of
   * recent requests, in ms.
   */
  stats(): ModelStats {
    if (this.disposed) throw new ModelDisposedError();
    const raw = this.raw.stats();
    // Generated tokens per second of engine time (steps, scheduling and sampling; idle time excluded).
    const busyMs = raw.stepMsTotal + raw.scheduleMsTotal + raw.sampleMsTotal;
    const tokensPerSecond = busyMs > 0 ? (raw.tokensGenerated * 1000) / busyMs : 0;
    // The percentiles sort thousands of samples: computed once, and only for a caller that reads them
    // (settling a request or routing one reads the counters alone, once per request).
    const recorder = this.latency;
    let latency: ModelStats["latency"] | undefined;
    return {
      ...raw,
      tokensPerSecond,
      inFlight: this.streams.size,
      progress: raw.steps,
      get latency() {
        return (latency ??= recorder.summary());
      },
    };
  }

  /** Ends every request in flight (finish reason "cancelled") and frees the engine's memory and text workers. */
  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    await Promise.all([this.raw.dispose(), this.text.dispose()]);
    for (const stream of this.streams.values()) stream.end("cancelled", "the model was disposed");
    this.streams.clear();
  }
}

// With a weight cache, what the text workers reported of this tokenizer before comes from it: the
// load does not wait for them to build it again (summary-cache.ts). A summary the background build
// then contradicts, or cannot confirm, is removed: the next load builds first.
async function startText(source: TokenizerSource, options: LoadOptions): ReturnType<typeof TextWorkers.start> {
  const dir = options.backend === "synthetic" ? undefined : options.weightCache || undefined;
  const at = dir === undefined ? undefined : await summaryKey(dir, source).catch(() => undefined); // unreadable: the build says why
  if (dir === undefined || at === undefined) return TextWorkers.start(source, options.text);
  const known = await readSummary(dir, at, source.vocabLimit);
  const started = await TextWorkers.start(source, options.text, known);
  if (!known) await writeSummary(dir, source, started.summary, at);
  else
    started.built?.then(
      (found) => (found.vocabSize === known.vocabSize ? undefined : removeSummary(at)),
      () => removeSummary(at),
    );
  return started;
}

function toRawOptions(options: LoadOptions): RawLoadOptions {
  return {
    ...options.scheduler,
    backend: options.backend,
    precision: options.precision,
    threads: options.threads,
    memoryLimitBytes: options.memoryLimitBytes,
    weightCache: options.weightCache,
    weightCacheCheck: options.weightCacheCheck,
    device: options.device === undefined ? undefined : String(options.device),
  };
}

// Routes one batch of native events to the streams they belong to.
/** Sees the shape of every provider step (batch size and tokens). */
export interface StepObserver {
  observe: ((sequences: number, tokens: number) => void) | undefined;
}

function dispatchTo(streams: Map<number, TokenStream>, stop: (id: number) => void, steps: StepObserver): RawEventsCallback {
  const finishReasons = addon().finishReasons as (FinishReason | "none")[];
  return (ids, tokens, finishes, errors, logits, admissions, step, logprobs) => {
    if (step[0] > 0) steps.observe?.(step[0], step[1]);
    for (const a of admissions) streams.get(a.id)?.started(a.queuedMs);
    // Logits and log probabilities first: they belong to tokens of this same batch.
    for (const row of logits) streams.get(row.id)?.pushLogits(row.data);
    for (const row of logprobs) streams.get(row.id)?.pushLogprobs(row);
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i]!;
      const stream = streams.get(id);
      if (!stream) continue;
      const finish = finishReasons[finishes[i]!] ?? "error";
      const token = tokens[i]!;
      if (finish === "none") {
        if (stream.pushToken(token)) {
          streams.delete(id);
          stop(id); // a stop string ended it: native code ends it as "stop" and frees its sequence now
        }
        continue;
      }
      if (token >= 0) stream.pushToken(token, true);
      const error = errors.find((e) => e.id === id)?.message;
      stream.end(finish, error);
      streams.delete(id);
    }
  };
}

/**
 * Loads a Hugging Face directory or a GGUF file and starts its scheduler.
 * Rejects with ModelLoadError / ProviderUnavailableError / OutOfMemoryError, or
 * InvalidRequestError for an option out of its range.
 */
export function loadModel(path: string, options: LoadOptions = {}): Promise<Model> {
  return Model.load(path, options);
}
