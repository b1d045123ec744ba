/**
 * A request that runs elsewhere (a pool's worker process, a remote server):
 * tokens and text as the other side streamed them, and its result.
 */
import { GenerationStream, type ResultWithoutOutput } from "./generation-stream.js";
import type { Token } from "./types.js";

export class ForwardedStream extends GenerationStream {
  private logprobs: NonNullable<Token["logprob"]>[] | undefined;

  /** @internal a token as the other side detokenized it (with its log probabilities, when asked for). */
  pushToken(token: Token): void {
    if (this.finished) return;
    if (token.logprob) (this.logprobs ??= []).push(token.logprob);
    this.emit(token);
  }

  /** @internal the other side's result, less the tokens, text and logprobs already streamed here. */
  finish(result: ResultWithoutOutput): void {
    this.settle(this.logprobs ? { ...result, logprobs: this.logprobs } : result);
  }
}
