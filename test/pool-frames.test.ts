// The worker → pool frame format: token runs and JSON messages survive any
// split of the byte stream, multi-byte text included, in order.
import { describe, expect, it } from "vitest";
import { encodeFrames, FrameReader, TokenRun } from "../src/pool/frames.js";
import type { FromWorker } from "../src/pool/protocol.js";

type Seen = { token: [number, number, string] } | { message: FromWorker };

function decode(chunks: Buffer[]): Seen[] {
  const seen: Seen[] = [];
  const reader = new FrameReader({ token: (id, token, text) => seen.push({ token: [id, token, text] }), message: (m) => seen.push({ message: m }) });
  for (const c of chunks) reader.push(c);
  return seen;
}

describe("pool frames", () => {
  const run = new TokenRun();
  const texts = ["Hello", " wörld", "", "🙂", " 你好", "\n", "a".repeat(300)];
  texts.forEach((t, i) => run.push(1000 + (i % 3), 50000 + i, t));
  const end: FromWorker = { t: "rejected", id: 7, code: "invalid_request", message: "bad — “quoted”" };
  const second = new TokenRun();
  second.push(4_000_000_000, 3, "last");
  const bytes = encodeFrames([run, end, second]);
  const expected: Seen[] = [
    ...texts.map((t, i): Seen => ({ token: [1000 + (i % 3), 50000 + i, t] })),
    { message: end },
    { token: [4_000_000_000, 3, "last"] },
  ];

  it("decodes what was encoded, in order", () => {
    expect(decode([bytes])).toEqual(expected);
  });

  it("reassembles frames split at every byte boundary", () => {
    for (let cut = 1; cut < bytes.length; cut++) expect(decode([bytes.subarray(0, cut), bytes.subarray(cut)])).toEqual(expected);
    expect(decode([...bytes].map((b) => Buffer.of(b)))).toEqual(expected);
  });

  it("keeps a frame that has not fully arrived for the next chunk", () => {
    const seen = decode([bytes.subarray(0, bytes.length - 1)]);
    expect(seen).toEqual(expected.slice(0, -1));
  });

  it("rejects a frame of an unknown kind", () => {
    const bad = Buffer.from([1, 0, 0, 0, 9]);
    expect(() => decode([bad])).toThrow(/unknown kind 9/);
  });
});
