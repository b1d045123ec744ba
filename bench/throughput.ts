// Throughput against llama.cpp's own tools, on the same GGUF files in one run:
// prompt 512 and one-stream decode against llama-bench, 16-stream aggregate
// decode against llama-batched-bench, and one-stream decode as a share of the
// memory roofline (read bandwidth measured here / the weight bytes a token reads).
//
//   npm run bench:throughput [-- --threads 2 --out bench/results/throughput.md]
//
// Needs the anchors (scripts/build-llama-cpp.sh) and the native probes
// (cmake -DNEOSERVE_BENCH=ON into build-bench); it builds both when missing.
// Makes the llama1b preset (Q8_0 and BF16 GGUF, ~3.5 GB) and smol.
import { statSync } from "node:fs";
import { join } from "node:path";
import { benchSetup, lastJson, llamaBatched, llamaBench, machine, node, probes, record, run } from "./anchors.js";

async function main(): Promise<void> {
  const { threads, outFile, modelsDir, q8 } = await benchSetup("throughput");

  // This machine's bandwidth drifts between runs: each one-stream measurement is paired with a bandwidth
  // probe just before it, and the roofline share is the median of ROUNDS such pairs.
  const ROUNDS = 3;
  const pairs: { bandwidth: number; run: { decodeTokS: number; prefillTokS: number; device: string } }[] = [];
  for (let i = 0; i < ROUNDS; i++) {
    const bw = lastJson(run(join(probes, "bench_bandwidth"), [String(threads), "1024"]))["readGBs"] as number;
    pairs.push({ bandwidth: bw, run: node("neoserve-engine.js", [q8, "--threads", String(threads), "--json"]) as (typeof pairs)[number]["run"] });
  }
  const median = <T>(xs: T[], key: (x: T) => number): T => [...xs].sort((a, b) => key(a) - key(b))[Math.floor(xs.length / 2)]!;
  const weightGB = statSync(q8).size / 1e9;
  const share = (p: (typeof pairs)[number]) => p.run.decodeTokS / (p.bandwidth / weightGB);
  const mid = median(pairs, share);
  const bandwidth = mid.bandwidth;
  const ours1 = { ...mid.run, prefillTokS: median(pairs, (p) => p.run.prefillTokS).run.prefillTokS };
  const ours16 = node("neoserve-streams.js", [q8, "--streams", "16", "--threads", String(threads)]) as { decodeTokS: number };
  const theirs1 = llamaBench(q8, threads);
  const theirs16 = llamaBatched(q8, threads, 16);
  const roofline = bandwidth / weightGB;
  console.log({ bandwidth, roofline, ours1, ours16, theirs1, theirs16 });

  const prefill: { weights: string; ours: number; theirs: number }[] = [];
  for (const kind of ["f32", "bf16"]) {
    const gguf = join(modelsDir, "smol", `smol-${kind}.gguf`);
    const ours = node("neoserve-engine.js", [gguf, "--threads", String(threads), "--json"]) as { prefillTokS: number };
    prefill.push({ weights: kind.toUpperCase(), ours: ours.prefillTokS, theirs: llamaBench(gguf, threads).prefillTokS });
    console.log(prefill[prefill.length - 1]);
  }

  const f = (x: number) => x.toFixed(1);
  const r = (a: number, b: number) => `${(a / b).toFixed(2)}×`;
  const lines = [
    `## ${new Date().toISOString().slice(0, 16)} — ${threads} threads`,
    "",
    `${machine()}; neoserve ${ours1.device}. ` +
      `Command: \`npm run bench:throughput -- --threads ${threads}\`. One-stream neoserve: the median of ${ROUNDS} runs, each right after a read-bandwidth probe ` +
      `(build-bench/bench_bandwidth, ${threads} threads, 1 GiB: ${pairs.map((p) => f(p.bandwidth)).join(", ")} GB/s; ` +
      `shares of the roofline ${pairs.map((p) => `${(100 * share(p)).toFixed(0)}%`).join(", ")}); the decode row is the median run's.`,
    "",
    "1B-class Q8_0 (make-models preset llama1b: Llama-3.2-1B's shape with a 50,257-token vocabulary; the GGUF is " +
      `${weightGB.toFixed(2)} GB, so the roofline is ${f(roofline)} tok/s):`,
    "",
    "| measure | neoserve | llama.cpp | ratio | note |",
    "|---|---|---|---|---|",
    `| prompt 512, tok/s | ${f(ours1.prefillTokS)} | ${f(theirs1.prefillTokS)} (llama-bench) | ${r(ours1.prefillTokS, theirs1.prefillTokS)} | |`,
    `| decode, 1 stream, tok/s | ${f(ours1.decodeTokS)} | ${f(theirs1.decodeTokS)} (llama-bench) | ${r(ours1.decodeTokS, theirs1.decodeTokS)} | ${((100 * ours1.decodeTokS) / roofline).toFixed(0)}% of the roofline |`,
    `| decode, 16 streams aggregate, tok/s | ${f(ours16.decodeTokS)} | ${f(theirs16)} (llama-batched-bench S_TG) | ${r(ours16.decodeTokS, theirs16)} | ${r(ours16.decodeTokS, ours1.decodeTokS)} one stream |`,
    "",
    "SmolLM2-135M shape, prompt 512 (one step), against llama-bench:",
    "",
    "| weights | neoserve tok/s | llama.cpp tok/s | ratio |",
    "|---|---|---|---|",
    ...prefill.map((p) => `| ${p.weights} | ${f(p.ours)} | ${f(p.theirs)} | ${r(p.ours, p.theirs)} |`),
    "",
  ];
  record(outFile, "Throughput against llama.cpp's own tools", lines);
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
