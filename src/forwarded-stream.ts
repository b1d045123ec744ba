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

/** When `relay()` tells the caller that its request was taken. */
export type AcceptOn =
  /** As soon as the inner engine accepts it. */
  | "accepted"
  /**
   * Only once the first token arrives, or the inner stream ends without being
   * taken over: a router that may still replace this backend does not let the
   * caller see (in headers sent on acceptance) a backend that then fails
   * before its first token. An inner refusal that is not taken over still
   * rejects `outer.accepted`.
   */
  | "first-token";

/**
 * Feeds `outer` from `inner`, a stream of the engine that serves it: each
 * token as it comes, the acceptance (`acceptOn`), and the end, unless `onEnd`
 * takes the result over (returns true: a router trying another backend).
 * `onEnd` also hears how many tokens reached `outer`.
 */
export function relay(inner: GenerationStream, outer: ForwardedStream, onEnd?: (result: GenerateResult, forwarded: number) => boolean, acceptOn: AcceptOn = "accepted"): void {
  let forwarded = 0;
  let innerAccepted = false;
  inner.accepted.then(
    () => {
      innerAccepted = true;
      if (acceptOn === "accepted") outer.admit(0);
    },
    () => {}, // its result says why
  );
  inner.onToken((token) => {
    if (forwarded++ === 0) outer.admit(0); // a no-op when already admitted
    outer.pushToken(token);
  });
  void inner.result.then((result) => {
    if (onEnd?.(result, forwarded)) return;
    // The inner engine had taken it: so was the caller's, whatever the ending (which the result says).
    if (innerAccepted) outer.admit(0);
    const { tokens: _t, text: _x, logprobs: _l, ...rest } = result;
    outer.finish(rest);
  });
}
