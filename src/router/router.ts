/**
 * An Engine that serves one model alias from several backends (Models, pools,
 * remote servers), choosing per request by privacy, latency budget and cost
 * (route-decision.ts), with fallback: a backend that fails or refuses before
 * the first token is replaced by the next in the decision's order, unseen by
 * the caller; after the first token the stream ends with its reason. Backends
 * may be shared by several routers; their owner disposes them.
 */
import { createHash } from "node:crypto";
import { type Engine, type EngineInfo, type EngineStats, predictPrefillMs, predictStepMs } from "../engine.js";
import { InvalidRequestError, ModelDisposedError, NeoserveError, ProviderUnavailableError, QueueFullError } from "../errors.js";
import { ForwardedStream, relay } from "../forwarded-stream.js";
import type { GenerationStream } from "../generation-stream.js";
import { parseRequest, requestSize } from "../request.js";
import type { TextInput } from "../tokenizer/text-workers.js";
import type { FinishReason, GenerateRequest, GenerateResult } from "../types.js";
import { type Candidate, type Decision, decide, ineligible, type PrivacyClass, type RouteInput } from "./route-decision.js";
import { costPer1k, type Price, requestCost, tokensPerSecond } from "./cost.js";
import type { Rule } from "./rules.js";

export interface Backend {
  name: string;
  engine: Engine;
  where: "local" | "remote";
  /** The privacy classes it may receive. */
  privacy: readonly PrivacyClass[];
  /** Local hardware by the hour (cost per token follows from its measured throughput), or a remote's price per 1k tokens. */
  price?: Price;
  /** Requests in flight at which a local engine has no room. Default 16. */
  capacity?: number;
}

/** How one request was routed: the `x-neoserve-route` header, the routed metric and the audit record. */
export interface RouteInfo {
  alias: string;
  /** The backend that served it (or last tried), undefined when none was eligible. */
  backend: string | undefined;
  reason: string;
  /** Backends tried, the serving one included. */
  attempts: number;
  degraded: boolean;
  privacy: PrivacyClass;
  tenant: string | undefined;
  /** What it cost on the backend that served it (cost.ts); 0 until it ends. */
  cost: number;
}

/** How a shadowed request's copy compared with what the caller got. */
export interface ShadowReport {
  alias: string;
  backend: string;
  /** "compared", or why not: the copy or the request ended abnormally. */
  outcome: "compared" | "shadow_failed" | "primary_failed";
  /** Characters of the longest common prefix of the two texts, over the longer one's length (1: the same text). */
  agreement: number | null;
  /** Time to first token of the copy over the caller's. */
  ttftRatio: number | null;
}

export interface RouterOptions {
  alias: string;
  backends: readonly Backend[];
  rules?: readonly Rule[];
  /** Send `percent` of callers (by a hash of tenant and user: the same caller, the same side) to `backend` only, and the rest never there. */
  canary?: { backend: string; percent: number };
  /** Also send `percent` of requests to `backend` (never a private one to a remote), discard its output, and compare. */
  shadow?: { backend: Backend; percent: number };
  onShadow?: (report: ShadowReport) => void;
  /** Backends tried per request at most. Default 3. */
  maxAttempts?: number;
  /** For requests that name none. Default "internal". */
  defaultPrivacy?: PrivacyClass;
  /** Every request's route, once its stream has ended. */
  onRouted?: (route: RouteInfo, result: GenerateResult) => void;
}

/** A router's stream: the backend's tokens, and how it was routed. */
export class RoutedStream extends ForwardedStream {
  route!: RouteInfo;
}

// Endings a next backend may still save: the first one never produced a token
// (and one that judged the deadline out of its reach may be slower than another).
const RETRYABLE: ReadonlySet<FinishReason> = new Set(["error", "queue_full", "device_lost", "deadline_unmeetable"]);
const EWMA = 0.2;

