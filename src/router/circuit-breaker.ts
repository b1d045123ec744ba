/**
 * A remote backend's circuit breaker: after `failures` consecutive failures it
 * opens and refuses work for `cooldownMs`; then one probe request is let
 * through (half-open): its success closes the breaker, its failure opens it
 * again for another cooldown.
 */
export type BreakerState = "closed" | "open" | "half-open";

export interface BreakerOptions {
  /** Consecutive failures that open it. Default 5. */
  failures?: number;
  /** How long it stays open before a probe. Default 10 s. */
  cooldownMs?: number;
}

export class CircuitBreaker {
  private readonly threshold: number;
  private readonly cooldownMs: number;
  private consecutive = 0;
  private openedAt: number | undefined;
  private probing = false;

  constructor(options: BreakerOptions = {}, private readonly now: () => number = () => performance.now()) {
    this.threshold = options.failures ?? 5;
    this.cooldownMs = options.cooldownMs ?? 10_000;
  }

  get state(): BreakerState {
    if (this.openedAt === undefined) return "closed";
    return this.now() - this.openedAt >= this.cooldownMs ? "half-open" : "open";
  }

  /** Whether a request may go now; in half-open, only the one probe until it reports. */
  allows(): boolean {
    const state = this.state;
    return state === "closed" || (state === "half-open" && !this.probing);
  }

  /** A request is sent: in half-open it is the probe. */
  take(): void {
    if (this.state === "half-open") this.probing = true;
  }

  success(): void {
    this.consecutive = 0;
    this.openedAt = undefined;
    this.probing = false;
  }

  /** A request that told nothing of the remote (cancelled, past its deadline) ended: a probe may go again. */
  release(): void {
    this.probing = false;
  }

  failure(): void {
    this.consecutive++;
    if (this.probing || this.consecutive >= this.threshold) this.openedAt = this.now();
    this.probing = false;
  }
}
