/**
 * Request text becomes token ids in text worker processes, never on the event
 * loop: a model's tokenizer and chat template come from third-party files, and
 * a hostile pre-tokenizer regex, template loop or megabyte prompt would stall
 * every stream for seconds. Each worker holds the model's tokenizer (built
 * there, so loading does not block either) and runs one request at a time
 * under a time limit and a heap limit; a worker past either is killed and
 * replaced, and only that request fails, with InputLimitError. Processes, not
 * threads: V8 may end the whole process when one huge allocation (a template
 * doubling a list) passes a thread's heap limit.
 */
import { fork, type ChildProcess } from "node:child_process";
import { availableParallelism } from "node:os";
import { join } from "node:path";
import { packageRoot } from "../addon.js";
import { errorFromCode, InputLimitError, InvalidRequestError, ModelLoadError, NeoserveError, type WireError } from "../errors.js";
import type { ChatMessage, RenderLimits } from "./chat-template.js";
import type { TokenBytes } from "./token-bytes.js";
import type { TokenizerSource } from "./tokenizer.js";

/** How request text is tokenized: worker processes and the limits each request is held to. */
export interface TextOptions {
  /** Processes tokenizing request text. Default min(2, cores). */
  workers?: number;
  /** The most one request's tokenizing (template included) may take, in ms. Default 10000. */
  timeoutMs?: number;
  /** Characters of text one request tokenizes: the prompt, or the rendered conversation. Default 4 Mi. */
  maxInputChars?: number;
  /** Chat-template evaluation steps for one request (a few µs each). Default 1,000,000. */
  maxTemplateSteps?: number;
  /** The longest a worker may take to build the tokenizer and its byte table, in ms (a ModelLoadError past it). Default 120000. */
  buildTimeoutMs?: number;
  /** Heap of each worker process, in MiB; a request that needs more fails, the worker is replaced. Default 1024. */
  heapMb?: number;
}

/**
 * The text of a request: a prompt (with the model's special tokens added, as
 * generate() adds them, unless addSpecialTokens is false), or messages for the
 * chat template.
 */
export type TextInput =
  | { prompt: string; addSpecialTokens?: boolean }
  | { messages: readonly ChatMessage[]; parseSpecialTokens: boolean; addGenerationPrompt?: boolean };

/** Work for a text worker: text to ids, or ids to text. */
type TextWork = { t: "encode"; input: TextInput } | { t: "decode"; ids: Int32Array; skipSpecialTokens: boolean };

/** @internal what a text worker starts with. */
export interface TextWorkerData {
  source: TokenizerSource;
  render: RenderLimits;
  /** Send the streaming detokenizer's byte table with "ready" (the first worker only). */
  sendDecodeTable: boolean;
}

/** @internal */
export type ToTextWorker = TextWork & { id: number };
/** @internal */
export type FromTextWorker =
  | { t: "ready"; vocabSize: number; table: Omit<TokenBytes, "texts"> | null }
  | { t: "loadError"; error: WireError }
  | { t: "encoded"; id: number; ids: Int32Array }
  | { t: "decoded"; id: number; text: string }
  | { t: "failed"; id: number; error: WireError; limit: boolean };

/** What the first worker reports of the tokenizer it built. */
export interface TokenizerSummary {
  vocabSize: number;
  /** The byte-level fast path of streaming detokenization; null when decoding needs the tokenizer itself. */
  decodeTable: TokenBytes | null;
}

const DEFAULTS = { buildTimeoutMs: 120_000, timeoutMs: 10_000, maxInputChars: 4 << 20, maxTemplateSteps: 1_000_000, heapMb: 1024 };

interface Job {
  id: number;
  work: TextWork;
  /** Checked when a worker frees up: a request cancelled while it waited is never tokenized. */
  abandoned: () => boolean;
  resolve: (result: Int32Array | string) => void;
  reject: (e: Error) => void;
}

class TextWorker {
  job: Job | undefined;
  timer: NodeJS.Timeout | undefined;
  ready = false;
  /** The start of its stderr: what V8 said if it died of its heap limit. */
  stderr = "";
  constructor(readonly proc: ChildProcess) {}
  send(m: ToTextWorker): void {
    if (this.proc.connected) this.proc.send(m);
  }
  /** An idle worker does not keep the process alive; one building or tokenizing does. */
  hold(yes: boolean): void {
    for (const handle of [this.proc, this.proc.channel, this.proc.stderr as { ref(): void; unref(): void } | null])
      if (yes) handle?.ref();
      else handle?.unref();
  }
}

const workerPath = () => join(packageRoot(), "dist", "src", "tokenizer", "text-worker.js");