export class Router implements Engine {
  readonly info: EngineInfo;
  private readonly byName: Map<string, Backend>;
  private readonly streams = new Set<RoutedStream>();
  // What this router saw of each backend lately, for those that cannot predict themselves.
  private readonly ttftEwma = new Map<string, number>();
  private readonly tokenEwma = new Map<string, number>();
  private disposed = false;

  constructor(private readonly options: RouterOptions) {
    if (options.backends.length === 0) throw new InvalidRequestError(`alias ${options.alias}: a router needs at least one backend`);
    this.byName = new Map(options.backends.map((b) => [b.name, b]));
    const contexts = options.backends.map((b) => b.engine.info.maxContext).filter((n) => n > 0);
    const local = options.backends.find((b) => b.where === "local") ?? options.backends[0]!;
    this.info = { backend: "router", device: "", source: options.alias, maxContext: contexts.length ? Math.min(...contexts) : 0, vocabSize: local.engine.info.vocabSize };
  }

  /** The route a request would take now, without running it. */
  plan(request: GenerateRequest): Decision & { input: RouteInput } {
    const input = this.routeInput(request);
    const decision = decide(input, this.snapshot(input), this.options.rules);
    const canary = this.options.canary;
    if (!canary) return { ...decision, input };
    // The canary's callers go there first; everyone else never does.
    const inCanary = canaryBucket(input.tenant, request.route?.user) < canary.percent;
    const others = decision.order.filter((b) => b !== canary.backend);
    if (inCanary && decision.order.includes(canary.backend)) return { ...decision, order: [canary.backend, ...others], reason: "canary", input };
    return { ...decision, order: others, reason: others.length ? decision.reason : `${decision.reason}; only the canary was eligible`, input };
  }

  generate(request: GenerateRequest): RoutedStream {
    const startedAt = performance.now();
    if (this.disposed) throw new ModelDisposedError(`router ${this.options.alias} has been disposed`);
    parseRequest(request); // the request's shape, as every engine checks it
    const { input, order, reason, degraded } = this.plan(request);
    const { signal, ...forward } = request; // the route hints go along: a FairQueue behind reads the tenant
    let current: GenerationStream | undefined;
    let cancelled = false;
    const stream = new RoutedStream(() => {
      cancelled = true;
      if (current) current.cancel();
      else stream.end("cancelled", "cancelled before it reached a backend");
    }, startedAt);
    stream.route = { alias: this.options.alias, backend: order[0], reason, attempts: 0, degraded, privacy: input.privacy, tenant: input.tenant, cost: 0 };
    this.streams.add(stream);
    void stream.result.then((result) => {
      this.streams.delete(stream);
      const served = stream.route.backend === undefined ? undefined : this.byName.get(stream.route.backend);
      if (served) stream.route.cost = requestCost(served.price, result.usage, served.engine);
      this.options.onRouted?.(stream.route, result);
    });
    stream.watch(signal);
    if (stream.finished) return stream;
    if (order.length === 0) {
      stream.refuse(new ProviderUnavailableError(`alias ${this.options.alias}: ${reason}`));
      return stream;
    }
    const limit = Math.min(order.length, this.options.maxAttempts ?? 3);

    // Runs attempt i; the first runs synchronously so a request no engine would take throws from generate() itself.
    // `unmeetable`: every backend tried so far judged the deadline out of its reach.
    const attempt = (i: number, lastError?: NeoserveError, unmeetable = true): void => {
      if (cancelled || stream.finished) return;
      if (i >= limit) {
        // Then that is the request's ending, not a failure.
        if (i > 0 && unmeetable) return stream.end("deadline_unmeetable", `no backend tried can meet the deadline of ${request.deadlineMs} ms`);
        const error = lastError ?? new ProviderUnavailableError(`alias ${this.options.alias}: every backend tried failed`);
        stream.refuse(error, error instanceof QueueFullError ? "queue_full" : "error");
        return;
      }
      // A fallback gets what is left of the request's deadline, not the whole of it again.
      const deadlineMs = input.deadlineMs === undefined ? request.deadlineMs : input.deadlineMs - (performance.now() - startedAt);
      if (deadlineMs !== undefined && deadlineMs <= 0) return stream.end("deadline_exceeded", `deadline of ${request.deadlineMs} ms passed`);
      const backend = this.byName.get(order[i]!)!;
      stream.route = { ...stream.route, backend: backend.name, attempts: i + 1, reason: i === 0 ? reason : `fallback from ${order[i - 1]}` };
      let inner: GenerationStream;
      try {
        inner = backend.engine.generate({ ...forward, deadlineMs });
      } catch (err) {
        if (i === 0 && err instanceof InvalidRequestError) throw err;
        return attempt(i + 1, err instanceof NeoserveError ? err : new ProviderUnavailableError(`${backend.name}: ${String(err)}`), false);
      }
      current = inner;
      let refusal: NeoserveError | undefined;
      inner.accepted.catch((err: unknown) => (refusal = err instanceof NeoserveError ? err : undefined));
      // While another backend may still replace this one, the caller's stream is accepted only at its first
      // token (or its end): a remote accepts on its HTTP 200, and a stream's headers, sent on acceptance, name
      // the backend (x-neoserve-route) — the one that serves, not one that failed before its first token.
      const acceptOn = i + 1 < limit ? "first-token" : "accepted";
      relay(
        inner,
        stream,
        (result, forwarded) => {
          this.observe(backend.name, result);
          if (forwarded > 0 || cancelled) return false;
          // A request the backend judged wrong is wrong for every backend: its error, as the caller's.
          if (refusal instanceof InvalidRequestError) return stream.refuse(refusal), true;
          if (!RETRYABLE.has(result.finishReason)) return false;
          attempt(i + 1, refusal ?? new ProviderUnavailableError(`${backend.name}: ${result.error ?? result.finishReason}`), unmeetable && result.finishReason === "deadline_unmeetable");
          return true;
        },
        acceptOn,
      );
    };
    try {
      attempt(0);
    } catch (err) {
      this.streams.delete(stream); // thrown to the caller: this stream never existed
      throw err;
    }
    const shadow = this.options.shadow;
    if (shadow && Math.random() * 100 < shadow.percent) this.runShadow(shadow.backend, forward, input, stream);
    return stream;
  }

