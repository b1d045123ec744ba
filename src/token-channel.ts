/**
 * The consumer side of a token stream: tokens pushed by a producer, read once
 * with `for await`; a consumer that stops early calls `onReturn` (cancel).
 */
import type { Token } from "./types.js";

export class TokenChannel implements AsyncIterable<Token> {
  private readonly queue: Token[] = [];
  private waiter: ((r: IteratorResult<Token>) => void) | undefined;
  private closed = false;
  private iterating = false;

  constructor(private readonly onReturn: () => void) {}

  push(token: Token): void {
    if (this.closed) return;
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

  [Symbol.asyncIterator](): AsyncIterator<Token> {
    if (this.iterating) throw new Error("a token stream can be iterated only once");
    this.iterating = true;
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
}