export class TextWorkers {
  private readonly workers = new Set<TextWorker>();
  private readonly queue: Job[] = [];
  private nextId = 1;
  private disposed = false;
  /** Why the tokenizer could not be built in the background (start() with a known summary). */
  private failure: Error | undefined;
  private readonly limits: Required<Omit<TextOptions, "workers">>;
  private readonly count: number;

  private constructor(
    private readonly source: TokenizerSource,
    options: TextOptions,
  ) {
    this.count = options.workers ?? Math.min(2, availableParallelism());
    this.limits = { ...DEFAULTS, ...definedOnly(options) };
    checkTextOptions(this.count, this.limits);
  }

  /**
   * Starts the workers; resolves once the first has built the tokenizer (the
   * others finish building meanwhile). Rejects with the tokenizer's
   * ModelLoadError, InvalidRequestError for a bad option.
   *
   * Given `known` (what an earlier build reported, summary-cache.ts), resolves
   * at once and the workers build in the background: text waits for the
   * first of them, and fails with its error should the build fail twice.
   * `built` then settles with what the build found (or why it failed).
   */
  static async start(
    source: TokenizerSource,
    options: TextOptions = {},
    known?: TokenizerSummary,
  ): Promise<{ text: TextWorkers; summary: TokenizerSummary; built?: Promise<TokenizerSummary> }> {
    const text = new TextWorkers(source, options);
    const rest = () => {
      for (let i = 1; i < text.count && !text.disposed; i++) void text.spawn(false).catch(() => {}); // its failure is the first one's
    };
    if (known) {
      // A second try: a worker killed mid-build (memory, a busy machine's timer) need not leave the model without text.
      const built = text.spawn(false).catch(() => text.spawn(false));
      built.then(rest, (e: unknown) => text.fail(e as Error));
      return { text, summary: known, built };
    }
    try {
      const summary = await text.spawn(true);
      rest();
      return { text, summary };
    } catch (e) {
      await text.dispose();
      throw e;
    }
  }

  // The background build failed: what waits for it, and all text after, gets its error.
  private fail(e: Error): void {
    if (this.disposed) return;
    this.failure = e;
    for (const job of this.queue.splice(0)) job.reject(e);
  }

  /**
   * Token ids of `input`, encoded as TextTokenizer.encode / encodeChat do.
   * Rejects with InvalidRequestError (a template's refusal), InputLimitError
   * (size, steps, time, memory), ModelDisposedError's code "disposed".
   */
  encode(input: TextInput, abandoned: () => boolean = () => false): Promise<Int32Array> {
    const chars = "prompt" in input ? input.prompt.length : input.messages.reduce((n, m) => n + m.content.length, 0);
    if (chars > this.limits.maxInputChars)
      return Promise.reject(new InputLimitError(`the request holds ${chars} characters of text; the limit is ${this.limits.maxInputChars}`));
    return this.run({ t: "encode", input }, abandoned) as Promise<Int32Array>;
  }

  /** The text of `ids`, decoded as TextTokenizer.decode does; rejects as encode() does. */
  decode(ids: ArrayLike<number>, options: { skipSpecialTokens?: boolean } = {}): Promise<string> {
    return this.run({ t: "decode", ids: Int32Array.from(ids), skipSpecialTokens: options.skipSpecialTokens ?? false }) as Promise<string>;
  }

  private run(work: TextWork, abandoned: () => boolean = () => false): Promise<Int32Array | string> {
    if (this.disposed) return Promise.reject(stoppedError());
    if (this.failure) return Promise.reject(this.failure);
    if (this.workers.size === 0) return Promise.reject(new NeoserveError("internal", "the model's text workers could not be restarted"));
    return new Promise((resolve, reject) => {
      this.queue.push({ id: this.nextId++, work, abandoned, resolve, reject });
      this.drain();
    });
  }

