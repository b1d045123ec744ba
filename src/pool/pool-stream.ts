/** A request served by a pool: tokens and text as its worker streamed them, and the worker's result. */
import { GenerationStream, type ResultWithoutOutput } from "../generation-stream.js";
import type { Token } from "../types.js";

export class PoolStream extends GenerationStream {
  /** @internal a token as the worker detokenized it. */
  pushToken(token: Token): void {
    if (!this.finished) this.emit(token);
  }

  /** @internal the worker's own result, less the tokens and text already streamed here. */
  finish(result: ResultWithoutOutput): void {
    this.settle(result);
  }
}
