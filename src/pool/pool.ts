/**
 * A pool of model replicas, one worker process per slice (a process can use
 * only one MIG instance: CUDA_VISIBLE_DEVICES=MIG-<uuid>), behind the same
 * generate() as a Model. The router sends each request to the slice with the
 * least predicted wait; when a worker dies, requests that had streamed nothing
 * are resent elsewhere, the others end with "device_lost", and the worker is
 * restarted with backoff. A worker that stops answering (stopped, wedged) is
 * killed by a watchdog and handled the same way; deadlines and cancels are
 * enforced here too, so no request waits on a worker that is not there.
 */
import { fork, type ChildProcess } from "node:child_process";
import { join } from "node:path";
import type { Readable } from "node:stream";
import { addon, packageRoot, type RawRequest, type RawRequestLimits } from "../addon.js";
import type { Engine, EngineStats } from "../engine.js";
import { ABORTED_BEFORE_START } from "../generation-stream.js";
import { errorFromCode, fromNative, InvalidRequestError, ModelDisposedError, NeoserveError } from "../errors.js";
import type { LoadOptions, ModelInfo } from "../model.js";
import { admitWhenTokenized, checkAtOnce, parseRequest, requestLimits } from "../request.js";
import { type TextInput, TextWorkers } from "../tokenizer/text-workers.js";
import type { FinishReason, GenerateRequest, Token } from "../types.js";
import { ForwardedStream } from "../forwarded-stream.js";
import { FrameReader } from "./frames.js";
import {
  DEFAULT_FLUSH_INTERVAL_MS,
  DEFAULT_MAX_CRASHES_PER_REQUEST,
  DEFAULT_WORKER_TIMEOUT_MS,
  FRAME_FD,
  HEARTBEAT_INTERVAL_MS,
  type FromWorker, type SliceLoad, type ToWorker, type WireRequest } from "./protocol.js";

/** Restart delays of a dead worker, unless PoolOptions.restartBackoff says. */
const DEFAULT_RESTART_BACKOFF = { initialMs: 100, maxMs: 5000 };

/**
 * How long past a request's deadline the pool waits for its worker's own
 * result (which carries the engine's timings) before ending it itself.
 */
const DEADLINE_GRACE_MS = 50;

export interface PoolOptions {
  /** Model path, as for loadModel. */
  model: string;
  /** A count of workers on this machine's default device, or one device id per worker ("MIG-<uuid>", "GPU-<uuid>", or an index). */
  slices: number | readonly string[];
  load?: LoadOptions;
  /** Restart delay after a worker dies: doubles from `initialMs` up to `maxMs`. */
  restartBackoff?: { initialMs: number; maxMs: number };
  /**
   * The longest a worker holds tokens back to send them to the pool together
   * (each message costs both processes a wake-up). Only engines stepping
   * faster than this are affected. Default 10 ms; 0 sends every step at once.
   */
  flushIntervalMs?: number;
  /**
   * A worker silent for longer than this (no heartbeat, no token: stopped or
   * wedged) is killed and its requests fail over as if it had crashed; also
   * how long a cancelled request waits for its worker to confirm. Workers say
   * they are alive every 250 ms, so at least 500. Default 5000 ms.
   */
  workerTimeoutMs?: number;
  /**
   * A request in flight on this many worker deaths is not resent again: it
   * ends with "error" (a request that crashes every worker it reaches would
   * otherwise be resent forever). Default 2.
   */
  maxCrashesPerRequest?: number;
}

export interface PoolStats extends EngineStats {
  slices: SliceStats[];
  /** The slices' generated tokens per second of engine time, together (their last heartbeats). */
  tokensPerSecond: number;
  /** Requests waiting for a live worker. */
  pending: number;
  routed: number;
  resent: number;
  deviceLost: number;
  restarts: number;
  /** Requests ended "error" for having been in flight on maxCrashesPerRequest worker deaths. */
  poisoned: number;
}

export interface SliceStats {
  slice: string;
  ready: boolean;
  pid: number | undefined;
  inFlight: number;
  pendingTokens: number;
  served: number;
  restarts: number;
  /** The worker's engine and device, and the CUDA_VISIBLE_DEVICES it runs under. */
  backend: string | undefined;
  device: string | undefined;
  visibleDevices: string | undefined;
}

