// The public API end to end on the bundled tiny model: streaming, results,
// determinism, stop conditions, cancellation, dispose and bad input.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { InvalidRequestError, loadModel, ModelDisposedError, type Model } from "../src/index.js";
import { ggufFile, hfDir } from "./helpers/paths.js";

let model: Model;
beforeAll(async () => {
  model = await loadModel(hfDir("tiny"), { backend: "cpu", threads: 2 });
});
afterAll(async () => {
  await model.dispose();
});

async function collect(stream: AsyncIterable<{ id: number; text: string }>) {
  const ids: number[] = [];
  let text = "";
  for await (const tok of stream) {
    ids.push(tok.id);
    text += tok.text;
  }
  return { ids, text };
}

describe("generate", () => {
  it("streams tokens whose ids and text match the result", async () => {
    const stream = model.generate({ prompt: "Once upon a time", maxTokens: 24, temperature: 0.8, seed: 7, ignoreEos: true });
    const { ids, text } = await collect(stream);
    const r = await stream.result;
    expect(ids).toHaveLength(24);
    expect(r.tokens).toEqual(ids);
    expect(r.text).toBe(text);
    expect(r.text).toBe((await model.tokenizer()).decode(ids));
    expect(r.finishReason).toBe("length");
    expect(r.usage.completionTokens).toBe(24);
    expect(r.usage.promptTokens).toBe((await model.tokenizer()).encode("Once upon a time", { addSpecialTokens: true }).length);
    expect(r.timings.timeToFirstTokenMs).toBeGreaterThan(0);
    expect(r.timings.queuedMs).toBeGreaterThanOrEqual(0);
    expect(r.timings.queuedMs!).toBeLessThanOrEqual(r.timings.timeToFirstTokenMs!);
    expect(r.timings.totalMs).toBeGreaterThanOrEqual(r.timings.timeToFirstTokenMs!);
  });

  it("accepts tokens instead of a prompt, with the same output", async () => {
    const tokens = (await model.tokenizer()).encode("The quick brown fox", { addSpecialTokens: true });
    const a = await model.generate({ prompt: "The quick brown fox", maxTokens: 12, temperature: 0, ignoreEos: true }).result;
    const b = await model.generate({ tokens, maxTokens: 12, temperature: 0, ignoreEos: true }).result;
    expect(b.tokens).toEqual(a.tokens);
  });

  it("same seed gives the same tokens; another seed differs", async () => {
    const req = { prompt: "Hello", maxTokens: 32, temperature: 1, seed: 1234, ignoreEos: true };
    const a = await model.generate(req).result;
    const b = await model.generate(req).result;
    const c = await model.generate({ ...req, seed: 99 }).result;
    expect(b.tokens).toEqual(a.tokens);
    expect(c.tokens).not.toEqual(a.tokens);
  });

  it("a seeded request yields the same tokens alone and among concurrent ones", async () => {
    const req = (seed: number) => ({ prompt: `Story ${seed}:`, maxTokens: 16, temperature: 0.9, seed, ignoreEos: true });
    const alone = await model.generate(req(5)).result;
    const crowd = await Promise.all([1, 2, 3, 4, 5, 6, 7, 8].map((s) => model.generate(req(s)).result));
    expect(crowd[4]!.tokens).toEqual(alone.tokens);
  });

  it("ends at a stop token with finishReason stop", async () => {
    const first = await model.generate({ prompt: "abc", maxTokens: 8, temperature: 0, ignoreEos: true }).result;
    const stopAt = first.tokens[3]!;
    const r = await model.generate({ prompt: "abc", maxTokens: 8, temperature: 0, ignoreEos: true, stopTokenIds: [stopAt] }).result;
    expect(r.finishReason).toBe("stop");
    expect(r.tokens).toEqual(first.tokens.slice(0, first.tokens.indexOf(stopAt) + 1));
  });

  it("ends at a stop string without releasing any part of it", async () => {
    const first = await model.generate({ prompt: "xyz", maxTokens: 20, temperature: 0, ignoreEos: true }).result;
    const stop = first.text.slice(10, 14);
    expect(stop.length).toBe(4);
    const stream = model.generate({ prompt: "xyz", maxTokens: 20, temperature: 0, ignoreEos: true, stop });
    const { text } = await collect(stream);
    const r = await stream.result;
    expect(r.finishReason).toBe("stop");
    expect(text).toBe(first.text.slice(0, first.text.indexOf(stop)));
    expect(r.text).toBe(text);
  });

  it("breaking out of the loop cancels the request", async () => {
    const stream = model.generate({ prompt: "Long", maxTokens: 2000, temperature: 0, ignoreEos: true });
    let n = 0;
    for await (const _ of stream) if (++n === 3) break;
    const r = await stream.result;
    expect(r.finishReason).toBe("cancelled");
    expect(r.tokens.length).toBeLessThan(2000);
    await waitFor(() => model.stats().running === 0);
    expect(model.stats().kvBlocksUsed).toBe(0);
  });

  it("an AbortSignal cancels, before and during generation", async () => {
    const ac = new AbortController();
    const stream = model.generate({ prompt: "Abort", maxTokens: 2000, ignoreEos: true, signal: ac.signal });
    setTimeout(() => ac.abort(), 20);
    expect((await stream.result).finishReason).toBe("cancelled");
    const steps = model.stats().steps;
    const early = model.generate({ prompt: "Abort", maxTokens: 5, signal: AbortSignal.abort() });
    const r = await early.result;
    expect(r.finishReason).toBe("cancelled");
    expect(r.tokens).toHaveLength(0);
    expect(model.stats().steps).toBe(steps); // never queued, never ran
  });

  it("returns the logits each token was sampled from", async () => {
    const r = await model.generate({ prompt: "Logits", maxTokens: 4, temperature: 0, ignoreEos: true, returnLogits: true }).result;
    expect(r.logits).toHaveLength(4);
    r.logits!.forEach((row, i) => {
      expect(row.length).toBe(model.info.vocabSize);
      let best = 0;
      for (let j = 1; j < row.length; j++) if (row[j]! > row[best]!) best = j;
      expect(best).toBe(r.tokens[i]);
    });
  });

  it("keeps the event loop free while generating", async () => {
    let ticks = 0;
    const timer = setInterval(() => ticks++, 1);
    const r = await model.generate({ prompt: "Tick", maxTokens: 64, temperature: 0, ignoreEos: true }).result;
    clearInterval(timer);
    expect(r.tokens).toHaveLength(64);
    expect(ticks).toBeGreaterThan(r.timings.totalMs / 20);
  });

  it("rejects malformed requests at once with InvalidRequestError", () => {
    expect(() => model.generate({ maxTokens: 4 })).toThrow(InvalidRequestError);
    expect(() => model.generate({ prompt: "a", tokens: [1] })).toThrow(InvalidRequestError);
    expect(() => model.generate({ tokens: [model.info.vocabSize] })).toThrow(/vocabulary/);
    expect(() => model.generate({ tokens: [1.5] })).toThrow(InvalidRequestError);
    expect(() => model.generate({ prompt: "a", maxTokens: 0 })).toThrow(/maxTokens/);
    expect(() => model.generate({ prompt: "a", temperature: -1 })).toThrow(InvalidRequestError);
    expect(() => model.generate({ prompt: "a", topP: 2 })).toThrow(InvalidRequestError);
    expect(() => model.generate({ prompt: "a", stop: [""] })).toThrow(InvalidRequestError);
    expect(model.stats().waiting + model.stats().running).toBe(0);
  });
});

