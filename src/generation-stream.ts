/**
 * One request in flight, as every Engine returns it: its tokens (read once,
 * with `for await` or `onToken`), its `result` (resolves once, never
 * rejects), `accepted` (the engine took it, or the typed error why not),
 * `cancel()`, and an AbortSignal bound with `watch()`. A Model's TokenStream
 * and the ForwardedStream of a pool or a remote backend are this, fed from
 * different places.
 */
import { errorFromCode, type NeoserveError } from "./errors.js";
import { TokenChannel } from "./token-channel.js";
import type { FinishReason, GenerateResult, Token } from "./types.js";

export type ResultWithoutOutput = Omit<GenerateResult, "tokens" | "text">;

/** The error of a request whose AbortSignal had aborted before generate() was called. */
export const ABORTED_BEFORE_START = "the request's AbortSignal was already aborted";

export class GenerationStream implements AsyncIterable<Token> {
  /** Resolves once, when the request ends for whatever reason; never rejects. */
  readonly result: Promise<GenerateResult>;
  /**
   * Resolves when the engine has taken the request: its text tokenized and
   * checked against the model, the request queued. Rejects with the typed
   * error that refused it (InvalidRequestError, InputLimitError, QueueFullError,
   * or code "cancelled" when it ended first); the stream has then ended, with
   * finish reason "error" ("queue_full", "cancelled") and the message in
   * result.error. Awaiting it is optional: an unread rejection is not reported.
   */
  readonly accepted: Promise<void>;
  /** The prompt's length in tokens, for `usage`: known once accepted. */
  protected promptTokens = 0;
  /** When generate() was called: every timing counts from it. */
  protected readonly startedAt: number;
  protected readonly tokens: number[] = [];
  protected text = "";
  private done = false;
  private resolveResult!: (r: GenerateResult) => void;
  private acceptance: { resolve: () => void; reject: (e: Error) => void } | undefined;
  private readonly channel: TokenChannel;

  constructor(
    private readonly onCancel: () => void,
    startedAt = performance.now(),
  ) {
    this.startedAt = startedAt;
    this.channel = new TokenChannel(() => this.cancel());
    this.result = new Promise((resolve) => (this.resolveResult = resolve));
    this.accepted = new Promise((resolve, reject) => (this.acceptance = { resolve, reject }));
    this.accepted.catch(() => {}); // a caller that never awaits it has the result's finish reason
  }

  /** @internal the engine took the request, whose prompt is `promptTokens` long. */
  admit(promptTokens: number): void {
    this.promptTokens = promptTokens;
    this.acceptance?.resolve();
    this.acceptance = undefined;
  }

  /** @internal the engine refused the request: it ends with `reason` and the error's message. */
  refuse(error: NeoserveError, reason: FinishReason = "error"): void {
    this.acceptance?.reject(error);
    this.acceptance = undefined;
    this.end(reason, error.message);
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
    // Ended before the engine took it (cancelled, disposed): never accepted.
    const why = result.error ?? `the request ended (${result.finishReason}) before it was accepted`;
    this.acceptance?.reject(errorFromCode(result.finishReason, why));
    this.acceptance = undefined;
    this.resolveResult({ ...result, tokens: this.tokens.slice(), text: this.text });
    this.channel.close();
  }
}
