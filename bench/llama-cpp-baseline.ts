// llama.cpp baseline (node-llama-cpp's prebuilt CPU binary) for the same GGUF our engine runs:
//  - prefill: tokens/s evaluating a `promptTokens`-token prompt from an empty context (one batch)
//  - decode: single-stream tokens/s generating `decodeTokens` greedy tokens after a short prompt
//
//   node dist/bench/llama-cpp-baseline.js <model.gguf> [--threads 2] [--prompt 512] [--decode 128] [--json]
import { resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { getLlama, LlamaLogLevel, type Token } from "node-llama-cpp";

export interface LlamaCppBaselineOptions {
  /** threads for llama.cpp (default 2) */
  threads?: number;
  /** prompt length for the prefill measurement (default 512) */
  promptTokens?: number;
  /** tokens generated for the decode measurement (default 128) */
  decodeTokens?: number;
  /** prompt before the decode measurement (default 16) */
  decodePromptTokens?: number;
  /** timed prefill repetitions; the best is kept (default 2, after one warm-up). Timings on a shared machine are noisy. */
  prefillRepeats?: number;
  /** token ids are drawn from [0, maxTokenId) (default 50000) */
  maxTokenId?: number;
}

export interface LlamaCppBaselineResult {
  decodeTokS: number;
  prefillTokS: number;
  /** details */
  threads: number;
  promptTokens: number;
  decodeTokens: number;
  prefillMs: number;
  decodeMs: number;
  modelPath: string;
}

/** Deterministic pseudo-random token ids (an LCG), so runs are comparable. */
export function benchTokens(n: number, seed = 1, maxTokenId = 50000): number[] {
  let s = seed >>> 0;
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out.push(s % maxTokenId);
  }
  return out;
}

export async function llamaCppBaseline(modelPath: string, opts: LlamaCppBaselineOptions = {}): Promise<LlamaCppBaselineResult> {
  const threads = opts.threads ?? 2;
  const promptTokens = opts.promptTokens ?? 512;
  const decodeTokens = opts.decodeTokens ?? 128;
  const decodePrompt = opts.decodePromptTokens ?? 16;
  const repeats = Math.max(1, opts.prefillRepeats ?? 2);
  const maxTokenId = opts.maxTokenId ?? 50000;

  const llama = await getLlama({
    gpu: false,
    build: "never",
    usePrebuiltBinaries: true,
    skipDownload: true,
    progressLogs: false,
    logLevel: LlamaLogLevel.error,
    maxThreads: threads,
  });
  const model = await llama.loadModel({ modelPath, gpuLayers: 0, useMmap: true });
  const contextSize = Math.max(promptTokens, decodePrompt + decodeTokens) + 16;
  const context = await model.createContext({
    contextSize,
    batchSize: Math.max(promptTokens, decodePrompt),
    threads: { ideal: threads, min: threads },
    sequences: 1,
    flashAttention: false,
  });
  try {
    const seq = context.getSequence();

    // Prefill: whole prompt in one batch; one warm-up, then the best of `repeats`.
    const prompt = benchTokens(promptTokens, 1, maxTokenId) as Token[];
    let prefillMs = Infinity;
    for (let r = 0; r <= repeats; r++) {
      await seq.clearHistory();
      const t0 = performance.now();
      await seq.evaluateWithoutGeneratingNewTokens(prompt);
      const dt = performance.now() - t0;
      if (r > 0) prefillMs = Math.min(prefillMs, dt);
    }

    // Decode: short prompt, then `decodeTokens` greedy tokens through evaluate()'s generator (node-llama-cpp's own
    // decode loop; separate per-token calls add a large per-call overhead). The clock starts at the first token, so
    // the prompt is not counted. EOG tokens are yielded and generation goes on.
    await seq.clearHistory();
    const dp = benchTokens(decodePrompt, 2, maxTokenId) as Token[];
    let n = 0;
    let t0 = 0;
    for await (const _tok of seq.evaluate(dp, { temperature: 0, yieldEogToken: true })) {
      if (n === 0) t0 = performance.now();
      if (++n > decodeTokens) break;
    }
    if (n <= decodeTokens) throw new Error(`llama.cpp stopped after ${n} tokens`);
    const decodeMs = performance.now() - t0;

    return {
      decodeTokS: (decodeTokens * 1000) / decodeMs,
      prefillTokS: (promptTokens * 1000) / prefillMs,
      threads,
      promptTokens,
      decodeTokens,
      prefillMs,
      decodeMs,
      modelPath,
    };
  } finally {
    await context.dispose();
    await model.dispose();
  }
}

async function main(argv: string[]): Promise<number> {
  const opts: LlamaCppBaselineOptions = {};
  let path: string | undefined;
  let json = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const num = (): number => Number(argv[++i]);
    if (a === "--threads") opts.threads = num();
    else if (a === "--prompt") opts.promptTokens = num();
    else if (a === "--decode") opts.decodeTokens = num();
    else if (a === "--json") json = true;
    else if (!a.startsWith("-")) path = a;
    else {
      process.stderr.write(`unknown argument ${a}\n`);
      return 2;
    }
  }
  if (!path) {
    process.stderr.write("usage: node dist/bench/llama-cpp-baseline.js <model.gguf> [--threads N] [--prompt N] [--decode N] [--json]\n");
    return 2;
  }
  const r = await llamaCppBaseline(path, opts);
  if (json) process.stdout.write(JSON.stringify({ ...r, peakRssMiB: process.resourceUsage().maxRSS / 1024 }) + "\n");
  else {
    process.stdout.write(
      `llama.cpp ${path} (${r.threads} threads): prefill ${r.prefillTokS.toFixed(1)} tok/s (${r.promptTokens} tokens), ` +
        `decode ${r.decodeTokS.toFixed(1)} tok/s (${r.decodeTokens} tokens)\n`,
    );
  }
  return 0;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (e: unknown) => {
      process.stderr.write(`llama-cpp-baseline: ${e instanceof Error ? e.message : String(e)}\n`);
      process.exit(1);
    },
  );
}
