/** A request served by a pool: tokens and text as its worker streamed them, and the worker's result. */
import { GenerationStream, type ResultWithoutOutput } from "../generation-stream.js";
import type { Token } from "../types.js";

export class PoolStream extends GenerationStream {
  private logprobs: NonNullable<Token["logprob"]>[] | undefined;

  /** @internal a token as the worker detokenized it (with its log probabilities, when asked for). */
  pushToken(token: Token): void {
    if (this.finished) return;
    if (token.logprob) (this.logprobs ??= []).push(token.logprob);
    this.emit(token);
  }

  /** @internal the worker's own result, less the tokens, text and logprobs already streamed here. */
  finish(result: ResultWithoutOutput): void {
    this.settle(this.logprobs ? { ...result, logprobs: this.logprobs } : result);
  }
}
