/**
 * A request that runs elsewhere (a pool's worker process, a remote server):
 * tokens and text as the other side streamed them, and its result.
 */
import { GenerationStream, type ResultWithoutOutput } from "./generation-stream.js";
import type { GenerateResult, Token } from "./types.js";

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

/**
 * Feeds `outer` from `inner`, a stream of the engine that serves it: each
 * token as it comes, the acceptance, and the end, unless `onEnd` takes the
 * result over (returns true: a router trying another backend). `onEnd` also
 * hears how many tokens reached `outer`.
 */
export function relay(inner: GenerationStream, outer: ForwardedStream, onEnd?: (result: GenerateResult, forwarded: number) => boolean): void {
  let forwarded = 0;
  inner.accepted.then(
    () => outer.admit(0),
    () => {}, // its result says why
  );
  inner.onToken((token) => {
    forwarded++;
    outer.pushToken(token);
  });
  void inner.result.then((result) => {
    if (onEnd?.(result, forwarded)) return;
    const { tokens: _t, text: _x, logprobs: _l, ...rest } = result;
    outer.finish(rest);
  });
}