interface InFlight {
  id: number;
  request: WireRequest;
  /** The slices whose model can take it (slices may differ in KV cache or context). */
  fits: ReadonlySet<Slot>;
  stream: ForwardedStream;
  /** Predicted work: prompt tokens plus tokens still to generate. */
  cost: number;
  slot: Slot | undefined;
  /** performance.now() at which its deadlineMs (from generate()) runs out. */
  deadlineAt: number | undefined;
  /** Worker deaths it was in flight for. */
  crashes: number;
  cancelRequested: boolean;
  /** The parent's own deadline, and its bound on a worker's answer to a cancel. */
  timers: NodeJS.Timeout[];
}

class Slot {
  proc: ChildProcess | undefined;
  ready = false;
  /** When the pool last read a frame from this worker; undefined until its process has started (sent its first). */
  lastHeardAt: number | undefined;
  /** Why the pool killed the worker, if it did: its exit reports this rather than the signal. */
  killedFor: string | undefined;
  readonly inFlight = new Map<number, InFlight>();
  pendingTokens = 0;
  served = 0;
  restarts = 0;
  engine: { backend: string; device: string; visibleDevices: string | undefined } | undefined;
  /** Its engine's load, from the worker's last heartbeat (at most HEARTBEAT_INTERVAL_MS old). */
  load: SliceLoad | undefined;
  /** What this slice's model can take, from its worker's last ready message. */
  limits: RawRequestLimits | undefined;
  backoffMs: number;
  constructor(
    readonly slice: string,
    readonly env: Record<string, string>,
    initialBackoffMs: number,
  ) {
    this.backoffMs = initialBackoffMs;
  }
  send(m: ToWorker): void {
    if (this.proc?.connected) this.proc.send(m); // a dead worker's requests are handled by its exit
  }
}

const workerPath = () => join(packageRoot(), "dist", "src", "pool", "worker.js");

export class ModelPool implements Engine {
  private readonly slots: Slot[];
  /** The model as the first worker to load it described it, and the text workers tokenizing its requests. */
  private loaded: { info: ModelInfo; text: TextWorkers } | undefined;
  private describing: Promise<void> | undefined;
  private readonly backoff: { initialMs: number; maxMs: number };
  private readonly pending: InFlight[] = [];
  private readonly requests = new Map<number, InFlight>();
  private nextId = 1;
  private disposed = false;
  private counters = { routed: 0, resent: 0, deviceLost: 0, restarts: 0, poisoned: 0 };
  private tokensStreamed = 0;
  private readonly workerTimeoutMs: number;
  private readonly maxCrashes: number;
  private readonly watchdog: NodeJS.Timeout;
  private lastWatchAt = performance.now();

  private constructor(private readonly options: PoolOptions) {
    const backoff = (this.backoff = options.restartBackoff ?? DEFAULT_RESTART_BACKOFF);
    const slices =
      typeof options.slices === "number"
        ? Array.from({ length: options.slices }, (_, i) => ({ slice: `worker-${i}`, env: {} as Record<string, string> }))
        : options.slices.map((s) => ({ slice: s, env: { CUDA_VISIBLE_DEVICES: s } }));
    if (slices.length === 0) throw new InvalidRequestError("a pool needs at least one slice");
    const flush = options.flushIntervalMs;
    if (flush !== undefined && !(Number.isFinite(flush) && flush >= 0))
      throw new InvalidRequestError(`flushIntervalMs must be a number of ms >= 0, got ${flush}`);
    const timeout = (this.workerTimeoutMs = options.workerTimeoutMs ?? DEFAULT_WORKER_TIMEOUT_MS);
    if (!(Number.isFinite(timeout) && timeout >= 2 * HEARTBEAT_INTERVAL_MS))
      throw new InvalidRequestError(`workerTimeoutMs must be a number of ms >= ${2 * HEARTBEAT_INTERVAL_MS} (two heartbeats), got ${timeout}`);
    const crashes = (this.maxCrashes = options.maxCrashesPerRequest ?? DEFAULT_MAX_CRASHES_PER_REQUEST);
    if (!(Number.isInteger(crashes) && crashes >= 1))
      throw new InvalidRequestError(`maxCrashesPerRequest must be an integer >= 1, got ${crashes}`);
    this.slots = slices.map((s) => new Slot(s.slice, s.env, backoff.initialMs));
    // One timer for the whole pool; unref'd: a pool alone does not keep the process alive.
    this.watchdog = setInterval(() => this.watchSilence(), this.watchPeriodMs()).unref();
  }

