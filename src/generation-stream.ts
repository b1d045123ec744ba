/**
 * One request in flight, as every Engine returns it: its tokens (read once,
 * with `for await` or `onToken`), its `result` (resolves once, never
 * rejects), `cancel()`, and an AbortSignal bound with `watch()`. A Model's
 * TokenStream and a pool's PoolStream are this, fed from different places.
 */
import { TokenChannel } from "./token-channel.js";
import type { FinishReason, GenerateResult, Token } from "./types.js";

export type ResultWithoutOutput = Omit<GenerateResult, "tokens" | "text">;

/** The error of a request whose AbortSignal had aborted before generate() was called. */
export const ABORTED_BEFORE_START = "the request's AbortSignal was already aborted";

export class GenerationStream implements AsyncIterable<Token> {
  /** Resolves once, when the request ends for whatever reason; never rejects. */
  readonly result: Promise<GenerateResult>;
  /** When generate() was called: every timing counts from it. */
  protected readonly startedAt: number;
  protected readonly tokens: number[] = [];
  protected text = "";
  private done = false;
  private resolveResult!: (r: GenerateResult) => void;
  private readonly channel: TokenChannel;

  constructor(
    private readonly onCancel: () => void,
    /** The prompt's length in tokens, for `usage`. */
    protected readonly promptTokens: number,
    startedAt = performance.now(),
  ) {
    this.startedAt = startedAt;
    this.channel = new TokenChannel(() => this.cancel());
    this.result = new Promise((resolve) => (this.resolveResult = resolve));
  }

  get finished(): boolean {
    return this.done;
  }

  /** Tokens that reached the caller so far. */
  get streamed(): number {
    return this.tokens.length;
  }

  /** Ends the request; tokens already produced stay in the result. */
  cancel(): void {
    if (!this.done) this.onCancel();
  }

  /** @internal cancels this stream when `signal` aborts (at once if it already has). */
  watch(signal: AbortSignal | undefined): void {
    if (!signal) return;
    const onAbort = () => this.cancel();
    if (signal.aborted) return onAbort();
    signal.addEventListener("abort", onAbort, { once: true });
    void this.result.then(() => signal.removeEventListener("abort", onAbort));
  }

  /**
   * @internal the request ended without a result from its engine (cancelled
   * before it started, its worker lost, the engine disposed): keeps what was
   * streamed, with the timings this side saw.
   */
  end(reason: FinishReason, error?: string): void {
    if (this.done) return;
    const n = this.tokens.length;
    this.settle({
      finishReason: reason,
      ...(error !== undefined ? { error } : {}),
      usage: { promptTokens: this.promptTokens, completionTokens: n, totalTokens: this.promptTokens + n },
      timings: { queuedMs: null, timeToFirstTokenMs: null, totalMs: performance.now() - this.startedAt, decodeTokensPerSecond: null },
    });
  }

  [Symbol.asyncIterator](): AsyncIterator<Token> {
    return this.channel[Symbol.asyncIterator]();
  }

  /**
   * Reads the tokens with a callback instead of `for await`: each token, as it
   * arrives, synchronously; the end is `result`. A stream is read one way, once.
   */
  onToken(listener: (token: Token) => void): void {
    this.channel.listen(listener);
  }

  /** A token reaches the caller; the result's tokens and text are exactly what was emitted. */
  protected emit(token: Token): void {
    this.tokens.push(token.id);
    this.text += token.text;
    this.channel.push(token);
  }

  /** Resolves the result once, with the tokens and text emitted, and closes the token channel. */
  protected settle(result: ResultWithoutOutput): void {
    if (this.done) return;
    this.done = true;
    this.resolveResult({ ...result, tokens: this.tokens.slice(), text: this.text });
    this.channel.close();
  }
}
