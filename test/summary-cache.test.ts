// With a weight cache, what the text workers found of a tokenizer (its id
// space and streaming byte table) is kept beside the weights, and a later load
// of the same files does not wait for the workers to build the tokenizer
// again. The file is input like any other in the cache directory: a table of
// damaged ones, each a miss that the next load replaces, and a tokenizer that
// fails to build in the background failing text requests with its error.
import { execFileSync } from "node:child_process";
import { chmodSync, cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadModel, ModelLoadError } from "../src/index.js";
import { readSummary, summaryKey, writeSummary } from "../src/tokenizer/summary-cache.js";
import { TextWorkers } from "../src/tokenizer/text-workers.js";
import type { TokenizerSource } from "../src/tokenizer/tokenizer.js";
import { ggufFile, hfDir } from "./helpers/paths.js";

let root: string;
beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), "neoserve-summary-"));
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

const tokFiles = (dir: string) => readdirSync(dir).filter((f) => f.endsWith(".tok"));

// What the text workers report of `source`'s tokenizer, built now.
async function builtSummary(source: TokenizerSource) {
  const { text, summary } = await TextWorkers.start(source);
  await text.dispose();
  return summary;
}

async function waitFor(done: () => boolean, ms: number): Promise<void> {
  for (const end = Date.now() + ms; !done(); await new Promise((r) => setTimeout(r, 20)))
    if (Date.now() > end) throw new Error(`not within ${ms} ms`);
}