describe("model lifecycle", () => {
  it("dispose ends requests in flight with cancelled, then refuses new ones", async () => {
    const m = await loadModel(hfDir("tiny"), { backend: "cpu", threads: 1 });
    const streams = [1, 2, 3].map((i) => m.generate({ prompt: `p${i}`, maxTokens: 5000, ignoreEos: true }));
    await new Promise((r) => setTimeout(r, 30));
    await m.dispose();
    for (const s of streams) expect((await s.result).finishReason).toBe("cancelled");
    expect(() => m.generate({ prompt: "x" })).toThrow(ModelDisposedError);
    await m.dispose(); // idempotent
  });

  it("a GGUF alone brings its tokenizer, end-of-sequence ids and chat template", async () => {
    const m = await loadModel(ggufFile("tiny"), { backend: "cpu", threads: 1 });
    try {
      expect(m.info.format).toBe("gguf");
      const [fromGguf, fromHf] = [await m.tokenizer(), await model.tokenizer()];
      expect(fromGguf.encode("Hello world", { addSpecialTokens: false })).toEqual(fromHf.encode("Hello world", { addSpecialTokens: false }));
      expect([...fromGguf.eosTokenIds].sort()).toEqual([...fromHf.eosTokenIds].sort());
      const messages = [{ role: "user", content: "Hi" }];
      expect(fromGguf.applyChatTemplate(messages)).toBe(fromHf.applyChatTemplate(messages));
      const r = await m.generate({ messages, maxTokens: 4, temperature: 0 }).result;
      expect(r.usage.promptTokens).toBeGreaterThan(3);
    } finally {
      await m.dispose();
    }
  });

  it("reports its engine and configuration", () => {
    expect(model.info.backend).toBe("cpu");
    expect(model.info.format).toBe("huggingface");
    expect(model.info.config.numLayers).toBeGreaterThan(0);
    expect(model.info.kv.numBlocks).toBeGreaterThan(0);
  });
});

async function waitFor(cond: () => boolean, ms = 2000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 5));
  }
}