  /** Starts one worker per slice; resolves when every worker has loaded the model. */
  static async start(options: PoolOptions): Promise<ModelPool> {
    const pool = new ModelPool(options);
    try {
      await Promise.all(pool.slots.map((slot) => pool.spawn(slot)));
      if (!pool.loaded) throw new NeoserveError("internal", "the pool's workers loaded without describing their model");
    } catch (e) {
      await pool.dispose();
      throw e;
    }
    return pool;
  }

  /** The model the workers run (as the first worker to load it reported). */
  get info(): ModelInfo {
    if (!this.loaded) throw new NeoserveError("internal", "the pool has not loaded its model");
    return this.loaded.info;
  }

  /**
   * Starts a request on the slice with the least predicted wait. The prompt is
   * tokenized and checked here, against the model's limits, so a pool throws
   * at once exactly what a Model's generate() throws.
   */
  generate(request: GenerateRequest): ForwardedStream {
    const startedAt = performance.now();
    if (this.disposed || !this.loaded) throw new ModelDisposedError("the pool has been disposed");
    const parsed = parseRequest(request);
    if (request.slice !== undefined && !this.slots.some((s) => s.slice === request.slice))
      throw new InvalidRequestError(`no slice "${request.slice}" in this pool`);
    checkAtOnce(parsed, requestLimits(this.loaded.info));
    const id = this.nextId++;
    const stream = new ForwardedStream(
      () => (this.requests.has(id) ? this.cancel(id) : stream.end("cancelled", "cancelled before it was queued")),
      startedAt,
    );
    const { signal, prompt: _p, messages: _m, ...rest } = request;
    if (signal?.aborted) {
      if ("tokens" in parsed.input) this.slicesThatFit(parsed.raw, request.slice); // checked, never sent: as a Model does
      stream.end("cancelled", ABORTED_BEFORE_START);
      return stream;
    }
    admitWhenTokenized(parsed, this.loaded.text, stream, startedAt, (raw) => {
      if (this.disposed) return new ModelDisposedError("the pool has been disposed");
      let fits: Set<Slot>;
      try {
        fits = this.slicesThatFit(raw, request.slice);
      } catch (e) {
        return e as NeoserveError;
      }
      const req: InFlight = {
        id,
        request: { ...rest, tokens: Array.prototype.slice.call(raw.tokens) as number[], deadlineMs: raw.deadlineMs },
        fits,
        stream,
        cost: raw.tokens.length + (raw.maxTokens ?? addon().defaultMaxTokens),
        slot: undefined,
        deadlineAt: undefined,
        crashes: 0,
        cancelRequested: false,
        timers: [],
      };
      this.requests.set(id, req);
      void stream.result.then(() => this.forget(req));
      this.enforceDeadline(req, raw.deadlineMs);
      this.dispatch(req);
      return undefined;
    });
    stream.watch(signal);
    return stream;
  }

  tokenize(input: TextInput): Promise<Int32Array> {
    if (this.disposed || !this.loaded) return Promise.reject(new ModelDisposedError("the pool has been disposed"));
    return this.loaded.text.encode(input);
  }

  detokenize(ids: ArrayLike<number>, options: { skipSpecialTokens?: boolean } = {}): Promise<string> {
    if (this.disposed || !this.loaded) return Promise.reject(new ModelDisposedError("the pool has been disposed"));
    return this.loaded.text.decode(ids, options);
  }

  // Every slice that could run the request; none: the error the first slice's model gives, as a Model would throw it.
  // Slices of one model mostly share their limits: each distinct set is checked once.
  private slicesThatFit(raw: RawRequest, pin: string | undefined): Set<Slot> {
    const fits = new Set<Slot>();
    const verdicts = new Map<RawRequestLimits, unknown>(); // limits → undefined (fits) or the error
    let refusal: unknown;
    for (const slot of this.slots) {
      const limits = slot.limits;
      if (!limits || (pin !== undefined && slot.slice !== pin)) continue;
      if (!verdicts.has(limits)) verdicts.set(limits, checkAgainst(raw, limits));
      const verdict = verdicts.get(limits);
      if (verdict === undefined) fits.add(slot);
      else refusal ??= verdict;
    }
    if (fits.size === 0) throw refusal ?? new InvalidRequestError(`slice "${pin}" has not loaded its model yet`);
    return fits;
  }

