/**
 * Worker → pool messages over a plain pipe (the worker's fd 4), in frames:
 * Node's IPC channel costs both processes a deserializer and an event per
 * message, which at thousands of tokens a second is a visible share of a CPU
 * pool's cores. One pipe carries every worker → pool message, so a request's
 * tokens always arrive before its end.
 *
 *   frame   u32 length of what follows | u8 kind | payload
 *   kind 1  a run of tokens: u32 n | n × (u32 request id, u32 token id, u32 end) | UTF-8 text
 *           (the tokens' texts joined; token i's text ends at UTF-16 offset `end` of the decoded text)
 *   kind 2  any other message, as JSON
 */
import type { FromWorker } from "./protocol.js";

const TOKENS = 1;
const JSON_MESSAGE = 2;

/** Tokens of several requests, in the order the worker produced them. */
export class TokenRun {
  readonly ids: number[] = [];
  readonly tokens: number[] = [];
  readonly ends: number[] = [];
  text = "";

  push(id: number, token: number, text: string): void {
    this.ids.push(id);
    this.tokens.push(token);
    this.text += text;
    this.ends.push(this.text.length);
  }
}

/** Encodes messages and token runs, in order, into one buffer of frames. */
export function encodeFrames(items: readonly (FromWorker | TokenRun)[]): Buffer {
  const parts = items.map((item) =>
    item instanceof TokenRun ? { run: item, bytes: Buffer.byteLength(item.text) } : { json: Buffer.from(JSON.stringify(item)) },
  );
  const size = parts.reduce((n, p) => n + 5 + ("run" in p ? 4 + 12 * p.run!.ids.length + p.bytes! : p.json!.length), 0);
  const out = Buffer.allocUnsafe(size);
  let at = 0;
  for (const p of parts) {
    if ("json" in p) {
      at = out.writeUInt32LE(1 + p.json!.length, at);
      at = out.writeUInt8(JSON_MESSAGE, at);
      at += p.json!.copy(out, at);
      continue;
    }
    const run = p.run!;
    const n = run.ids.length;
    at = out.writeUInt32LE(1 + 4 + 12 * n + p.bytes!, at);
    at = out.writeUInt8(TOKENS, at);
    at = out.writeUInt32LE(n, at);
    for (let i = 0; i < n; i++) {
      at = out.writeUInt32LE(run.ids[i]!, at);
      at = out.writeUInt32LE(run.tokens[i]!, at);
      at = out.writeUInt32LE(run.ends[i]!, at);
    }
    at += out.write(run.text, at);
  }
  return out;
}

/** What a decoded frame hands over: a token, or any other message. */
export interface FrameSink {
  token(id: number, token: number, text: string): void;
  message(m: FromWorker): void;
}

/** Reassembles frames from the pipe's chunks, whatever their boundaries. */
export class FrameReader {
  private pending: Buffer = Buffer.alloc(0);

  constructor(private readonly sink: FrameSink) {}

  push(chunk: Buffer): void {
    const buf = this.pending.length ? Buffer.concat([this.pending, chunk]) : chunk;
    let at = 0;
    while (buf.length - at >= 4) {
      const length = buf.readUInt32LE(at);
      if (buf.length - at - 4 < length) break;
      this.frame(buf, at + 4, at + 4 + length);
      at += 4 + length;
    }
    this.pending = at < buf.length ? Buffer.from(buf.subarray(at)) : Buffer.alloc(0);
  }

  private frame(buf: Buffer, start: number, end: number): void {
    const kind = buf.readUInt8(start);
    if (kind === JSON_MESSAGE) {
      this.sink.message(JSON.parse(buf.toString("utf8", start + 1, end)) as FromWorker);
      return;
    }
    if (kind !== TOKENS) throw new Error(`pool worker sent a frame of unknown kind ${kind}`);
    const n = buf.readUInt32LE(start + 1);
    const table = start + 5;
    const text = buf.toString("utf8", table + 12 * n, end);
    for (let i = 0, from = 0; i < n; i++) {
      const row = table + 12 * i;
      const to = buf.readUInt32LE(row + 8);
      this.sink.token(buf.readUInt32LE(row), buf.readUInt32LE(row + 4), text.slice(from, to));
      from = to;
    }
  }
}
