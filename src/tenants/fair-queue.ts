/**
 * Fair queueing in front of an engine: at most `slots` requests run in it at
 * once (its batch); the rest wait here in one queue per tenant, and a free
 * slot goes to the tenant that has had the fewest slots for its weight. So
 * that a tenant with nothing running never waits for another's requests to
 * end, `reserve` slots are kept for such tenants: a tenant already running
 * requests fills at most slots − reserve. One tenant's flood then costs
 * another a shared step, not a place in line.
 * A queued request's deadline keeps counting from its generate(); its engine
 * checks it only when it starts, so a request the engine refuses then ends
 * with the typed error through `accepted` rather than a throw.
 */
import type { Engine, EngineStats } from "../engine.js";
import { ModelDisposedError, type NeoserveError } from "../errors.js";
import { ForwardedStream, relay } from "../forwarded-stream.js";
import type { GenerationStream } from "../generation-stream.js";
import { parseRequest } from "../request.js";
import type { TextInput } from "../tokenizer/text-workers.js";
import type { FinishReason, GenerateRequest } from "../types.js";

interface Waiting {
  request: GenerateRequest;
  stream: ForwardedStream;
  queuedAt: number;
  /** Once started: cancels it in the engine. */
  cancel?: () => void;
  /** Ends it if its deadline passes while it waits. */
  timer?: NodeJS.Timeout;
}

const ANONYMOUS = "";

export class FairQueue implements Engine {
  private running = 0;
  private readonly runningOf = new Map<string, number>();
  private readonly queues = new Map<string, Waiting[]>();
  /** Slots each tenant has been given, over its weight: the next slot goes to the smallest. */
  private readonly served = new Map<string, number>();
  private queued = 0;
  private disposed = false;

  constructor(
    private readonly inner: Engine,
    private readonly slots: number,
    private readonly weightOf: (tenant: string) => number = () => 1,
    private readonly reserve = Math.min(1, slots - 1),
  ) {}

  get info() {
    return this.inner.info;
  }

  generate(request: GenerateRequest): GenerationStream {
    if (this.disposed) throw new ModelDisposedError("the engine has been disposed");
    const tenant = request.route?.tenant ?? ANONYMOUS;
    if (this.startable(tenant) && !this.queues.has(tenant)) return this.start(tenant, request);
    parseRequest(request); // its shape now; the engine checks the rest when it starts
    const waiting: Waiting = { request, stream: undefined as unknown as ForwardedStream, queuedAt: performance.now() };
    waiting.stream = new ForwardedStream(() => this.drop(tenant, waiting), waiting.queuedAt);
    let queue = this.queues.get(tenant);
    if (!queue) {
      queue = [];
      this.queues.set(tenant, queue);
      // A tenant that was idle starts level with the busiest ones, not ahead by what it did not use.
      const floor = Math.min(...[...this.queues.keys()].filter((t) => t !== tenant).map((t) => this.served.get(t) ?? 0), Infinity);
      this.served.set(tenant, Math.max(this.served.get(tenant) ?? 0, Number.isFinite(floor) ? floor : 0));
    }
    queue.push(waiting);
    this.queued++;
    if (request.deadlineMs !== undefined)
      waiting.timer = setTimeout(() => this.drop(tenant, waiting, ["deadline_exceeded", `deadline of ${request.deadlineMs} ms passed while queued`]), request.deadlineMs);
    waiting.stream.watch(request.signal);
    return waiting.stream;
  }

  private startable(tenant: string): boolean {
    return this.running < this.slots && ((this.runningOf.get(tenant) ?? 0) === 0 || this.running < this.slots - this.reserve);
  }

  // Runs a request in the engine now; its slot frees when it ends.
  private start(tenant: string, request: GenerateRequest): GenerationStream {
    const stream = this.inner.generate(request);
    this.running++;
    this.runningOf.set(tenant, (this.runningOf.get(tenant) ?? 0) + 1);
    void stream.result.then(() => {
      this.running--;
      const left = this.runningOf.get(tenant)! - 1;
      if (left === 0) this.runningOf.delete(tenant);
      else this.runningOf.set(tenant, left);
      this.pump();
    });
    return stream;
  }

  private pump(): void {
    for (;;) {
      const tenant = this.next();
      if (tenant === undefined) return;
      const queue = this.queues.get(tenant)!;
      const w = queue.shift()!;
      clearTimeout(w.timer);
      this.queued--;
      if (queue.length === 0) this.queues.delete(tenant);
      this.served.set(tenant, (this.served.get(tenant) ?? 0) + 1 / Math.max(1e-6, this.weightOf(tenant)));
      const waited = performance.now() - w.queuedAt;
      const deadlineMs = w.request.deadlineMs === undefined ? undefined : w.request.deadlineMs - waited;
      if (deadlineMs !== undefined && deadlineMs <= 0) {
        w.stream.end("deadline_exceeded", `deadline of ${w.request.deadlineMs} ms passed while queued`);
        continue;
      }
      const { signal: _s, ...request } = w.request;
      let inner: GenerationStream;
      try {
        inner = this.start(tenant, { ...request, deadlineMs });
      } catch (err) {
        w.stream.refuse(err as NeoserveError);
        continue;
      }
      w.cancel = () => inner.cancel();
      relay(inner, w.stream);
    }
  }

  // The tenant with queued work that may start one now and has had the fewest slots for its weight.
  private next(): string | undefined {
    let best: string | undefined;
    for (const t of this.queues.keys())
      if (this.startable(t) && (best === undefined || (this.served.get(t) ?? 0) < (this.served.get(best) ?? 0))) best = t;
    return best;
  }

  // A request cancelled (or past its deadline): out of its queue if it still waits, else cancelled in the engine.
  private drop(tenant: string, w: Waiting, why: [FinishReason, string] = ["cancelled", "cancelled while queued for its tenant's turn"]): void {
    const queue = this.queues.get(tenant);
    const at = queue?.indexOf(w) ?? -1;
    if (at >= 0) {
      clearTimeout(w.timer);
      queue!.splice(at, 1);
      this.queued--;
      if (queue!.length === 0) this.queues.delete(tenant);
      w.stream.end(...why);
      return;
    }
    w.cancel?.();
  }

  tokenize(input: TextInput): Promise<Int32Array> {
    return this.inner.tokenize(input);
  }

  detokenize(ids: ArrayLike<number>, options?: { skipSpecialTokens?: boolean }): Promise<string> {
    return this.inner.detokenize(ids, options);
  }

  stats(): EngineStats & { fairQueued: number } {
    const s = this.inner.stats();
    // What waits here is ahead of a new request too: stretch the engine's own prediction by it.
    const predictedWaitMs = s.predictedWaitMs === undefined ? undefined : s.predictedWaitMs * (1 + this.queued / this.slots);
    return { ...s, inFlight: s.inFlight + this.queued, fairQueued: this.queued, ...(predictedWaitMs === undefined ? {} : { predictedWaitMs }) };
  }

  async dispose(): Promise<void> {
    this.disposed = true;
    for (const queue of this.queues.values())
      for (const w of queue) {
        clearTimeout(w.timer);
        w.stream.end("cancelled", "the engine was disposed");
      }
    this.queues.clear();
    this.queued = 0;
    await this.inner.dispose();
  }
}
