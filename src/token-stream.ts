/**
 * One request's tokens as an AsyncIterable, plus its final result. Fed by the
 * Model's event dispatcher; a consumer that stops iterating cancels the request.
 */
import type { IncrementalDetokenizer } from "./tokenizer/detokenizer.js";
import type { LatencyRecorder } from "./latency.js";
import { StopStringMatcher } from "./stop-strings.js";
import { TokenChannel } from "./token-channel.js";
import type { FinishReason, GenerateResult, Token } from "./types.js";

export class TokenStream implements AsyncIterable<Token> {
  /** Resolves once, when the request ends for whatever reason; never rejects. */
  readonly result: Promise<GenerateResult>;

  private resolveResult!: (r: GenerateResult) => void;
  private readonly channel: TokenChannel;
  private done = false;
  private readonly tokens: number[] = [];
  private logits: Float32Array[] | undefined;
  private text = "";
  /** When generate() was called: every timing counts from it. */
  private readonly startedAt: number;
  private firstTokenAt: number | null = null;
  private lastTokenAt = 0;
  private queuedMs: number | null = null;
  private readonly stopMatcher: StopStringMatcher;

  constructor(
    private readonly promptTokens: number,
    private readonly detokenizer: IncrementalDetokenizer,
    stop: readonly string[],
    private readonly onCancel: () => void,
    private readonly latency?: LatencyRecorder,
    startedAt = performance.now(),
  ) {
    this.startedAt = startedAt;
    this.stopMatcher = new StopStringMatcher(stop);
    this.channel = new TokenChannel(() => this.cancel());
    this.result = new Promise((resolve) => (this.resolveResult = resolve));
  }

  get finished(): boolean {
    return this.done;
  }

  /** Ends the request; tokens already produced stay in the result. */
  cancel(): void {
    if (!this.done) this.onCancel();
  }

  /** @internal the scheduler started the request after it waited `queuedMs` in its queue. */
  started(queuedMs: number): void {
    this.queuedMs = queuedMs;
  }

  /** @internal the logits the next token is sampled from (requests with returnLogits). */
  pushLogits(row: Float32Array): void {
    (this.logits ??= []).push(row);
  }

  /**
   * @internal a generated token; `last` when the request ends with it, so the
   * text held back (a partial character or stop string) is released with it.
   * Returns true when a stop string ended the text.
   */
  pushToken(id: number, last = false): boolean {
    if (this.done) return false;
    const now = performance.now();
    if (this.firstTokenAt === null) {
      this.firstTokenAt = now;
      this.latency?.firstToken(now - this.startedAt);
    } else {
      this.latency?.interToken(now - this.lastTokenAt);
    }
    this.lastTokenAt = now;
    this.tokens.push(id);
    let piece = this.detokenizer.push(id);
    if (last) piece += this.detokenizer.flush();
    if (!this.stopMatcher.active) {
      this.emit({ id, text: piece });
      return false;
    }
    const matched = this.stopMatcher.push(piece);
    const text = matched.stopped || !last ? matched.text : matched.text + this.stopMatcher.flush();
    this.emit({ id, text });
    if (matched.stopped) this.end("stop");
    return matched.stopped;
  }

  /**
   * @internal the request ended. The result's text is exactly the tokens'
   * texts joined: what was still held back when a request ends without a
   * final token (cancelled, error) is dropped.
   */
  end(reason: FinishReason, error?: string): void {
    if (this.done) return;
    this.done = true;
    const now = performance.now();
    const completion = this.tokens.length;
    if (reason === "stop" || reason === "length") this.latency?.endToEnd(now - this.startedAt);
    this.resolveResult({
      tokens: this.tokens.slice(),
      text: this.text,
      finishReason: reason,
      ...(this.logits ? { logits: this.logits } : {}),
      ...(error !== undefined ? { error } : {}),
      usage: { promptTokens: this.promptTokens, completionTokens: completion, totalTokens: this.promptTokens + completion },
      timings: {
        queuedMs: this.queuedMs,
        timeToFirstTokenMs: this.firstTokenAt === null ? null : this.firstTokenAt - this.startedAt,
        totalMs: now - this.startedAt,
        decodeTokensPerSecond:
          this.firstTokenAt !== null && completion > 1 && now > this.firstTokenAt
            ? ((completion - 1) * 1000) / (now - this.firstTokenAt)
            : null,
      },
    });
    this.channel.close();
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

  private emit(token: Token): void {
    this.text += token.text;
    this.channel.push(token);
  }
}
