// Log probabilities computed in native code, against a log-softmax computed
// here in float64 from the same request's raw logits (returnLogits).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { InvalidRequestError, loadModel, type Model, type TokenLogprob } from "../src/index.js";
import { hfDir } from "./helpers/paths.js";

let model: Model;
beforeAll(async () => {
  model = await loadModel(hfDir("tiny"), { backend: "cpu", threads: 1 });
});
afterAll(() => model.dispose());

function logSoftmax(row: Float32Array): Float64Array {
  let max = -Infinity;
  for (const x of row) max = Math.max(max, x);
  let sum = 0;
  for (const x of row) sum += Math.exp(x - max);
  const z = max + Math.log(sum);
  return Float64Array.from(row, (x) => x - z);
}

describe("logprobs", () => {
  it("are the log-softmax of the raw logits: the sampled token's, and the top alternatives in order", async () => {
    const stream = model.generate({ prompt: "Once upon a time", maxTokens: 6, temperature: 0.9, seed: 3, logprobs: 5, returnLogits: true, ignoreEos: true });
    const streamed: TokenLogprob[] = [];
    for await (const t of stream) streamed.push(t.logprob!);
    const r = await stream.result;
    expect(r.logprobs).toHaveLength(6);
    expect(streamed.map((l) => l.logprob)).toEqual(r.logprobs!.map((l) => l.logprob));
    const tokenizer = await model.tokenizer();
    r.tokens.forEach((id, i) => {
      const reference = logSoftmax(r.logits![i]!);
      const lp = r.logprobs![i]!;
      expect(lp.id).toBe(id);
      expect(lp.logprob).toBeCloseTo(reference[id]!, 4);
      const order = Array.from(reference.keys()).sort((a, b) => reference[b]! - reference[a]! || a - b);
      expect(lp.top.map((t) => t.id)).toEqual(order.slice(0, 5));
      lp.top.forEach((t) => expect(t.logprob).toBeCloseTo(reference[t.id]!, 4));
      expect(lp.piece).toBe(tokenizer.decode([id]));
      expect(new TextDecoder().decode(Uint8Array.from(lp.bytes))).toBe(lp.piece);
    });
  });

  it("greedy picks the top alternative, whose probability the others do not exceed", async () => {
    const r = await model.generate({ prompt: "The quick", maxTokens: 4, temperature: 0, logprobs: 3 }).result;
    for (const lp of r.logprobs!) {
      expect(lp.top[0]!.id).toBe(lp.id);
      expect(lp.top.map((t) => t.logprob)).toEqual([...lp.top.map((t) => t.logprob)].sort((a, b) => b - a));
      expect(lp.logprob).toBeLessThanOrEqual(0);
    }
  });

  it.each([-2, 21, 1.5, "3"])("refuses logprobs = %j with an InvalidRequestError", (logprobs) => {
    expect(() => model.generate({ prompt: "a", logprobs: logprobs as number })).toThrow(InvalidRequestError);
  });

  it("are absent unless asked for", async () => {
    const r = await model.generate({ prompt: "a", maxTokens: 2 }).result;
    expect(r.logprobs).toBeUndefined();
  });
});