  stats(): PoolStats {
    // A new request goes to the live slice that would start it soonest: its wait is the pool's.
    const live = this.slots.filter((s) => s.ready && s.load);
    const soonest = live.filter((s) => s.load!.predictedWaitMs !== undefined).sort((a, b) => a.load!.predictedWaitMs! - b.load!.predictedWaitMs!)[0]?.load;
    return {
      inFlight: this.requests.size,
      progress: this.tokensStreamed,
      tokensPerSecond: live.reduce((sum, s) => sum + s.load!.tokensPerSecond, 0),
      ...(soonest ? { predictedWaitMs: soonest.predictedWaitMs, ...(soonest.stepTime ? { stepTime: soonest.stepTime } : {}) } : {}),
      slices: this.slots.map((s) => ({
        slice: s.slice,
        ready: s.ready,
        pid: s.proc?.pid,
        inFlight: s.inFlight.size,
        pendingTokens: s.pendingTokens,
        served: s.served,
        restarts: s.restarts,
        backend: s.engine?.backend,
        device: s.engine?.device,
        visibleDevices: s.engine?.visibleDevices,
      })),
      pending: this.pending.length,
      ...this.counters,
    };
  }

  /** Ends every request in flight ("cancelled") and stops the workers. */
  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    clearInterval(this.watchdog);
    for (const req of [...this.requests.values()]) req.stream.end("cancelled", "the pool was disposed");
    await this.loaded?.text.dispose(); // requests still being tokenized end "cancelled"
    await Promise.all(
      this.slots.map(
        (slot) =>
          new Promise<void>((resolve) => {
            const proc = slot.proc;
            if (!proc || proc.exitCode !== null || proc.signalCode !== null) return resolve();
            const kill = setTimeout(() => proc.kill("SIGKILL"), 5000);
            proc.once("exit", () => {
              clearTimeout(kill);
              resolve();
            });
            proc.disconnect(); // the worker disposes its model and exits
          }),
      ),
    );
  }

  // Least predicted wait: the slice with the fewest tokens of work in flight.
  private route(req: InFlight): Slot | undefined {
    const ready = this.slots.filter((s) => s.ready && req.fits.has(s));
    let best: Slot | undefined;
    for (const s of ready) if (!best || s.pendingTokens < best.pendingTokens) best = s;
    return best;
  }

  private dispatch(req: InFlight): void {
    const slot = this.route(req);
    if (!slot) {
      this.pending.push(req); // no live worker for it yet: sent when one is ready
      return;
    }
    req.slot = slot;
    slot.inFlight.set(req.id, req);
    slot.pendingTokens += req.cost;
    this.counters.routed++;
    slot.send({ t: "gen", id: req.id, request: this.wireRequest(req) });
  }

  // The deadline left, not the one asked for: a resent request keeps its deadline from generate().
  private wireRequest(req: InFlight): WireRequest {
    if (req.deadlineAt === undefined) return req.request;
    return { ...req.request, deadlineMs: Math.max(1, Math.round(req.deadlineAt - performance.now())) };
  }

  // The parent's own clock ends the request at its deadline even if its worker
  // never answers (stopped, or none live); a live worker's result comes first.
  private enforceDeadline(req: InFlight, deadlineMs: number | undefined): void {
    if (deadlineMs === undefined) return;
    req.deadlineAt = performance.now() + deadlineMs;
    req.timers.push(
      setTimeout(() => {
        req.slot?.send({ t: "cancel", id: req.id });
        req.stream.end("deadline_exceeded", `its deadline of ${deadlineMs} ms passed without an answer from a worker`);
      }, deadlineMs + DEADLINE_GRACE_MS),
    );
  }

  private drainPending(): void {
    const waiting = this.pending.splice(0);
    for (const req of waiting) if (!req.stream.finished) this.dispatch(req);
  }

  private cancel(id: number): void {
    const req = this.requests.get(id);
    if (!req) return;
    if (!req.slot) return req.stream.end("cancelled", "cancelled before it reached a worker");
    if (req.cancelRequested) return;
    req.cancelRequested = true;
    req.slot.send({ t: "cancel", id });
    // A live worker answers within a step, with the engine's own result (and
    // stops counting the request as its work only then); one that does not
    // answer within the watchdog's bound is as good as dead to this request.
    req.timers.push(
      setTimeout(() => req.stream.end("cancelled", `its worker did not answer the cancel within ${this.workerTimeoutMs} ms`), this.workerTimeoutMs),
    );
  }

  private forget(req: InFlight): void {
    for (const t of req.timers) clearTimeout(t);
    this.requests.delete(req.id);
    const i = this.pending.indexOf(req);
    if (i >= 0) this.pending.splice(i, 1);
    if (req.slot?.inFlight.delete(req.id)) req.slot.pendingTokens -= req.cost;
  }

  private spawn(slot: Slot): Promise<void> {
    return new Promise((resolve, reject) => {
      const proc = fork(workerPath(), [], {
        env: { ...process.env, ...slot.env },
        stdio: ["ignore", "inherit", "inherit", "ipc", "pipe"], // fd 4: the worker's frame pipe
        serialization: "advanced",
      });
      slot.proc = proc;
      slot.lastHeardAt = undefined; // watched from its first frame: a process still starting has said nothing yet
      slot.killedFor = undefined;
      const frames = new FrameReader({
        token: (id, token, text) => this.onToken(slot, id, token, text),
        message: (m) => this.onMessage(slot, m, resolve, reject),
      });
      (proc.stdio[FRAME_FD] as Readable).on("data", (chunk: Buffer) => {
        if (slot.proc === proc) slot.lastHeardAt = performance.now(); // any frame says it is alive
        try {
          frames.push(chunk);
        } catch (e) {
          // A worker that speaks garbage is as good as dead: its requests fail over like a crash's.
          process.emitWarning(`neoserve pool: slice ${slot.slice} sent a malformed frame (${String(e)}); restarting it`);
          proc.kill("SIGKILL");
        }
      });
      proc.once("exit", (code, signal) => {
        reject(new NeoserveError("device_lost", `worker for slice ${slot.slice} exited (${signal ?? `code ${code}`}) while loading`));
        this.onExit(slot, proc, slot.killedFor ?? signal ?? `code ${code}`);
      });
      const { log: _log, ...load } = this.options.load ?? {}; // a function cannot cross: workers log to their stderr
      slot.send({
        t: "load",
        path: this.options.model,
        options: load,
        flushIntervalMs: this.options.flushIntervalMs ?? DEFAULT_FLUSH_INTERVAL_MS,
      });
    });
  }

  private onToken(slot: Slot, id: number, token: number, text: string, logprob?: Token["logprob"]): void {
    const req = this.requests.get(id);
    if (!req) return;
    req.stream.pushToken(logprob ? { id: token, text, logprob } : { id: token, text });
    this.tokensStreamed++;
    req.cost--;
    slot.pendingTokens--;
  }

  private onMessage(slot: Slot, m: FromWorker, loaded: () => void, failed: (e: Error) => void): void {
    switch (m.t) {
      case "ready": {
        const proc = slot.proc;
        void this.describe(m.info).then(
          () => {
            // The worker may have died (and its exit been handled) while the tokenizer loaded.
            if (slot.proc !== proc || !proc || proc.exitCode !== null || proc.signalCode !== null) return;
            slot.ready = true;
            slot.limits = this.sharedLimits(requestLimits(m.info));
            slot.engine = { backend: m.info.backend, device: m.info.device, visibleDevices: m.visibleDevices };
            slot.backoffMs = this.backoff.initialMs;
            loaded();
            this.drainPending();
          },
          (e: unknown) => {
            failed(e as Error);
            slot.proc?.kill("SIGKILL");
          },
        );
        return;
      }
      case "loadError":
        // The worker's own error, class and code kept: a pool fails to load exactly as a Model would.
        failed(errorFromCode(m.code, `slice ${slot.slice}: ${m.message}`));
        slot.proc?.kill("SIGKILL");
        return;
      case "token":
        this.onToken(slot, m.id, m.token, m.text, m.logprob);
        return;
      case "end": {
        const req = this.requests.get(m.id);
        if (!req) return;
        slot.served++;
        req.stream.finish(m.result);
        return;
      }
      case "alive":
        if (m.load) slot.load = m.load; // its arrival counts too (spawn's reader notes it)
        return;
      case "rejected": {
        // Checked before it was sent, so only the worker's own state can refuse it now (its queue is full).
        const req = this.requests.get(m.id);
        req?.stream.end(m.code === "queue_full" ? "queue_full" : "error", `${m.code}: ${m.message}`);
        return;
      }
    }
  }

  // A worker died: what streamed nothing goes elsewhere, the rest ends device_lost; restart with backoff.
  private onExit(slot: Slot, proc: ChildProcess, how: string): void {
    if (slot.proc !== proc) return;
    slot.proc = undefined;
    slot.ready = false;
    const orphans = [...slot.inFlight.values()];
    slot.inFlight.clear();
    slot.pendingTokens = 0;
    for (const req of orphans) {
      req.slot = undefined;
      if (req.stream.finished) continue;
      req.crashes++;
      this.failOver(req, `the worker for slice ${slot.slice} died (${how})`);
    }
    if (this.disposed) return;
    const delay = slot.backoffMs;
    slot.backoffMs = Math.min(slot.backoffMs * 2, this.backoff.maxMs);
    setTimeout(() => {
      if (this.disposed) return;
      slot.restarts++;
      this.counters.restarts++;
      this.spawn(slot).catch(() => {}); // a failed restart exits and schedules the next one
    }, delay).unref();
  }

  // One orphan of a dead worker: resent if nothing of it was streamed, unless
  // it was cancelled or has now been in flight on too many deaths (a request
  // that crashes every worker would otherwise take them all down, forever).
  private failOver(req: InFlight, death: string): void {
    if (req.cancelRequested) return req.stream.end("cancelled", `${death} after the request was cancelled`);
    if (req.stream.streamed > 0 || this.disposed) {
      this.counters.deviceLost++;
      return req.stream.end("device_lost" satisfies FinishReason, `${death} after streaming ${req.stream.streamed} tokens`);
    }
    if (req.crashes >= this.maxCrashes) {
      this.counters.poisoned++;
      return req.stream.end(
        "error",
        `the request crashed ${req.crashes} workers (each died while it was in flight; the last: ${death}); it is not resent again`,
      );
    }
    this.counters.resent++;
    this.dispatch(req);
  }

  private watchPeriodMs(): number {
    return Math.min(HEARTBEAT_INTERVAL_MS, this.workerTimeoutMs / 4);
  }

  // A worker silent past workerTimeoutMs (stopped, wedged) never exits by
  // itself: kill it, and its exit fails its requests over and restarts it.
  private watchSilence(): void {
    const now = performance.now();
    // This process's own stall (a long synchronous task) is not the workers'
    // silence: frames waiting in their pipes are read only after this tick.
    const lateMs = Math.max(0, now - this.lastWatchAt - this.watchPeriodMs());
    this.lastWatchAt = now;
    for (const slot of this.slots) {
      if (!slot.proc || slot.lastHeardAt === undefined) continue;
      slot.lastHeardAt = Math.min(now, slot.lastHeardAt + lateMs);
      const silentMs = now - slot.lastHeardAt;
      if (silentMs > this.workerTimeoutMs) this.declareDead(slot, silentMs);
    }
  }

  private declareDead(slot: Slot, silentMs: number): void {
    slot.ready = false; // routes nothing more to it from now
    slot.lastHeardAt = undefined; // one kill per silence
    slot.killedFor = `silent for ${Math.round(silentMs)} ms, killed by the pool`;
    process.emitWarning(`neoserve pool: slice ${slot.slice} was ${slot.killedFor}`);
    slot.proc?.kill("SIGKILL");
  }

  // The first worker to load describes the model; the pool's text workers
  // tokenize requests with its tokenizer. Later workers only wait.
  private describe(info: ModelInfo): Promise<void> {
    this.describing ??= (async () => {
      const { model, load } = this.options;
      const source = {
        path: load?.tokenizer ?? model,
        ggufPath: info.format === "gguf" ? model : undefined,
        vocabLimit: load?.backend === "synthetic" ? undefined : info.vocabSize,
      };
      const { text } = await TextWorkers.start(source, load?.text);
      if (this.disposed) return void (await text.dispose());
      this.loaded = { info, text };
    })();
    return this.describing;
  }

  // One object per distinct set of limits, so slicesThatFit checks each set once.
  private sharedLimits(limits: RawRequestLimits): RawRequestLimits {
    const same = this.slots.find(
      (s) =>
        s.limits &&
        s.limits.vocabSize === limits.vocabSize &&
        s.limits.maxContext === limits.maxContext &&
        s.limits.kvBlockSize === limits.kvBlockSize &&
        s.limits.kvBlocks === limits.kvBlocks,
    );
    return same?.limits ?? limits;
  }
}

// undefined when `raw` fits `limits`; otherwise the typed error a Model would throw.
function checkAgainst(raw: RawRequest, limits: RawRequestLimits): unknown {
  try {
    addon().checkRequest(raw, limits);
    return undefined;
  } catch (e) {
    return fromNative(e);
  }
}
