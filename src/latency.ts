/**
 * Recent request latencies (time to first token, inter-token, end to end) in
 * fixed-size rings, summarised as percentiles by Model.stats().
 */
export interface LatencySummary {
  /** Samples ever recorded. */
  total: number;
  /** Samples the percentiles are taken over (the most recent ones). */
  count: number;
  p50: number | null;
  p90: number | null;
  p99: number | null;
  max: number | null;
}

class Ring {
  private readonly values: Float64Array;
  private next = 0;
  private filled = 0;
  private pushed = 0;

  constructor(capacity: number) {
    this.values = new Float64Array(capacity);
  }

  push(v: number): void {
    this.pushed++;
    this.values[this.next] = v;
    this.next = (this.next + 1) % this.values.length;
    this.filled = Math.min(this.filled + 1, this.values.length);
  }

  summary(): LatencySummary {
    const sorted = this.values.slice(0, this.filled).sort();
    const at = (q: number) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]! : null);
    return { total: this.pushed, count: this.filled, p50: at(0.5), p90: at(0.9), p99: at(0.99), max: sorted.length ? sorted[sorted.length - 1]! : null };
  }
}

export type LatencyKind = "timeToFirstToken" | "interToken" | "endToEnd";

export class LatencyRecorder {
  private readonly ttft: Ring;
  private readonly itl: Ring;
  private readonly e2e: Ring;
  /** Also sees every sample (metrics histograms). */
  observer: ((kind: LatencyKind, ms: number) => void) | undefined;

  constructor(capacity = 4096) {
    this.ttft = new Ring(capacity);
    this.itl = new Ring(capacity * 4);
    this.e2e = new Ring(capacity);
  }

  firstToken(ms: number): void {
    this.ttft.push(ms);
    this.observer?.("timeToFirstToken", ms);
  }
  interToken(ms: number): void {
    this.itl.push(ms);
    this.observer?.("interToken", ms);
  }
  endToEnd(ms: number): void {
    this.e2e.push(ms);
    this.observer?.("endToEnd", ms);
  }

  summary(): { timeToFirstTokenMs: LatencySummary; interTokenMs: LatencySummary; endToEndMs: LatencySummary } {
    return { timeToFirstTokenMs: this.ttft.summary(), interTokenMs: this.itl.summary(), endToEndMs: this.e2e.summary() };
  }
}
