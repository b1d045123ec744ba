// TensorRT engine directories from JS. Everywhere: the loading order against
// fake libnvinfer.so.10 / neoserve_tensorrt.so built by the C++ build (no
// TensorRT, wrong version, no provider in this build, no GPU), typed errors,
// and backend "auto" falling back to the checkpoint beside the engine with the
// reason logged. Where TensorRT and a GPU exist (NEOSERVE_TEST_ENGINE_DIR set to
// an engine directory built by models/tensorrt/build-tiny.sh and the real
// neoserve_tensorrt.so built): the engine against the CPU engine on the same
// weights — greedy tokens, logits, continuous batching and the ITL cap.
import { existsSync } from "node:fs";
import { copyFile, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { loadModel, type Model } from "../src/index.js";
import { ModelLoadError, ProviderUnavailableError } from "../src/errors.js";
import { hfDir, repoRoot } from "./helpers/paths.js";

const fakes = join(repoRoot, "build", "fake_tensorrt");
const fakeNvinfer = join(fakes, "libnvinfer.so.10");
const fakeProvider = join(fakes, "neoserve_tensorrt.so");

const manifest = (over: Record<string, unknown> = {}) =>
  JSON.stringify({ format: "neoserve-tensorrt", formatVersion: 1, engine: "model-fp16.plan", precision: "fp16", tensorrtVersion: "10.8.0", ...over });

/** An engine directory around the tiny model's config and tokenizer; `checkpoint` copies its weights beside. */
async function engineDir(checkpoint: boolean, over: Record<string, unknown> = {}): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "neoserve-trt-"));
  const files = ["config.json", "tokenizer.json", "tokenizer_config.json", "generation_config.json"];
  if (checkpoint) files.push("model.safetensors");
  for (const f of files) await copyFile(join(hfDir("tiny"), f), join(dir, f));
  await writeFile(join(dir, "model-fp16.plan"), "a plan file only real TensorRT could read");
  await writeFile(join(dir, "neoserve.json"), manifest(over));
  return dir;
}

const envKeys = ["NEOSERVE_NVINFER_LIBRARY", "NEOSERVE_TENSORRT_PROVIDER", "FAKE_NVINFER_VERSION"] as const;
const saved = Object.fromEntries(envKeys.map((k) => [k, process.env[k]]));
function env(values: Partial<Record<(typeof envKeys)[number], string>>): void {
  for (const k of envKeys) delete process.env[k];
  Object.assign(process.env, values);
}
const dirs: string[] = [];
const models: Model[] = [];
afterEach(async () => {
  await Promise.all(models.splice(0).map((m) => m.dispose()));
  for (const k of envKeys) if (saved[k] === undefined) delete process.env[k];
  else process.env[k] = saved[k];
});
afterAll(async () => {
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});
async function dir(checkpoint: boolean, over?: Record<string, unknown>): Promise<string> {
  const d = await engineDir(checkpoint, over);
  dirs.push(d);
  return d;
}

describe("TensorRT engine directories without TensorRT", () => {
  it("names the missing libnvinfer.so.10 with a typed provider_unavailable error", async () => {
    env({ NEOSERVE_NVINFER_LIBRARY: "/nonexistent/libnvinfer.so.10" });
    const err = await loadModel(await dir(false), { backend: "tensorrt" }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ProviderUnavailableError);
    expect((err as ProviderUnavailableError).code).toBe("provider_unavailable");
    expect((err as Error).message).toMatch(/TensorRT 10 is not installed .*libnvinfer\.so\.10/);
  });

  it("reports an engine built by another TensorRT version, with both versions and the fix", async () => {
    env({ NEOSERVE_NVINFER_LIBRARY: fakeNvinfer, FAKE_NVINFER_VERSION: "100900" });
    await expect(loadModel(await dir(false), { backend: "tensorrt" })).rejects.toThrow(
      /built with TensorRT 10\.8\.0 but libnvinfer\.so\.10 is 10\.9\.0: rebuild the engine .*--versionCompatible/,
    );
    // Built version-compatible: a later runtime gets past the version check (to the missing provider here).
    env({ NEOSERVE_NVINFER_LIBRARY: fakeNvinfer, FAKE_NVINFER_VERSION: "100900", NEOSERVE_TENSORRT_PROVIDER: "/nonexistent/neoserve_tensorrt.so" });
    await expect(loadModel(await dir(false, { versionCompatible: true }), { backend: "tensorrt" })).rejects.toThrow(/this build has no TensorRT provider/);
  });

  it("says when this build has no TensorRT provider, and when the provider finds no GPU", async () => {
    env({ NEOSERVE_NVINFER_LIBRARY: fakeNvinfer, NEOSERVE_TENSORRT_PROVIDER: "/nonexistent/neoserve_tensorrt.so" });
    await expect(loadModel(await dir(false), { backend: "tensorrt" })).rejects.toThrow(/build-tensorrt\.sh/);
    env({ NEOSERVE_NVINFER_LIBRARY: fakeNvinfer, NEOSERVE_TENSORRT_PROVIDER: fakeProvider });
    await expect(loadModel(await dir(false), { backend: "tensorrt", device: "GPU-8f1c" })).rejects.toThrow(ProviderUnavailableError);
    await expect(loadModel(await dir(false), { backend: "tensorrt" })).rejects.toThrow(/no CUDA device/);
  });

  it("falls back under backend auto to the checkpoint beside the engine, logging why", async () => {
    env({ NEOSERVE_NVINFER_LIBRARY: fakeNvinfer, NEOSERVE_TENSORRT_PROVIDER: fakeProvider });
    const logged: string[] = [];
    const model = await loadModel(await dir(true), { backend: "auto", threads: 1, log: (m) => logged.push(m) });
    models.push(model);
    expect(model.info.backend).toBe("cpu");
    expect(model.info.fallbackReason).toMatch(/no CUDA device/);
    expect(logged).toHaveLength(1);
    expect(logged[0]).toMatch(/runs on the cpu: provider unavailable: no CUDA device/);
    const { tokens, finishReason } = await model.generate({ prompt: "Hello", maxTokens: 4, temperature: 0, ignoreEos: true }).result;
    expect(finishReason).toBe("length");
    expect(tokens).toHaveLength(4);
    // Without a checkpoint "auto" has nothing to fall back on: the TensorRT error, with that said.
    await expect(loadModel(await dir(false), { backend: "auto" })).rejects.toThrow(/found no checkpoint beside the engine/);
  });

  it("rejects a broken manifest under every backend, naming the file and field", async () => {
    for (const backend of ["auto", "tensorrt"] as const) {
      const err = await loadModel(await dir(true, { precision: "fp4" }), { backend }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ModelLoadError);
      expect((err as Error).message).toMatch(/neoserve\.json: "precision" must be "fp16" or "int8"/);
    }
    await expect(loadModel(hfDir("tiny"), { backend: "tensorrt" })).rejects.toThrow(/the tensorrt backend runs engine directories/);
  });
});

