/** A token bucket refilled continuously at `perMinute`, holding at most a minute's worth. */
export class TokenBucket {
  private level: number;
  private at: number;

  constructor(
    private readonly perMinute: number,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.level = perMinute;
    this.at = now();
  }

  private refill(): void {
    const t = this.now();
    this.level = Math.min(this.perMinute, this.level + ((t - this.at) * this.perMinute) / 60_000);
    this.at = t;
  }

  /**
   * Takes `n` (at most a full bucket: a request larger than a minute's
   * allowance waits for a full one) and returns 0, or returns the ms until
   * there will be enough and takes nothing.
   */
  take(n: number): number {
    this.refill();
    const need = Math.min(n, this.perMinute);
    if (this.level >= need) {
      this.level -= need;
      return 0;
    }
    return Math.ceil(((need - this.level) * 60_000) / this.perMinute);
  }

  /** Gives back what a request reserved and did not use. */
  give(n: number): void {
    this.refill();
    this.level = Math.min(this.perMinute, this.level + n);
  }

  /** Charges what a request used beyond its reservation: the bucket may go below empty, and later requests wait it out. */
  charge(n: number): void {
    this.refill();
    this.level -= n;
  }

  /** The most one take() can hold: a minute's allowance. */
  get capacity(): number {
    return this.perMinute;
  }
}
