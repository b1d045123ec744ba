// Untrusted text stays off the event loop: a model's own tokenizer.json and
// chat template, and a request's text, are run in text worker processes under
// limits of time, steps, size and heap. Each hostile case fails only its own
// request, with a typed error, while the event loop keeps turning and the
// model keeps serving.
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { InputLimitError, InvalidRequestError, loadModel, ModelLoadError, ModelPool, NeoserveError, type Model } from "../src/index.js";
import { ggufFile, hfDir } from "./helpers/paths.js";

let root: string;
beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), "neoserve-text-"));
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

type Json = Record<string, unknown>;
// A copy of the tiny checkpoint with its tokenizer files edited.
function variant(name: string, edit: { tokenizer?: (j: Json) => void; template?: string }): string {
  const dir = join(root, name);
  cpSync(hfDir("tiny"), dir, { recursive: true });
  const rewrite = (file: string, change: (j: Json) => void) => {
    const json = JSON.parse(readFileSync(join(dir, file), "utf8")) as Json;
    change(json);
    writeFileSync(join(dir, file), JSON.stringify(json));
  };
  if (edit.tokenizer) rewrite("tokenizer.json", edit.tokenizer);
  if (edit.template !== undefined) rewrite("tokenizer_config.json", (c) => (c.chat_template = edit.template));
  return dir;
}

// The longest the event loop waited while `work` ran, in ms.
async function longestStall<T>(work: () => Promise<T>): Promise<{ value: T; stallMs: number }> {
  const h = monitorEventLoopDelay({ resolution: 5 });
  h.enable();
  const value = await work();
  await new Promise((r) => setTimeout(r, 20)); // a stall is recorded when the loop next turns
  h.disable();
  return { value, stallMs: h.max / 1e6 };
}

const catastrophicRegex = (j: Json) => {
  j.pre_tokenizer = {
    type: "Sequence",
    pretokenizers: [
      { type: "Split", pattern: { Regex: "(a+)+$" }, behavior: "Isolated", invert: false },
      { type: "ByteLevel", add_prefix_space: false, trim_offsets: true, use_regex: false },
    ],
  };
};

const text = { timeoutMs: 2000, heapMb: 256, maxInputChars: 1 << 20 };
const user = (content: string) => ({ messages: [{ role: "user", content }] });

describe("hostile tokenizers and templates fail their own request, typed, with the event loop free", () => {
  const cases: [string, () => string, object, typeof InvalidRequestError, RegExp][] = [
    ["a pre-tokenizer regex that backtracks exponentially ((a+)+$)", () => variant("regex", { tokenizer: catastrophicRegex }), { prompt: "a".repeat(40) + "b" }, InputLimitError, /longer than 2000 ms/],
    ["the same regex reached through a chat message", () => variant("regex-chat", { tokenizer: catastrophicRegex }), user("a".repeat(40) + "b"), InputLimitError, /longer than 2000 ms/],
    ["nested loops of range(100000)", () => variant("nested", { template: "{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}" }), user("hi"), InputLimitError, /evaluation steps|longer than 2000 ms/],
    ["range(1e9)", () => variant("range", { template: "{% for i in range(1000000000) %}x{% endfor %}" }), user("hi"), InputLimitError, /loop over 100000 at most/],
    ["a string doubled 30 times", () => variant("doubling", { template: "{% set ns = namespace(s='x') %}{% for i in range(30) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s }}" }), user("hi"), InvalidRequestError, /./],
    ["a list doubled 30 times, then tojson", () => variant("tojson", { template: "{% set ns = namespace(l=[1]) %}{% for i in range(30) %}{% set ns.l = ns.l + ns.l %}{% endfor %}{{ ns.l | tojson }}" }), user("hi"), InputLimitError, /256 MiB heap|longer than 2000 ms/],
    ["output past maxInputChars", () => variant("output", { template: `{% for i in range(100000) %}${"x".repeat(20)}{% endfor %}` }), user("hi"), InputLimitError, /rendered 2000000 characters; the limit is 1048576/],
    ["a macro that calls itself forever", () => variant("recursion", { template: "{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}" }), user("hi"), InvalidRequestError, /chat template/],
  ];

  it.each(cases)("%s", { timeout: 60_000 }, async (_what, make, request, Class, message) => {
    const model = await loadModel(make(), { backend: "cpu", threads: 1, text });
    try {
      const t0 = performance.now();
      const { value: refusal, stallMs } = await longestStall(async () => {
        const stream = model.generate({ ...request, maxTokens: 2 });
        const other = model.generate({ tokens: [1, 2, 3], maxTokens: 8, ignoreEos: true }); // beside it, unaffected
        expect((await other.result).finishReason).toBe("length");
        const error = await stream.accepted.then(() => undefined, (e: unknown) => e);
        expect((await stream.result).finishReason).toBe("error");
        return error;
      });
      expect(refusal).toBeInstanceOf(Class);
      expect((refusal as Error).message).toMatch(message);
      expect(performance.now() - t0).toBeLessThan(20_000);
      expect(stallMs).toBeLessThan(200); // seconds, before: the regex alone held the loop 23.8 s
      // The model still serves text (a replaced worker, or the other one).
      const after = await model.generate({ prompt: "hello", maxTokens: 2, ignoreEos: true }).result;
      expect(after.finishReason).toBe("length");
    } finally {
      await model.dispose();
    }
  });
});

