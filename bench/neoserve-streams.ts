// neoserve's side of llama-batched-bench: N streams, each a prompt of `pp`
// tokens then `tg` greedy tokens, all submitted at once. Reported as
// llama-batched-bench reports S_TG: the streams' generated tokens after their
// first over the time from the last first token to the last token.
//
//   node dist/bench/neoserve-streams.js <model> [--streams 16] [--pp 32] [--tg 32] [--threads 2]
import { resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { loadModel } from "../src/index.js";
import { benchTokens } from "./llama-cpp-baseline.js";

export interface StreamsResult {
  streams: number;
  decodeTokS: number;
  device: string;
}

export async function neoserveStreams(modelPath: string, streams: number, pp: number, tg: number, threads: number): Promise<StreamsResult> {
  const model = await loadModel(modelPath, {
    backend: "cpu",
    threads,
    scheduler: { maxBatchSize: streams, maxBatchTokens: Math.max(512, streams * pp) },
  });
  try {
    const run = async () => {
      const firsts: number[] = [];
      const ends: number[] = [];
      await Promise.all(
        Array.from({ length: streams }, async (_, i) => {
          const s = model.generate({ tokens: benchTokens(pp, 100 + i), maxTokens: tg, temperature: 0, ignoreEos: true });
          let first = true;
          for await (const _t of s) {
            if (first) firsts.push(performance.now());
            first = false;
          }
          ends.push(performance.now());
          if ((await s.result).tokens.length !== tg) throw new Error("a stream stopped early");
        }),
      );
      return (streams * (tg - 1) * 1000) / (Math.max(...ends) - Math.max(...firsts));
    };
    await run(); // warm
    return { streams, decodeTokS: await run(), device: model.info.device };
  } finally {
    await model.dispose();
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const argv = process.argv.slice(2);
  const opt = (name: string, d: number) => {
    const i = argv.indexOf(name);
    return i >= 0 ? Number(argv[i + 1]) : d;
  };
  const path = argv.find((a, i) => !a.startsWith("-") && !argv[i - 1]?.startsWith("--"));
  if (!path) {
    process.stderr.write("usage: neoserve-streams.js <model> [--streams 16] [--pp 32] [--tg 32] [--threads 2]\n");
    process.exit(2);
  }
  neoserveStreams(path, opt("--streams", 16), opt("--pp", 32), opt("--tg", 32), opt("--threads", 2)).then(
    (r) => {
      process.stdout.write(JSON.stringify(r) + "\n");
      process.exit(0);
    },
    (e: unknown) => {
      process.stderr.write(`neoserve-streams: ${e instanceof Error ? e.message : String(e)}\n`);
      process.exit(1);
    },
  );
}