  /** Stops every worker; requests not yet tokenized fail with code "disposed". */
  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    const stopped = stoppedError();
    for (const job of this.queue.splice(0)) job.reject(stopped);
    for (const w of [...this.workers]) {
      w.job?.reject(stopped);
      w.job = undefined;
      this.retire(w);
    }
  }

  private spawn(sendDecodeTable: boolean): Promise<TokenizerSummary> {
    if (this.disposed) return Promise.reject(stoppedError());
    const data: TextWorkerData = {
      source: this.source,
      render: { maxSteps: this.limits.maxTemplateSteps, maxOutputChars: this.limits.maxInputChars },
      sendDecodeTable,
    };
    const proc = fork(workerPath(), [JSON.stringify(data)], {
      execArgv: [`--max-old-space-size=${this.limits.heapMb}`],
      stdio: ["ignore", "ignore", "pipe", "ipc"],
      serialization: "advanced", // typed arrays cross as themselves
    });
    const worker = new TextWorker(proc);
    this.workers.add(worker);
    proc.stderr!.setEncoding("utf8").on("data", (chunk: string) => {
      if (worker.stderr.length < 4096) worker.stderr += chunk.slice(0, 4096);
    });
    return new Promise((resolve, reject) => {
      worker.timer = setTimeout(() => {
        reject(new ModelLoadError(`${this.source.path}: building the tokenizer took longer than ${this.limits.buildTimeoutMs} ms`));
        this.retire(worker);
      }, this.limits.buildTimeoutMs);
      proc.on("message", (m: FromTextWorker) => {
        if (!this.workers.has(worker)) return; // retired (disposed, replaced): what it still sends is moot
        switch (m.t) {
          case "ready":
            clearTimeout(worker.timer);
            worker.ready = true;
            worker.hold(false);
            resolve({ vocabSize: m.vocabSize, decodeTable: m.table && { ...m.table, texts: new Array(m.vocabSize) } });
            this.drain();
            return;
          case "loadError":
            reject(errorFromCode(m.error.code, m.error.message));
            this.retire(worker);
            return;
          case "encoded":
          case "decoded":
          case "failed":
            this.finish(worker, m);
            return;
        }
      });
      proc.on("error", () => {}); // a failed spawn also exits: handled there
      proc.on("close", (code, signal) => { // after its stderr is read: it may say why
        if (!this.workers.has(worker)) return; // retired by this side
        const how = signal ?? `code ${code}`;
        const outOfHeap = /heap out of memory|OutOfMemory/i.test(worker.stderr);
        reject(new ModelLoadError(`${this.source.path}: the tokenizer worker exited (${how}) while building the tokenizer`));
        worker.job?.reject(
          outOfHeap
            ? new InputLimitError(`tokenizing the request needed more than the text worker's ${this.limits.heapMb} MiB heap`)
            : new NeoserveError("internal", `the text worker exited (${how}) while tokenizing the request`),
        );
        worker.job = undefined;
        this.replace(worker);
      });
    });
  }

  private finish(worker: TextWorker, m: Extract<FromTextWorker, { t: "encoded" | "decoded" | "failed" }>): void {
    const job = worker.job;
    if (!job || job.id !== m.id) return;
    clearTimeout(worker.timer);
    worker.job = undefined;
    worker.hold(false);
    if (m.t === "encoded") job.resolve(m.ids);
    else if (m.t === "decoded") job.resolve(m.text);
    else job.reject(m.limit ? new InputLimitError(m.error.message) : errorFromCode(m.error.code, m.error.message));
    this.drain();
  }

  private drain(): void {
    for (const worker of this.workers) {
      if (!worker.ready || worker.job) continue;
      let job: Job | undefined;
      while ((job = this.queue.shift()) && job.abandoned()) job.reject(new NeoserveError("cancelled", "the request was cancelled before its text was tokenized"));
      if (!job) return;
      worker.job = job;
      worker.hold(true);
      worker.timer = setTimeout(() => this.timeOut(worker), this.limits.timeoutMs);
      worker.send({ ...job.work, id: job.id });
    }
  }

  // Killing is the one way to stop a regex or a template loop midway.
  private timeOut(worker: TextWorker): void {
    const job = worker.job;
    worker.job = undefined;
    job?.reject(new InputLimitError(`tokenizing the request took longer than ${this.limits.timeoutMs} ms`));
    this.replace(worker);
  }

  private retire(worker: TextWorker): void {
    clearTimeout(worker.timer);
    this.workers.delete(worker);
    worker.proc.kill("SIGKILL");
  }

  // A worker that built the tokenizer once builds it again: its replacement starts at once.
  private replace(worker: TextWorker): void {
    if (!this.workers.has(worker)) return;
    const wasReady = worker.ready;
    this.retire(worker);
    if (this.disposed || !wasReady) return;
    this.spawn(false).catch((e: unknown) => {
      for (const job of this.queue.splice(0)) job.reject(e as Error);
    });
  }
}

const stoppedError = () => new NeoserveError("disposed", "the model's text workers have stopped");

function checkTextOptions(workers: number, limits: Required<Omit<TextOptions, "workers">>): void {
  const positiveInt = (name: string, v: number, max: number) => {
    if (!(Number.isInteger(v) && v >= 1 && v <= max)) throw new InvalidRequestError(`text.${name} must be an integer in [1, ${max}], got ${v}`);
  };
  positiveInt("workers", workers, 64);
  positiveInt("timeoutMs", limits.timeoutMs, 3_600_000);
  positiveInt("buildTimeoutMs", limits.buildTimeoutMs, 3_600_000);
  positiveInt("maxInputChars", limits.maxInputChars, 1 << 29);
  positiveInt("maxTemplateSteps", limits.maxTemplateSteps, 1e9);
  positiveInt("heapMb", limits.heapMb, 1 << 20);
}

function definedOnly<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
