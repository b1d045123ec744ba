// Numerics against an independent reference, llama.cpp (node-llama-cpp's
// prebuilt CPU binary), on the same GGUF files: same greedy tokens and close
// logits for many prompts and shapes. Also: the HF directory and the GGUF of
// the same weights give identical output, and INT8 / Q8_0 stay near F32.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadModel, type Model } from "../src/index.js";
import { ggufFile, hfDir, type TestPreset } from "./helpers/paths.js";
import { LlamaCppReference, topMargin } from "./reference/llama-cpp.js";

/** Max |ours − llama.cpp| over every logit of every step, for F32 weights (FP32 math, F32 KV cache on both sides). */
const F32_LOGIT_TOLERANCE = 2e-3;
/** For Q8_0 weights: both sides quantize activations to 8 bits per 32-block, in a different summation order. */
const Q8_0_LOGIT_TOLERANCE = 5e-2;

const presets: TestPreset[] = ["tiny", "tiny-mha", "tiny-tied", "tiny-odd", "tiny-llama3"];
const STEPS = 12;

// Prompts of many lengths: 1 token, short, and longer than one 16-position KV block and one prefill chunk.
function prompts(vocab: number): number[][] {
  const lcg = (seed: number) => () => (seed = (seed * 1103515245 + 12345) % 2147483648) % Math.min(vocab, 50000);
  const make = (n: number, seed: number) => Array.from({ length: n }, lcg(seed));
  return [[464], make(5, 1), make(17, 2), make(40, 3), make(150, 4)];
}

async function ours(model: Model, tokens: number[], steps = STEPS) {
  const r = await model.generate({ tokens, maxTokens: steps, temperature: 0, ignoreEos: true, returnLogits: true }).result;
  return { tokens: r.tokens, logits: r.logits! };
}

function maxAbsDiff(a: Float32Array[], b: Float32Array[]): number {
  let worst = 0;
  a.forEach((row, i) => {
    const other = b[i]!;
    for (let j = 0; j < row.length; j++) worst = Math.max(worst, Math.abs(row[j]! - other[j]!));
  });
  return worst;
}

describe.each(presets)("%s against llama.cpp", (preset) => {
  for (const kind of ["f32", "q8_0"] as const) {
    it(`${kind}: same greedy tokens and logits within tolerance`, async () => {
      const path = ggufFile(preset, kind);
      const model = await loadModel(path, { backend: "cpu", threads: 2 });
      const ref = await LlamaCppReference.load(path, { threads: 2, contextSize: 512 });
      try {
        let worst = 0;
        let minMargin = Infinity;
        for (const p of prompts(model.info.vocabSize)) {
          const a = await ours(model, p);
          const b = await ref.greedy(p, STEPS);
          expect(a.tokens).toEqual(b.tokens);
          worst = Math.max(worst, maxAbsDiff(a.logits, b.logits));
          for (const row of b.logits) minMargin = Math.min(minMargin, topMargin(row).margin);
        }
        console.log(`${preset} ${kind}: max |Δlogit| = ${worst.toExponential(2)}, smallest top-2 margin ${minMargin.toFixed(3)}`);
        expect(worst).toBeLessThanOrEqual(kind === "f32" ? F32_LOGIT_TOLERANCE : Q8_0_LOGIT_TOLERANCE);
      } finally {
        await ref.dispose();
        await model.dispose();
      }
    });
  }
});

describe("one checkpoint, every form", () => {
  let f32: Model;
  beforeAll(async () => {
    f32 = await loadModel(ggufFile("tiny"), { backend: "cpu", threads: 2 });
  });
  afterAll(() => f32.dispose());

  it("the HF directory, the sharded HF directory and the GGUF give identical logits", async () => {
    for (const path of [hfDir("tiny"), hfDir("tiny-sharded")]) {
      const hf = await loadModel(path, { backend: "cpu", threads: 2 });
      try {
        for (const p of prompts(hf.info.vocabSize).slice(0, 3)) {
          const a = await ours(f32, p, 6);
          const b = await ours(hf, p, 6);
          expect(b.tokens).toEqual(a.tokens);
          expect(maxAbsDiff(a.logits, b.logits)).toBe(0);
        }
      } finally {
        await hf.dispose();
      }
    }
  });

  // INT8 / Q8_0 stay within a stated bound of F32: the logits move by at most
  // 5% of their spread, and the first greedy token agrees.
  it.each([
    ["int8 from the HF directory", () => loadModel(hfDir("tiny"), { backend: "cpu", precision: "int8", threads: 2 })],
    ["Q8_0 GGUF", () => loadModel(ggufFile("tiny", "q8_0"), { backend: "cpu", threads: 2 })],
    ["F16 GGUF", () => loadModel(ggufFile("tiny", "f16"), { backend: "cpu", threads: 2 })],
  ])("%s stays near F32", async (_name, load) => {
    const q = await load();
    try {
      for (const p of prompts(q.info.vocabSize)) {
        const a = await ours(f32, p, 1);
        const b = await ours(q, p, 1);
        const row = a.logits[0]!;
        const spread = Math.max(...row) - Math.min(...row);
        const diff = maxAbsDiff(a.logits, b.logits);
        console.log(`${_name}: max |Δlogit| ${diff.toExponential(2)} of spread ${spread.toFixed(2)}`);
        expect(diff / spread).toBeLessThan(0.05);
        expect(b.tokens[0]).toBe(a.tokens[0]);
      }
    } finally {
      await q.dispose();
    }
  });
});
