/**
 * The consumer side of a token stream: tokens pushed by a producer, read once,
 * either with `for await` or by a listener called synchronously per token (no
 * promise per token: for consumers that forward tokens, like a pool worker or
 * a socket). An iterator that stops early calls `onReturn` (cancel).
 */
import type { Token } from "./types.js";

export class TokenChannel implements AsyncIterable<Token> {
  private readonly queue: Token[] = [];
  private waiter: ((r: IteratorResult<Token>) => void) | undefined;
  private closed = false;
  private iterating = false;
  private listener: ((token: Token) => void) | undefined;

  constructor(private readonly onReturn: () => void) {}

  push(token: Token): void {
    if (this.closed) return;
    if (this.listener) return this.listener(token);
    const w = this.waiter;
    if (w) {
      this.waiter = undefined;
      w({ value: token, done: false });
    } else {
      this.queue.push(token);
    }
  }

  /** No more tokens: the iterator ends once the queued ones are read. */
  close(): void {
    this.closed = true;
    const w = this.waiter;
    if (w && this.queue.length === 0) {
      this.waiter = undefined;
      w({ value: undefined, done: true });
    }
  }

  /** Tokens queued so far, then each new one, go to `listener` as they are pushed. */
  listen(listener: (token: Token) => void): void {
    this.claim();
    this.listener = listener;
    for (const token of this.queue.splice(0)) listener(token);
  }

  [Symbol.asyncIterator](): AsyncIterator<Token> {
    this.claim();
    return {
      next: () => {
        const token = this.queue.shift();
        if (token) return Promise.resolve({ value: token, done: false });
        if (this.closed) return Promise.resolve({ value: undefined, done: true });
        return new Promise((resolve) => (this.waiter = resolve));
      },
      return: () => {
        this.onReturn();
        this.queue.length = 0;
        return Promise.resolve({ value: undefined, done: true });
      },
    };
  }

  private claim(): void {
    if (this.iterating) throw new Error("a token stream can be read only once");
    this.iterating = true;
  }
}
