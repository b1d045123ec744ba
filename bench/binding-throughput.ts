// Tokens delivered to JS per second through the binding, with the synthetic
// provider (no model work), across many concurrent streams: what the scheduler,
// sampling and the event path cost on their own.
//
//   npm run bench:binding [-- --streams 256 --tokens 2000]
import { cpus } from "node:os";
import { join } from "node:path";
import { addon, packageRoot } from "../src/addon.js";
import { loadModel } from "../src/index.js";
import { makeModel } from "../models/make-models.js";
import { recordResult, runIfMain } from "./record.js";

/** Raw binding: count tokens as event batches arrive in JS. */
async function rawRate(streams: number, tokens: number): Promise<{ tokS: number; batches: number }> {
  let received = 0;
  let finished = 0;
  let batches = 0;
  let done!: () => void;
  const all = new Promise<void>((r) => (done = r));
  const tokenEvent = addon().finishReasons.indexOf("none"); // an event that carries a token and ends nothing
  const model = await addon().loadModel(
    "synthetic",
    { backend: "synthetic", threads: 1, maxBatchSize: streams, maxBatchTokens: streams * 4 },
    (ids, toks, finishes) => {
      batches++;
      for (let i = 0; i < ids.length; i++) {
        if (toks[i]! >= 0) received++;
        if (finishes[i] !== tokenEvent && ++finished === streams) done();
      }
    },
  );
  try {
    const t0 = performance.now();
    for (let i = 0; i < streams; i++)
      model.submit({
        tokens: Int32Array.of(i % 256),
        maxTokens: tokens,
        temperature: 0,
        seed: i,
      });
    await all;
    return { tokS: (received * 1000) / (performance.now() - t0), batches };
  } finally {
    await model.dispose();
  }
}

/** Public API: TokenStreams with incremental detokenization, consumed by for await. */
async function streamRate(streams: number, tokens: number, tokenizer: string): Promise<number> {
  const model = await loadModel("synthetic", {
    backend: "synthetic",
    tokenizer,
    scheduler: { maxBatchSize: streams, maxBatchTokens: streams * 4 },
  });
  try {
    const t0 = performance.now();
    const counts = await Promise.all(
      Array.from({ length: streams }, async (_, i) => {
        let n = 0;
        for await (const _tok of model.generate({ tokens: [i % 256], maxTokens: tokens, temperature: 0, ignoreEos: true })) n++;
        return n;
      }),
    );
    return (counts.reduce((a, b) => a + b, 0) * 1000) / (performance.now() - t0);
  } finally {
    await model.dispose();
  }
}

async function main(argv: string[]): Promise<void> {
  const opt = (name: string, d: number) => (argv.includes(name) ? Number(argv[argv.indexOf(name) + 1]) : d);
  const streams = opt("--streams", 256);
  const tokens = opt("--tokens", 2000);
  const root = packageRoot();
  const tiny = await makeModel("tiny", join(root, "models", "generated"));
  const raw = await rawRate(streams, tokens);
  const api = await streamRate(streams, Math.min(tokens, 500), tiny.hfDir);
  const lines = [
    `## ${new Date().toISOString().slice(0, 16)} — binding throughput, synthetic provider, ${streams} streams`,
    "",
    `Machine: ${cpus()[0]?.model ?? "?"}, ${cpus().length} cores. Command: \`npm run bench:binding -- --streams ${streams} --tokens ${tokens}\`.`,
    "",
    "| path | tokens/s |",
    "|---|---|",
    `| raw binding (event batches into JS, ${tokens} tokens per stream, ${raw.batches} batches) | ${raw.tokS.toFixed(0)} |`,
    `| public API (TokenStream + detokenizer, for await, ${Math.min(tokens, 500)} tokens per stream) | ${api.toFixed(0)} |`,
  ];
  recordResult("binding-throughput", "Binding throughput", lines);
  console.log(lines.join("\n"));
}

runIfMain(import.meta.url, main);
