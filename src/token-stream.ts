/**
 * A Model's request: native token ids become text here (incremental
 * detokenization, stop strings held back until they cannot match), and its
 * latencies are recorded. Fed by the Model's event dispatcher.
 */
import { GenerationStream } from "./generation-stream.js";
import type { LatencyRecorder } from "./latency.js";
import { StopStringMatcher } from "./stop-strings.js";
import type { IncrementalDetokenizer } from "./tokenizer/detokenizer.js";
import type { RawLogprobs } from "./addon.js";
import type { FinishReason, Token } from "./types.js";

export class TokenStream extends GenerationStream {
  private logits: Float32Array[] | undefined;
  /** Log probabilities of tokens not yet pushed, in token order. */
  private readonly pendingLogprobs: RawLogprobs[] = [];
  private logprobs: NonNullable<Token["logprob"]>[] | undefined;
  private firstTokenAt: number | null = null;
  private lastTokenAt = 0;
  private queuedMs: number | null = null;
  private readonly stopMatcher: StopStringMatcher;

  constructor(
    private readonly detokenizer: IncrementalDetokenizer,
    stop: readonly string[],
    onCancel: () => void,
    private readonly latency?: LatencyRecorder,
    startedAt = performance.now(),
  ) {
    super(onCancel, startedAt);
    this.stopMatcher = new StopStringMatcher(stop);
  }

  /** @internal the scheduler started the request after it waited `queuedMs` in its queue. */
  started(queuedMs: number): void {
    this.queuedMs = queuedMs;
  }

  /** @internal the logits the next token is sampled from (requests with returnLogits). */
  pushLogits(row: Float32Array): void {
    (this.logits ??= []).push(row);
  }

  /** @internal the next token's log probabilities (requests with logprobs). */
  pushLogprobs(row: RawLogprobs): void {
    this.pendingLogprobs.push(row);
  }

  /**
   * @internal a generated token; `last` when the request ends with it, so the
   * text held back (a partial character or stop string) is released with it.
   * Returns true when a stop string ended the text.
   */
  pushToken(id: number, last = false): boolean {
    if (this.finished) return false;
    const now = performance.now();
    if (this.firstTokenAt === null) {
      this.firstTokenAt = now;
      this.latency?.firstToken(now - this.startedAt);
    } else {
      this.latency?.interToken(now - this.lastTokenAt);
    }
    this.lastTokenAt = now;
    const logprob = this.logprobOf(id);
    let piece = this.detokenizer.push(id);
    if (last) piece += this.detokenizer.flush();
    if (!this.stopMatcher.active) {
      this.emit({ id, text: piece, ...(logprob ? { logprob } : {}) });
      return false;
    }
    const matched = this.stopMatcher.push(piece);
    const text = matched.stopped || !last ? matched.text : matched.text + this.stopMatcher.flush();
    this.emit({ id, text, ...(logprob ? { logprob } : {}) });
    if (matched.stopped) this.end("stop");
    return matched.stopped;
  }

  // The log probabilities native code sent for this token, with each token's own text.
  private logprobOf(id: number): Token["logprob"] {
    const row = this.pendingLogprobs.shift();
    if (!row) return undefined;
    const entry = (tokenId: number, logprob: number) => ({ id: tokenId, logprob, ...this.detokenizer.piece(tokenId) });
    const info = { ...entry(id, row.logprob), top: Array.from(row.topIds, (t, i) => entry(t, row.topLogprobs[i]!)) };
    (this.logprobs ??= []).push(info);
    return info;
  }

  /**
   * @internal the request ended. The result's text is exactly the tokens'
   * texts joined: what was still held back when a request ends without a
   * final token (cancelled, error) is dropped.
   */
  override end(reason: FinishReason, error?: string): void {
    if (this.finished) return;
    const now = performance.now();
    const completion = this.tokens.length;
    if (reason === "stop" || reason === "length") this.latency?.endToEnd(now - this.startedAt);
    this.settle({
      finishReason: reason,
      ...(this.logits ? { logits: this.logits } : {}),
      ...(this.logprobs ? { logprobs: this.logprobs } : {}),
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
  }
}
