/**
 * What a server serves and in which phase it is: the engines by model name,
 * loading → ready → draining, the completions in flight (so a drain can wait
 * for them and then cancel the rest), and each engine's progress, which the
 * health check reads.
 */
import type { Engine } from "../engine.js";
import type { Price } from "../router/cost.js";

export type Phase = "loading" | "ready" | "draining";

export class ServingState {
  readonly engines = new Map<string, Engine>();
  /** What a model's requests cost (a router prices its own by the backend that served them). */
  readonly prices = new Map<string, Price>();
  phase: Phase = "loading";
  private readonly runs = new Set<(why: string) => void>();
  private readonly progress = new Map<Engine, { value: number; since: number }>();
  private idle: (() => void) | undefined;

  constructor(private readonly healthStallMs: number) {}

  addModel(name: string, engine: Engine, price?: Price): void {
    this.engines.set(name, engine);
    if (price) this.prices.set(name, price);
  }

  /** Starts answering /ready with 200 and taking completions. */
  setReady(): void {
    if (this.phase === "loading") this.phase = "ready";
  }

  get inFlight(): number {
    return this.runs.size;
  }

  /** @internal a completion starts: `cancel` ends it if the drain runs out of time. */
  track(cancel: (why: string) => void): () => void {
    this.runs.add(cancel);
    return () => {
      this.runs.delete(cancel);
      if (this.runs.size === 0) this.idle?.();
    };
  }

  /**
   * Stops taking completions, lets those in flight finish for up to
   * `timeoutMs`, then cancels the rest (each ends with a final error chunk or
   * a 503 saying why). Resolves once none is left.
   */
  async drain(timeoutMs: number): Promise<void> {
    this.phase = "draining";
    const settled = () => new Promise<void>((resolve) => (this.runs.size === 0 ? resolve() : (this.idle = resolve)));
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<"timeout">((resolve) => (timer = setTimeout(() => resolve("timeout"), timeoutMs)));
    const outcome = await Promise.race([settled(), timedOut]);
    clearTimeout(timer);
    if (outcome === "timeout") {
      for (const cancel of [...this.runs]) cancel(`the server is shutting down: the request did not finish within the ${timeoutMs} ms drain`);
      await settled();
    }
  }

  /**
   * Engines with work in flight whose progress has stood still for longer
   * than the stall bound (by name); [] when every engine serves.
   */
  stalled(now = performance.now()): string[] {
    const stuck: string[] = [];
    for (const [name, engine] of this.engines) {
      const { inFlight, progress } = engine.stats();
      const seen = this.progress.get(engine);
      if (!seen || seen.value !== progress || inFlight === 0) {
        this.progress.set(engine, { value: progress, since: now });
        continue;
      }
      if (now - seen.since > this.healthStallMs) stuck.push(name);
    }
    return stuck;
  }
}