  // The request again on the shadow backend, its output compared with the caller's once both end; nobody waits for it.
  private runShadow(backend: Backend, request: GenerateRequest, input: RouteInput, primary: RoutedStream): void {
    const snapshot = this.snapshotOf(backend, input);
    if (ineligible(input, snapshot)) return;
    let copy: GenerationStream;
    try {
      copy = backend.engine.generate(request);
    } catch {
      return; // a request the shadow would never take: nothing to compare
    }
    void Promise.all([primary.result, copy.result]).then(([mine, theirs]) => {
      const ok = (r: GenerateResult) => r.finishReason === "stop" || r.finishReason === "length";
      const base = { alias: this.options.alias, backend: backend.name };
      if (!ok(mine)) return this.options.onShadow?.({ ...base, outcome: "primary_failed", agreement: null, ttftRatio: null });
      if (!ok(theirs)) return this.options.onShadow?.({ ...base, outcome: "shadow_failed", agreement: null, ttftRatio: null });
      const a = mine.timings.timeToFirstTokenMs;
      const b = theirs.timings.timeToFirstTokenMs;
      this.options.onShadow?.({ ...base, outcome: "compared", agreement: agreement(mine.text, theirs.text), ttftRatio: a && b ? b / a : null });
    });
    void primary.result.then((r) => {
      if (r.finishReason === "cancelled") copy.cancel(); // the caller went away: so does its copy
    });
  }

  private routeInput(request: GenerateRequest): RouteInput {
    const hints = request.route ?? {};
    const { promptChars, maxTokens } = requestSize(request);
    return {
      privacy: hints.privacy ?? this.options.defaultPrivacy ?? "internal",
      latencyBudgetMs: hints.latencyBudgetMs,
      deadlineMs: request.deadlineMs || undefined, // 0: no deadline
      maxCostPer1k: hints.maxCostPer1k,
      tenant: hints.tenant,
      allowed: hints.allowedBackends,
      promptChars,
      maxTokens,
    };
  }

