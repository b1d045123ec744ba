// neoserve's side of the CPU benchmark, measured exactly as bench/llama-cpp-baseline.ts
// measures llama.cpp: prefill of a 512-token prompt in one step (best of N after a
// warm-up) and single-stream greedy decode, clock started at the first token.
//
//   node dist/bench/neoserve-engine.js <model dir or .gguf> [--precision int8] [--threads 2] [--json]
import { resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { loadModel } from "../src/index.js";
import { benchTokens } from "./llama-cpp-baseline.js";

export interface EngineBenchOptions {
  threads?: number;
  precision?: "auto" | "f32" | "int8";
  promptTokens?: number;
  decodeTokens?: number;
  decodePromptTokens?: number;
  prefillRepeats?: number;
  kvCacheDtype?: "f32" | "f16";
}

export interface EngineBenchResult {
  decodeTokS: number;
  prefillTokS: number;
  prefillMs: number;
  decodeMs: number;
  precision: string;
  device: string;
  /** Peak resident set of this process, MiB. */
  peakRssMiB: number;
  /** The weights the engine holds (info.memory.weightsBytes): what a decode step reads. */
  weightsBytes: number;
}

export async function neoserveBench(modelPath: string, opts: EngineBenchOptions = {}): Promise<EngineBenchResult> {
  const promptTokens = opts.promptTokens ?? 512;
  const decodeTokens = opts.decodeTokens ?? 128;
  const repeats = Math.max(1, opts.prefillRepeats ?? 2);
  const model = await loadModel(modelPath, {
    backend: "cpu",
    precision: opts.precision ?? "auto",
    threads: opts.threads ?? 2,
    scheduler: { maxBatchTokens: Math.max(512, promptTokens), maxBatchSize: 1, ...(opts.kvCacheDtype ? { kvCacheDtype: opts.kvCacheDtype } : {}) },
  });
  try {
    const prompt = benchTokens(promptTokens, 1);
    let prefillMs = Infinity;
    for (let r = 0; r <= repeats; r++) {
      const res = await model.generate({ tokens: prompt, maxTokens: 1, temperature: 0, ignoreEos: true }).result;
      if (r > 0) prefillMs = Math.min(prefillMs, res.timings.timeToFirstTokenMs!);
    }
    const dp = benchTokens(opts.decodePromptTokens ?? 16, 2);
    const res = await model.generate({ tokens: dp, maxTokens: decodeTokens + 1, temperature: 0, ignoreEos: true }).result;
    if (res.tokens.length !== decodeTokens + 1) throw new Error(`decode stopped after ${res.tokens.length} tokens`);
    const decodeMs = res.timings.totalMs - res.timings.timeToFirstTokenMs!;
    return {
      decodeTokS: (decodeTokens * 1000) / decodeMs,
      prefillTokS: (promptTokens * 1000) / prefillMs,
      prefillMs,
      decodeMs,
      precision: model.info.precision,
      device: model.info.device,
      peakRssMiB: process.resourceUsage().maxRSS / 1024,
      weightsBytes: model.info.memory.weightsBytes,
    };
  } finally {
    await model.dispose();
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const argv = process.argv.slice(2);
  const opt = (name: string) => {
    const i = argv.indexOf(name);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const path = argv.find((a, i) => !a.startsWith("-") && !argv[i - 1]?.startsWith("--"));
  if (!path) {
    process.stderr.write("usage: neoserve-engine.js <model> [--precision int8] [--threads N] [--json]\n");
    process.exit(2);
  }
  neoserveBench(path, {
    threads: Number(opt("--threads") ?? 2),
    precision: (opt("--precision") as EngineBenchOptions["precision"]) ?? "auto",
  }).then(
    (r) => {
      process.stdout.write(argv.includes("--json") ? JSON.stringify(r) + "\n" : `${JSON.stringify(r, null, 2)}\n`);
      process.exit(0);
    },
    (e: unknown) => {
      process.stderr.write(`neoserve-engine: ${e instanceof Error ? e.message : String(e)}\n`);
      process.exit(1);
    },
  );
}
