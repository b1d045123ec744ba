// Continuous batching: aggregate decode tokens/s with 1 and 16 concurrent
// streams, neoserve against llama.cpp serving the same streams with its own
// multi-sequence batching (node-llama-cpp, one context with N sequences), on
// the same GGUF, same threads. Each engine runs in its own child process.
//
//   npm run bench:batching [-- --threads 2 --tokens 64]
import { execFileSync } from "node:child_process";
import { cpus } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { getLlama, LlamaLogLevel, type Token } from "node-llama-cpp";
import { makeModel } from "../models/make-models.js";
import { recordResult, runIfMain } from "./record.js";
import { loadModel } from "../src/index.js";
import { packageRoot } from "../src/addon.js";
import { benchTokens } from "./llama-cpp-baseline.js";

const PROMPT = 16;

/** Aggregate generated tokens per second over `streams` concurrent greedy requests. */
async function neoserve(gguf: string, streams: number, tokens: number, threads: number): Promise<number> {
  const model = await loadModel(gguf, { backend: "cpu", threads, scheduler: { maxBatchSize: Math.max(streams, 1) } });
  try {
    await model.generate({ tokens: benchTokens(PROMPT, 99), maxTokens: 4, temperature: 0 }).result; // warm-up
    const t0 = performance.now();
    const results = await Promise.all(
      Array.from({ length: streams }, (_, i) =>
        model.generate({ tokens: benchTokens(PROMPT, i + 1), maxTokens: tokens, temperature: 0, ignoreEos: true }).result,
      ),
    );
    const seconds = (performance.now() - t0) / 1000;
    return results.reduce((n, r) => n + r.tokens.length, 0) / seconds;
  } finally {
    await model.dispose();
  }
}

/** The scheduler's own time and sampling time, each as a share of the provider step time, at `streams` concurrent streams. */
async function schedulerShare(gguf: string, streams: number, tokens: number, threads: number): Promise<{ schedule: number; sample: number }> {
  const model = await loadModel(gguf, { backend: "cpu", threads, scheduler: { maxBatchSize: streams, maxBatchTokens: 2048 } });
  try {
    await Promise.all(
      Array.from({ length: streams }, (_, i) =>
        model.generate({ tokens: benchTokens(PROMPT, i + 1), maxTokens: tokens, temperature: 0.8, topP: 0.95, seed: i, ignoreEos: true }).result,
      ),
    );
    const s = model.stats();
    return { schedule: s.scheduleMsTotal / s.stepMsTotal, sample: s.sampleMsTotal / s.stepMsTotal };
  } finally {
    await model.dispose();
  }
}

async function llamaCpp(gguf: string, streams: number, tokens: number, threads: number): Promise<number> {
  const llama = await getLlama({ gpu: false, build: "never", usePrebuiltBinaries: true, skipDownload: true, progressLogs: false, logLevel: LlamaLogLevel.error, maxThreads: threads });
  const model = await llama.loadModel({ modelPath: gguf, gpuLayers: 0 });
  const context = await model.createContext({
    contextSize: streams * (PROMPT + tokens + 16),
    sequences: streams,
    batchSize: Math.max(512, streams * PROMPT),
    threads: { ideal: threads, min: threads },
    flashAttention: false,
  });
  try {
    const run = async (i: number) => {
      const seq = context.getSequence();
      let n = 0;
      for await (const _ of seq.evaluate(benchTokens(PROMPT, i + 1) as Token[], { temperature: 0, yieldEogToken: true })) {
        if (++n >= tokens) break;
      }
      seq.dispose();
      return n;
    };
    const t0 = performance.now();
    const counts = await Promise.all(Array.from({ length: streams }, (_, i) => run(i)));
    return counts.reduce((a, b) => a + b, 0) / ((performance.now() - t0) / 1000);
  } finally {
    await context.dispose();
    await model.dispose();
  }
}

async function child(argv: string[]): Promise<void> {
  const [engine, gguf, streams, tokens, threads] = argv;
  const f = engine === "neoserve" ? neoserve : engine === "share" ? schedulerShare : llamaCpp;
  const value: unknown = await f(gguf!, Number(streams), Number(tokens), Number(threads));
  process.stdout.write(JSON.stringify({ value }) + "\n");
}

async function main(argv: string[]): Promise<void> {
  const opt = (name: string, d: number) => (argv.includes(name) ? Number(argv[argv.indexOf(name) + 1]) : d);
  const threads = opt("--threads", 2);
  const tokens = opt("--tokens", 64);
  const root = packageRoot();
  await makeModel("smol", join(root, "models", "generated"));
  const here = fileURLToPath(import.meta.url);
  const measure = <T = number>(engine: string, gguf: string, streams: number): T =>
    JSON.parse(
      execFileSync(process.execPath, [here, "--child", engine, gguf, String(streams), String(tokens), String(threads)], { encoding: "utf8" })
        .trim()
        .split("\n")
        .pop()!,
    ).value as T;

  const lines = [
    `## ${new Date().toISOString().slice(0, 16)} — batching, SmolLM2-135M shape, ${threads} threads, ${tokens} tokens per stream`,
    "",
    `Machine: ${cpus()[0]?.model ?? "?"}, ${cpus().length} cores. Command: \`npm run bench:batching -- --threads ${threads} --tokens ${tokens}\`.`,
    "",
    "| weights | streams | neoserve tok/s | llama.cpp tok/s | neoserve / llama.cpp | neoserve N-stream / 1-stream |",
    "|---|---|---|---|---|---|",
  ];
  for (const kind of ["f32", "q8_0"]) {
    const gguf = join(root, "models", "generated", "smol", `smol-${kind}.gguf`);
    let single = 0;
    for (const streams of [1, 16]) {
      const ours = measure("neoserve", gguf, streams);
      const theirs = measure("llama", gguf, streams);
      if (streams === 1) single = ours;
      lines.push(`| ${kind} | ${streams} | ${ours.toFixed(1)} | ${theirs.toFixed(1)} | ${(ours / theirs).toFixed(2)}× | ${(ours / single).toFixed(2)}× |`);
      console.log(lines[lines.length - 1]);
    }
  }
  const q8 = join(root, "models", "generated", "smol", "smol-q8_0.gguf");
  const share = measure<{ schedule: number; sample: number }>("share", q8, 64);
  lines.push(
    "",
    `At batch 64 on the Q8_0 model (64 streams, temperature 0.8, top-p 0.95), as shares of the provider step time ` +
      `(model.stats(): scheduleMsTotal, sampleMsTotal over stepMsTotal): the scheduler's own work per iteration ` +
      `${(share.schedule * 100).toFixed(2)}%; sampling over the 50,259-token vocabulary ${(share.sample * 100).toFixed(1)}%.`,
  );
  console.log(lines[lines.length - 1]);
  recordResult("batching", "Continuous batching: aggregate decode throughput", lines);
  console.log(lines.join("\n"));
}

runIfMain(import.meta.url, (argv) => (argv[0] === "--child" ? child(argv.slice(1)) : main(argv)));