  // Each backend as the decision sees it now.
  private snapshot(input: RouteInput): Candidate[] {
    return this.options.backends.map((b) => this.snapshotOf(b, input));
  }

  private snapshotOf(b: Backend, input: RouteInput): Candidate {
    const promptTokens = Math.ceil(input.promptChars / 4);
    const stats = b.engine.stats();
    const capacity = b.capacity ?? 16;
    const predictedTtftMs = this.predictTtft(b.name, stats, promptTokens);
    return {
      name: b.name,
      where: b.where,
      privacy: b.privacy,
      available: stats.available !== false,
      predictedTtftMs,
      predictedEndMs: predictedTtftMs + Math.max(0, input.maxTokens - 1) * this.predictTokenMs(b.name, stats, Math.min(stats.inFlight + 1, capacity), promptTokens + input.maxTokens / 2),
      costPer1k: costPer1k(b.price, tokensPerSecond(stats), promptTokens, input.maxTokens),
      hasRoom: stats.inFlight < capacity,
    };
  }

  // The engine's own prediction (queue wait + this prompt's prefill) when it has one, else what this router saw lately.
  private predictTtft(name: string, stats: EngineStats, promptTokens: number): number {
    if (stats.predictedWaitMs === undefined) return this.ttftEwma.get(name) ?? 0;
    return stats.predictedWaitMs + (stats.stepTime ? predictPrefillMs(stats.stepTime, promptTokens) : 0);
  }

  // One decode step of a batch of `batch` sequences near `context` positions each, by the engine's fit; else what this router saw lately.
  private predictTokenMs(name: string, stats: EngineStats, batch: number, context: number): number {
    if (!stats.stepTime) return this.tokenEwma.get(name) ?? 0;
    return predictStepMs(stats.stepTime, batch, batch * context);
  }

  private observe(name: string, result: GenerateResult): void {
    const { timeToFirstTokenMs: ttft, totalMs } = result.timings;
    if (ttft !== null) ewma(this.ttftEwma, name, ttft);
    const tokens = result.usage.completionTokens;
    if (ttft !== null && tokens > 1) ewma(this.tokenEwma, name, (totalMs - ttft) / (tokens - 1));
  }

  private get primary(): Engine {
    return (this.options.backends.find((b) => b.where === "local") ?? this.options.backends[0]!).engine;
  }

  tokenize(input: TextInput): Promise<Int32Array> {
    return this.primary.tokenize(input);
  }

  detokenize(ids: ArrayLike<number>, options?: { skipSpecialTokens?: boolean }): Promise<string> {
    return this.primary.detokenize(ids, options);
  }

  stats(): EngineStats {
    let progress = 0;
    for (const b of this.options.backends) progress += b.engine.stats().progress;
    return { inFlight: this.streams.size, progress };
  }

  /** Cancels this router's requests in flight; the backends stay with their owner. */
  async dispose(): Promise<void> {
    this.disposed = true;
    for (const s of this.streams) s.cancel();
  }
}

function ewma(map: Map<string, number>, name: string, value: number): void {
  const old = map.get(name);
  map.set(name, old === undefined ? value : old + EWMA * (value - old));
}

// A caller's place in [0, 100) for canary splits: a hash of tenant and user, so the same caller lands on the same side; random for a caller who gives neither.
function canaryBucket(tenant: string | undefined, user: string | undefined): number {
  if (tenant === undefined && user === undefined) return Math.random() * 100;
  return createHash("sha256").update(`${tenant ?? ""}\0${user ?? ""}`).digest().readUInt32BE(0) / 2 ** 32 * 100;
}

// The longest common prefix of two texts, over the longer one's length.
function agreement(a: string, b: string): number {
  const n = Math.max(a.length, b.length);
  if (n === 0) return 1;
  let i = 0;
  while (i < a.length && i < b.length && a[i] === b[i]) i++;
  return i / n;
}