describe("request text", () => {
  let model: Model;
  beforeAll(async () => {
    model = await loadModel(hfDir("tiny"), { backend: "cpu", threads: 1, text: { ...text, workers: 1 } });
  });
  afterAll(() => model.dispose());

  it("a 1 MB prompt is tokenized off the event loop, then refused for the context", async () => {
    const prompt = "All work and no play makes a dull model. ".repeat(25_000); // ~1 MB, 250k tokens
    const { value: refusal, stallMs } = await longestStall(() => model.generate({ prompt }).accepted.then(() => undefined, (e: unknown) => e));
    expect(refusal).toBeInstanceOf(InvalidRequestError);
    expect(refusal).not.toBeInstanceOf(InputLimitError);
    expect((refusal as Error).message).toMatch(/context/);
    expect(stallMs).toBeLessThan(100); // 357 ms in one stretch before
  });

  it("text past maxInputChars is refused before any tokenizing", async () => {
    const stream = model.generate({ prompt: "x".repeat((1 << 20) + 1) });
    await expect(stream.accepted).rejects.toThrow(/1048577 characters of text; the limit is 1048576/);
    await expect(stream.accepted).rejects.toBeInstanceOf(InputLimitError);
    expect((await stream.result).error).toMatch(/limit/);
  });

  it("a request cancelled while it waits for a text worker is never tokenized", async () => {
    const slow = await loadModel(variant("regex-queue", { tokenizer: catastrophicRegex }), { backend: "cpu", threads: 1, text: { ...text, workers: 1 } });
    try {
      const blocking = slow.generate({ prompt: "a".repeat(40) + "b" }); // holds the one worker until its time limit
      const waiting = slow.generate({ prompt: "a".repeat(40) + "b" });
      waiting.cancel();
      const r = await waiting.result;
      expect(r.finishReason).toBe("cancelled");
      await expect(waiting.accepted).rejects.toMatchObject({ code: "cancelled" });
      await expect(blocking.accepted).rejects.toBeInstanceOf(InputLimitError);
      // Had the cancelled one been tokenized, it would take the worker another 2 s.
      const t0 = performance.now();
      expect((await slow.generate({ prompt: "hello", maxTokens: 1 }).result).finishReason).not.toBe("error");
      expect(performance.now() - t0).toBeLessThan(1900);
    } finally {
      await slow.dispose();
    }
  });

  it("a request whose model is disposed while its text is tokenized ends cancelled", async () => {
    const slow = await loadModel(variant("regex-dispose", { tokenizer: catastrophicRegex }), { backend: "cpu", threads: 1, text });
    const stream = slow.generate({ prompt: "a".repeat(40) + "b" });
    await slow.dispose();
    const r = await stream.result;
    expect(r.finishReason).toBe("cancelled");
    await expect(stream.accepted).rejects.toBeInstanceOf(NeoserveError);
  });

  it("ids and text prompts of the same tokens give the same usage", async () => {
    const tokenizer = await model.tokenizer();
    const r = await model.generate({ prompt: "Once upon a time", maxTokens: 1 }).result;
    expect(r.usage.promptTokens).toBe(tokenizer.encode("Once upon a time").length);
  });
});

