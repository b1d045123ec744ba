/** A request served by a pool: the same face as a TokenStream, fed over IPC. */
import { TokenChannel } from "../token-channel.js";
import type { FinishReason, GenerateResult, Token } from "../types.js";

export class PoolStream implements AsyncIterable<Token> {
  readonly result: Promise<GenerateResult>;
  /** Tokens that reached the caller: once any has, a lost worker cannot be retried silently. */
  streamed = 0;
  private resolveResult!: (r: GenerateResult) => void;
  private readonly channel: TokenChannel;
  private readonly tokens: number[] = [];
  private text = "";
  private done = false;
  private readonly startedAt = performance.now();

  constructor(private readonly onCancel: () => void) {
    this.channel = new TokenChannel(() => this.cancel());
    this.result = new Promise((resolve) => (this.resolveResult = resolve));
  }

  get finished(): boolean {
    return this.done;
  }

  cancel(): void {
    if (!this.done) this.onCancel();
  }

  /** @internal */
  pushToken(token: Token): void {
    if (this.done) return;
    this.streamed++;
    this.tokens.push(token.id);
    this.text += token.text;
    this.channel.push(token);
  }

  /** @internal the worker's own result, less the tokens and text already streamed here. */
  finish(result: Omit<GenerateResult, "tokens" | "text">): void {
    if (this.done) return;
    this.done = true;
    this.resolveResult({ ...result, tokens: this.tokens.slice(), text: this.text });
    this.channel.close();
  }

  /** @internal ended by the pool itself (device lost, rejected, disposed): keeps what was streamed. */
  end(reason: FinishReason, error: string): void {
    if (this.done) return;
    const n = this.tokens.length;
    this.finish({
      finishReason: reason,
      error,
      usage: { promptTokens: 0, completionTokens: n, totalTokens: n },
      timings: { queuedMs: null, timeToFirstTokenMs: null, totalMs: performance.now() - this.startedAt, decodeTokensPerSecond: null },
    });
  }

  [Symbol.asyncIterator](): AsyncIterator<Token> {
    return this.channel[Symbol.asyncIterator]();
  }

  /** As TokenStream.onToken: tokens to a callback instead of an iterator. */
  onToken(listener: (token: Token) => void): void {
    this.channel.listen(listener);
  }
}