// The real thing: only where an engine, TensorRT and a GPU exist.
const engine = process.env.NEOSERVE_TEST_ENGINE_DIR;
const realProvider = join(repoRoot, "build", "Release", "neoserve_tensorrt.so");
const whyNot = !engine
  ? "NEOSERVE_TEST_ENGINE_DIR is not set (build one with models/tensorrt/build-tiny.sh on a machine with TensorRT and a GPU)"
  : !existsSync(realProvider)
    ? `${realProvider} is not built (bash scripts/build-tensorrt.sh)`
    : undefined;
if (whyNot) console.warn(`tensorrt.test.ts: skipping the TensorRT engine tests: ${whyNot}`);

describe.skipIf(whyNot !== undefined)("a TensorRT engine on a GPU, against the CPU engine on the same weights", () => {
  let trt: Model;
  let cpu: Model;
  beforeAll(async () => {
    trt = await loadModel(engine!, { backend: "tensorrt" });
    cpu = await loadModel(hfDir("tiny"), { backend: "cpu", precision: "f32" });
  });
  afterAll(async () => {
    await trt?.dispose();
    await cpu?.dispose();
  });
  const prompts = ["Hello", "The quick brown fox jumps over", "1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20", "a"];

  it("gives the CPU engine's greedy tokens, with logits within FP16 tolerance", async () => {
    expect(trt.info.backend).toBe("tensorrt");
    for (const prompt of prompts) {
      const request = { prompt, maxTokens: 16, temperature: 0, ignoreEos: true, returnLogits: true };
      const [a, b] = await Promise.all([trt.generate(request).result, cpu.generate(request).result]);
      expect(a.tokens).toEqual(b.tokens);
      for (let s = 0; s < a.logits!.length; s++) {
        const x = a.logits![s]!, y = b.logits![s]!;
        let range = 0, worst = 0;
        for (let i = 0; i < y.length; i++) {
          range = Math.max(range, Math.abs(y[i]!));
          worst = Math.max(worst, Math.abs(x[i]! - y[i]!));
        }
        expect(worst / range).toBeLessThan(0.05);
      }
    }
  });

  it("batches continuously: 32 concurrent requests give exactly their solo tokens", async () => {
    const solo = [];
    for (let i = 0; i < 32; i++) solo.push((await trt.generate({ tokens: [i + 100, 11, 12], maxTokens: 12, temperature: 0, ignoreEos: true }).result).tokens);
    const together = await Promise.all(
      Array.from({ length: 32 }, (_, i) => trt.generate({ tokens: [i + 100, 11, 12], maxTokens: 12, temperature: 0, ignoreEos: true }).result),
    );
    expect(together.map((r) => r.tokens)).toEqual(solo);
  });

  it("keeps decode steps under the ITL cap while a long prompt is chunked beside them", async () => {
    const capped = await loadModel(engine!, { backend: "tensorrt", scheduler: { itlCapMs: 20 } });
    try {
      const decodes = Array.from({ length: 8 }, (_, i) => capped.generate({ tokens: [i + 5], maxTokens: 64, temperature: 0, ignoreEos: true }));
      const long = capped.generate({ tokens: Array.from({ length: 800 }, (_, i) => (i * 31) % 50000), maxTokens: 4, temperature: 0, ignoreEos: true });
      await Promise.all([...decodes.map((d) => d.result), long.result]);
      expect(capped.stats().latency.interTokenMs.max!).toBeLessThan(20 * 1.5);
    } finally {
      await capped.dispose();
    }
  });
});