describe("loading", () => {
  it.each([
    ["a GGUF (its tokenizer rebuilt from metadata)", () => ggufFile("tiny")],
    ["a Hugging Face directory", () => hfDir("tiny")],
  ])("%s never holds the event loop long: the tokenizer is built in the text workers", async (_what, path) => {
    const { value: model, stallMs } = await longestStall(() => loadModel(path(), { backend: "cpu", threads: 1 }));
    await model.dispose();
    expect(stallMs).toBeLessThan(100); // ~150 ms in one stretch before
  });

  it("a tokenizer whose decoder never finishes building its byte table is a ModelLoadError, in bounded time", { timeout: 30_000 }, async () => {
    // A Replace decoder with an exponentially backtracking pattern, and a token that triggers it.
    const dir = variant("decoder-regex", {
      tokenizer: (j) => {
        j.decoder = { type: "Sequence", decoders: [{ type: "ByteLevel" }, { type: "Replace", pattern: { Regex: "(a+)+$" }, content: "" }] };
        const vocab = (j.model as { vocab: Record<string, number> }).vocab;
        delete vocab[Object.keys(vocab).find((t) => vocab[t] === 5)!];
        vocab["a".repeat(40) + "b"] = 5; // id 5's text now triggers it
      },
    });
    const t0 = performance.now();
    const load = loadModel(dir, { backend: "cpu", threads: 1, text: { buildTimeoutMs: 2000 } });
    await expect(load).rejects.toBeInstanceOf(ModelLoadError);
    await expect(load).rejects.toThrow(/building the tokenizer took longer than 2000 ms/);
    expect(performance.now() - t0).toBeLessThan(15_000);
  });

  it.each([
    [{ workers: 0 }, /text\.workers must be an integer in \[1, 64\], got 0/],
    [{ buildTimeoutMs: 0 }, /text\.buildTimeoutMs/],
    [{ timeoutMs: -5 }, /text\.timeoutMs/],
    [{ maxInputChars: 1.5 }, /text\.maxInputChars/],
    [{ heapMb: Number.NaN }, /text\.heapMb/],
  ])("refuses text options %j with an InvalidRequestError", async (options, message) => {
    const load = loadModel(hfDir("tiny"), { backend: "cpu", threads: 1, text: options });
    await expect(load).rejects.toBeInstanceOf(InvalidRequestError);
    await expect(load).rejects.toThrow(message);
  });
});

describe("a pool tokenizes in its own text workers", () => {
  it("refuses a hostile prompt with InputLimitError and keeps serving", { timeout: 60_000 }, async () => {
    const pool = await ModelPool.start({ model: variant("regex-pool", { tokenizer: catastrophicRegex }), slices: 1, load: { backend: "cpu", threads: 1, text } });
    try {
      const stream = pool.generate({ prompt: "a".repeat(40) + "b" });
      await expect(stream.accepted).rejects.toBeInstanceOf(InputLimitError);
      expect((await stream.result).finishReason).toBe("error");
      const ok = await pool.generate({ prompt: "hello", maxTokens: 2, ignoreEos: true }).result;
      expect(ok.finishReason).toBe("length");
    } finally {
      await pool.dispose();
    }
  });
});
