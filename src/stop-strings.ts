/**
 * Finds stop strings in streamed text without ever releasing a partial one:
 * text that could still be the start of a stop string is held back until the
 * next piece shows whether it is.
 */
export class StopStringMatcher {
  private held = "";
  private readonly longest: number;

  constructor(private readonly stops: readonly string[]) {
    this.longest = Math.max(0, ...stops.map((s) => s.length));
  }

  /** False without stop strings: every piece is released as it is. */
  get active(): boolean {
    return this.stops.length > 0;
  }

  /** Returns the text safe to release now, and whether a stop string ended the text. */
  push(piece: string): { text: string; stopped: boolean } {
    if (this.stops.length === 0) return { text: piece, stopped: false };
    const text = this.held + piece;
    let cut = -1;
    for (const stop of this.stops) {
      const at = text.indexOf(stop);
      if (at >= 0 && (cut < 0 || at < cut)) cut = at;
    }
    if (cut >= 0) {
      this.held = "";
      return { text: text.slice(0, cut), stopped: true };
    }
    const keep = this.partialSuffixLength(text);
    this.held = text.slice(text.length - keep);
    return { text: text.slice(0, text.length - keep), stopped: false };
  }

  /** The held-back text, released when generation ends without a stop string. */
  flush(): string {
    const rest = this.held;
    this.held = "";
    return rest;
  }

  // Length of the longest suffix of `text` that is a proper prefix of some stop string.
  private partialSuffixLength(text: string): number {
    for (let n = Math.min(this.longest - 1, text.length); n > 0; n--) {
      const suffix = text.slice(text.length - n);
      if (this.stops.some((s) => s.startsWith(suffix))) return n;
    }
    return 0;
  }
}