describe("the tokenizer summary in the weight cache", () => {
  it("a second load takes it from the cache and tokenizes, streams and detokenizes as the first", async () => {
    const cache = join(root, "cache-gguf");
    const gguf = ggufFile("tiny", "q8_0");
    const run = async () => {
      const m = await loadModel(gguf, { backend: "cpu", threads: 1, weightCache: cache });
      try {
        const ids = await m.tokenize({ prompt: "Hello there, the cache" });
        const streamed: string[] = [];
        const s = m.generate({ prompt: "Once upon a time", maxTokens: 12, temperature: 0, ignoreEos: true });
        s.onToken((t) => streamed.push(t.text));
        const r = await s.result;
        return { ids: [...ids], text: r.text, streamed: streamed.join(""), back: await m.detokenize(r.tokens), weights: m.info.weightCache };
      } finally {
        await m.dispose();
      }
    };
    const first = await run();
    expect(tokFiles(cache)).toHaveLength(1);
    const second = await run();
    expect(second.weights).toBe("hit");
    expect(second).toEqual({ ...first, weights: "hit" });
    expect(second.streamed).toBe(second.text);
  });

  it("the second load's streams decode through the cached table (a table edited in the file shows in them)", async () => {
    const cache = join(root, "cache-edited");
    const stream = async () => {
      const m = await loadModel(hfDir("tiny"), { backend: "cpu", threads: 1, weightCache: cache });
      try {
        const parts: string[] = [];
        const s = m.generate({ tokens: [1, 300, 301, 302], maxTokens: 16, temperature: 0, ignoreEos: true });
        s.onToken((t) => parts.push(t.text));
        await s.result;
        return parts.join("");
      } finally {
        await m.dispose();
      }
    };
    const first = await stream();
    expect(first).toMatch(/e/);
    const file = join(cache, tokFiles(cache)[0]!);
    const bytes = readFileSync(file);
    const tableAt = bytes.length - (JSON.parse(bytes.toString("utf8", 12, 12 + bytes.readUInt32LE(8))) as { bytes: number }).bytes;
    for (let i = tableAt; i < bytes.length; i++) if (bytes[i] === 0x65) bytes[i] = 0x45; // every "e" an "E"
    writeFileSync(file, bytes);
    expect(await stream()).toBe(first.replaceAll("e", "E"));
  });

  it("is keyed by the tokenizer's files: an edited tokenizer.json (or chat template) is a new summary, in the same file", async () => {
    const dir = join(root, "hf-edited");
    cpSync(hfDir("tiny"), dir, { recursive: true });
    const cache = join(root, "cache-hf");
    const source = { path: dir, vocabLimit: 1 << 20 };
    const at = await summaryKey(cache, source);
    const summary = await builtSummary(source);
    expect(await writeSummary(cache, source, summary, at)).toBe(true);
    expect((await readSummary(cache, at))?.vocabSize).toBe(summary.vocabSize);
    const json = JSON.parse(readFileSync(join(dir, "tokenizer.json"), "utf8")) as Record<string, unknown>;
    writeFileSync(join(dir, "tokenizer.json"), JSON.stringify(json, null, 1)); // same tokenizer, another file
    const edited = await summaryKey(cache, source);
    expect(edited.file).toBe(at.file); // one file per tokenizer: the next build replaces it
    expect(await readSummary(cache, edited)).toBeUndefined();
    writeFileSync(join(dir, "chat_template.jinja"), "{{ messages }}");
    expect((await summaryKey(cache, source)).key).not.toBe(edited.key);
    expect((await summaryKey(cache, { ...source, vocabLimit: 1 << 19 })).file).not.toBe(at.file);
  });

  it("is not written when the tokenizer's files changed while it was built", async () => {
    const dir = join(root, "hf-racing");
    cpSync(hfDir("tiny"), dir, { recursive: true });
    const cache = join(root, "cache-race");
    const source = { path: dir };
    const before = await summaryKey(cache, source);
    const summary = await builtSummary(source);
    writeFileSync(join(dir, "tokenizer_config.json"), readFileSync(join(dir, "tokenizer_config.json"), "utf8") + "\n"); // edited meanwhile
    expect(await writeSummary(cache, source, summary, before)).toBe(false);
    expect(await writeSummary(cache, source, summary, await summaryKey(cache, source))).toBe(true);
  });

  it("refuses a damaged or foreign summary file: a miss, in bounded time", async () => {
    const cache = join(root, "cache-damaged");
    const source = { path: hfDir("tiny") };
    const at = await summaryKey(cache, source);
    const summary = await builtSummary(source);
    expect(await writeSummary(cache, source, summary, at)).toBe(true);
    const file = at.file;
    const good = readFileSync(file);
    const headerLength = good.readUInt32LE(8);
    const offsetsAt = 12 + headerLength;
    const edit = (change: (b: Buffer) => Buffer | void) => {
      const b = Buffer.from(good);
      return change(b) ?? b;
    };
    const header = (h: (j: Record<string, unknown>) => void) => {
      const j = JSON.parse(good.toString("utf8", 12, offsetsAt)) as Record<string, unknown>;
      h(j);
      const text = Buffer.from(JSON.stringify(j));
      const head = Buffer.alloc(12);
      good.copy(head, 0, 0, 8);
      head.writeUInt32LE(text.length, 8);
      return Buffer.concat([head, text, good.subarray(offsetsAt)]);
    };
    const cases: [string, Buffer][] = [
      ["empty", Buffer.alloc(0)],
      ["another magic", edit((b) => void (b[0] = 0x41))],
      ["a header length past the file", edit((b) => void b.writeUInt32LE(0xffffffff, 8))],
      ["a header that is not JSON", edit((b) => void b.fill(0x7b, 12, 20))],
      ["another key", header((j) => (j.key = "someone else's"))],
      ["a vocabulary of 0", header((j) => (j.vocabSize = 0))],
      ["a vocabulary of 2^40", header((j) => (j.vocabSize = 2 ** 40))],
      ["a byte count that is not the file's", header((j) => (j.bytes = (j.bytes as number) + 1))],
      ["50 leading spaces stripped", header((j) => (j.stripLeadingSpaces = 50))],
      ["offsets out of order", edit((b) => void b.writeUInt32LE(0xfffffff0, offsetsAt + 4 * 5))],
      ["a first offset that is not 0", edit((b) => void b.writeUInt32LE(1, offsetsAt))],
      ["cut short", good.subarray(0, good.length - 3)],
      ["a byte more", Buffer.concat([good, Buffer.of(0)])],
      ["noise", Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 2654435761) >>> 24))],
      ["100 MB of zeros", Buffer.alloc(100 << 20)],
    ];
    for (const [what, bytes] of cases) {
      writeFileSync(file, bytes);
      const t0 = performance.now();
      expect(await readSummary(cache, at), what).toBeUndefined();
      expect(performance.now() - t0, what).toBeLessThan(2000);
    }
    // A FIFO in its place: refused, not waited on.
    rmSync(file);
    execFileSync("mkfifo", [file]);
    expect(await readSummary(cache, at)).toBeUndefined();
    rmSync(file);
    writeFileSync(file, good);
    expect(await readSummary(cache, at)).toEqual(summary);
  });

  it("a load over a damaged summary works, and leaves a good one in its place", async () => {
    const cache = join(root, "cache-load");
    const load = async () => (await loadModel(hfDir("tiny"), { backend: "cpu", threads: 1, weightCache: cache })).dispose();
    await load();
    const file = join(cache, tokFiles(cache)[0]!);
    const good = readFileSync(file);
    writeFileSync(file, good.subarray(0, 100));
    await load();
    expect(readFileSync(file).equals(good)).toBe(true);
  });

  it("a cached summary the background build contradicts is removed: the next load builds first", async () => {
    const cache = join(root, "cache-contradicted");
    const m = await loadModel(hfDir("tiny"), { backend: "cpu", threads: 1, weightCache: cache });
    const source = { path: hfDir("tiny"), vocabLimit: m.info.config.vocabSize };
    await m.dispose();
    const at = await summaryKey(cache, source);
    const real = (await readSummary(cache, at))!;
    const n = real.vocabSize - 1; // one id short: still a well-formed file with the right key
    const table = real.decodeTable!;
    const short = { vocabSize: n, decodeTable: { ...table, offsets: table.offsets.slice(0, n + 1), bytes: table.bytes.slice(0, table.offsets[n]) } };
    expect(await writeSummary(cache, source, short, at)).toBe(true);
    const again = await loadModel(hfDir("tiny"), { backend: "cpu", threads: 1, weightCache: cache });
    try {
      await again.tokenize({ prompt: "the workers have built it by now" });
      await waitFor(() => tokFiles(cache).length === 0, 5000);
    } finally {
      await again.dispose();
    }
  });

  it("is not used from a directory others may write to", async () => {
    const cache = join(root, "cache-open");
    const source = { path: hfDir("tiny") };
    const at = await summaryKey(cache, source);
    const summary = await builtSummary(source);
    expect(await writeSummary(cache, source, summary, at)).toBe(true);
    chmodSync(cache, 0o777);
    expect(await readSummary(cache, at)).toBeUndefined();
    expect(await writeSummary(cache, source, summary, at)).toBe(false);
  });

  it("a tokenizer that fails to build in the background fails the text that waited for it, with its error", async () => {
    const dir = join(root, "hf-broken");
    cpSync(hfDir("tiny"), dir, { recursive: true });
    const good = await builtSummary({ path: dir });
    writeFileSync(join(dir, "tokenizer.json"), "{ not json");
    const { text, summary } = await TextWorkers.start({ path: dir }, {}, good); // resolves at once: the summary is known
    expect(summary).toBe(good);
    try {
      await expect(text.encode({ prompt: "waits for the build" })).rejects.toBeInstanceOf(ModelLoadError);
      await expect(text.encode({ prompt: "after it failed" })).rejects.toBeInstanceOf(ModelLoadError);
    } finally {
      await text.dispose();
    }
  });
});
