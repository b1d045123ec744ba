/**
 * Engine metrics for Prometheus (prom-client): scheduler gauges and counters
 * read from model.stats() at scrape time, latency histograms fed as requests
 * finish, and the running cost per 1,000 tokens and per request when a price
 * per hour is configured.
 */
import { Counter, Gauge, Histogram, type Registry } from "prom-client";
import type { Model } from "../model.js";

interface Tracked {
  name: string;
  startedAt: number;
  /** Native counters as of the last scrape. */
  seen: Map<string, number>;
  pricePerHour: number | undefined;
}

const latencyBuckets = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 30000];

export interface CostOptions {
  /** Price of the hardware a model runs on, per hour (a GPU, a MIG slice, or this machine's share). */
  pricePerHour?: number;
}

export class EngineMetrics {
  private readonly models = new Map<Model, Tracked>();
  private readonly ttft: Histogram<"model">;
  private readonly itl: Histogram<"model">;
  private readonly e2e: Histogram<"model">;
  private readonly tokens: Counter<"model">;
  private readonly preemptions: Counter<"model">;
  private readonly endedEarly: Counter<"model" | "reason">;
  private readonly batchSize: Histogram<"model">;
  private readonly batchTokens: Histogram<"model">;

  constructor(
    registry: Registry,
    private readonly cost: CostOptions = {},
  ) {
    const registers = [registry];
    const gauge = (name: string, help: string, read: (m: Model) => number) =>
      new Gauge({
        name,
        help,
        labelNames: ["model"],
        registers,
        collect: () => {
          for (const [m, { name: model }] of this.live()) this.gaugeSet(name, model, read(m));
        },
      });
    this.gauges = new Map();
    for (const g of [
      gauge("neoserve_queue_length", "Requests waiting for the scheduler", (m) => m.stats().waiting),
      gauge("neoserve_running_sequences", "Sequences in the running batch", (m) => m.stats().running),
      gauge("neoserve_kv_blocks_used", "KV-cache blocks in use", (m) => m.stats().kvBlocksUsed),
      gauge("neoserve_kv_blocks_free", "KV-cache blocks free", (m) => m.stats().kvBlocksFree),
      gauge("neoserve_cost_per_1k_tokens", "Running cost per 1,000 generated tokens (configured price per hour)", (m) => this.costPer(m, "tokens")),
      gauge("neoserve_cost_per_request", "Running cost per finished request (configured price per hour)", (m) => this.costPer(m, "requests")),
    ])
      this.gauges.set((g as unknown as { name: string }).name, g);
    const histogram = (name: string, help: string) =>
      new Histogram({ name, help, labelNames: ["model"], buckets: latencyBuckets, registers });
    this.ttft = histogram("neoserve_time_to_first_token_ms", "Time from generate() to the first token, ms");
    this.itl = histogram("neoserve_inter_token_latency_ms", "Time between consecutive tokens of a request, ms");
    this.e2e = histogram("neoserve_end_to_end_latency_ms", "Time from generate() to the last token of a finished request, ms");
    const powersOf2 = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096];
    this.batchSize = new Histogram({ name: "neoserve_batch_size", help: "Sequences in each model step", labelNames: ["model"], buckets: powersOf2, registers });
    this.batchTokens = new Histogram({ name: "neoserve_batch_tokens", help: "Tokens in each model step (decodes and prompt chunks)", labelNames: ["model"], buckets: powersOf2, registers });
    const counter = (name: string, help: string, labels: ("model" | "reason")[]) =>
      new Counter({ name, help, labelNames: labels, registers, collect: () => this.syncCounters() });
    this.tokens = counter("neoserve_tokens_generated_total", "Tokens generated", ["model"]) as Counter<"model">;
    this.preemptions = counter("neoserve_preemptions_total", "Sequences preempted by recompute", ["model"]) as Counter<"model">;
    this.endedEarly = counter("neoserve_requests_ended_early_total", "Requests that ended without finishing, by reason", ["model", "reason"]);
  }

  /** Starts reporting `model` under the label `name`, priced at `pricePerHour` (default: the runtime's). */
  track(model: Model, name: string, pricePerHour = this.cost.pricePerHour): void {
    this.models.set(model, { name, startedAt: performance.now(), seen: new Map(), pricePerHour });
    model.latency.observer = (kind, ms) =>
      (kind === "timeToFirstToken" ? this.ttft : kind === "interToken" ? this.itl : this.e2e).observe({ model: name }, ms);
    model.steps.observe = (sequences, tokens) => {
      this.batchSize.observe({ model: name }, sequences);
      this.batchTokens.observe({ model: name }, tokens);
    };
  }

  // A disposed model has nothing more to report: it leaves at the next scrape.
  private live(): [Model, Tracked][] {
    for (const m of this.models.keys()) if (m.isDisposed) this.models.delete(m);
    return [...this.models];
  }

  private readonly gauges: Map<string, Gauge>;

  private gaugeSet(metric: string, model: string, value: number): void {
    this.gauges.get(metric)?.set({ model }, value);
  }

  // Counters only go up: add what the native counters gained since the last scrape.
  private syncCounters(): void {
    for (const [m, entry] of this.live()) {
      const s = m.stats();
      const bump = (key: string, now: number, inc: (by: number) => void) => {
        const by = now - (entry.seen.get(key) ?? 0);
        if (by > 0) inc(by);
        entry.seen.set(key, now);
      };
      bump("tokens", s.tokensGenerated, (by) => this.tokens.inc({ model: entry.name }, by));
      bump("preemptions", s.preemptions, (by) => this.preemptions.inc({ model: entry.name }, by));
      for (const [reason, n] of Object.entries(s.endedEarly))
        bump(`ended:${reason}`, n, (by) => this.endedEarly.inc({ model: entry.name, reason }, by));
    }
  }

  private costPer(m: Model, per: "tokens" | "requests"): number {
    const entry = this.models.get(m)!;
    if (!entry.pricePerHour) return 0;
    const spent = (entry.pricePerHour * (performance.now() - entry.startedAt)) / 3_600_000;
    if (per === "tokens") {
      const tokens = m.stats().tokensGenerated;
      return tokens > 0 ? (spent * 1000) / tokens : 0;
    }
    const finished = m.stats().latency.endToEndMs.total;
    return finished > 0 ? spent / finished : 0;
  }
}
