// GGUF's quantized types against llama.cpp's own tools, on the same files in
// one run: the 1B-class Q4_K_M (prompt 512, one-stream decode as a share of the
// measured memory roofline, 16 streams), Q4_0 and Q6_K decode on the
// SmolLM2-135M shape, and cold start (process start to first token, and peak
// RSS) for the 1B-class Q8_0 and Q4_K_M. The quantized files are made by
// llama.cpp's llama-quantize.
//
//   npm run bench:quantized [-- --threads 2 --out bench/results/quantized.md]
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { benchSetup, here, lastJson, llamaBatched, llamaBench, llamaQuantize, machine, node, probes, record, run, tools } from "./anchors.js";

const ROUNDS = 3;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** Wall seconds and peak RSS (MiB) of a process, from GNU time. */
function timed(file: string, args: string[]): { seconds: number; rssMiB: number } {
  const r = spawnSync("/usr/bin/time", ["-f", "TIMED %e %M", file, ...args], { encoding: "utf8", stdio: ["ignore", "ignore", "pipe"] });
  const [, s, kb] = /TIMED ([\d.]+) (\d+)/.exec(r.stderr) ?? [];
  if (r.status !== 0 || !s) throw new Error(`${file} ${args.join(" ")} failed: ${r.stderr.slice(-2000)}`);
  return { seconds: Number(s), rssMiB: Number(kb) / 1024 };
}

type Timed = { seconds: number; rssMiB: number };

// neoserve converting at load, neoserve with its weight cache (written by the uncounted first round), and llama.cpp, in turns.
function coldStart(gguf: string, threads: number): { ours: Timed; cached: Timed; theirs: Timed } {
  const ours: Timed[] = [];
  const cached: Timed[] = [];
  const theirs: Timed[] = [];
  const cache = mkdtempSync(join(tmpdir(), "neoserve-weight-cache-"));
  try {
    for (let i = 0; i <= ROUNDS; i++) {  // the first round warms the page cache and writes the weight cache, and is not counted
      const a = timed(process.execPath, [join(here, "first-token.js"), gguf, "--threads", String(threads)]);
      const c = timed(process.execPath, [join(here, "first-token.js"), gguf, "--threads", String(threads), "--weight-cache", cache]);
      const b = timed(join(tools, "llama-bench"), ["-m", gguf, "-t", String(threads), "-p", "0", "-n", "1", "-r", "1", "--no-warmup", "-o", "csv"]);
      if (i > 0) ours.push(a), cached.push(c), theirs.push(b);
    }
  } finally {
    rmSync(cache, { recursive: true, force: true });
  }
  const mid = (xs: Timed[]) => ({ seconds: median(xs.map((x) => x.seconds)), rssMiB: median(xs.map((x) => x.rssMiB)) });
  return { ours: mid(ours), cached: mid(cached), theirs: mid(theirs) };
}

async function main(): Promise<void> {
  const { threads, outFile, modelsDir: dir, q8 } = await benchSetup("quantized");
  const q4km = llamaQuantize(join(dir, "llama1b", "llama1b-bf16.gguf"), join(dir, "llama1b", "llama1b-q4_k_m.gguf"), "Q4_K_M", threads);
  const smol = (type: string) => llamaQuantize(join(dir, "smol", "smol-f32.gguf"), join(dir, "smol", `smol-${type.toLowerCase()}.gguf`), type, threads);

  // Rounds of: a read-bandwidth probe, neoserve, llama-bench (this machine's bandwidth drifts between runs, and
  // llama.cpp's decode with it): each ratio is of one round's pair, and the table gives the rounds' medians.
  const runs: { bandwidth: number; decodeTokS: number; prefillTokS: number; weightsBytes: number; device: string; theirs: { prefillTokS: number; decodeTokS: number } }[] = [];
  for (let i = 0; i < ROUNDS; i++) {
    const bandwidth = lastJson(run(join(probes, "bench_bandwidth"), [String(threads), "1024"]))["readGBs"] as number;
    const ours = node("neoserve-engine.js", [q4km, "--threads", String(threads), "--json"]) as Omit<(typeof runs)[number], "bandwidth" | "theirs">;
    runs.push({ bandwidth, ...ours, theirs: llamaBench(q4km, threads) });
  }
  const fileGB = statSync(q4km).size / 1e9;
  const share = (r: (typeof runs)[number], gb: number) => r.decodeTokS / (r.bandwidth / gb);
  const mid = [...runs].sort((a, b) => share(a, fileGB) - share(b, fileGB))[Math.floor(ROUNDS / 2)]!;
  const heldGB = mid.weightsBytes / 1e9;
  const prefill = median(runs.map((r) => r.prefillTokS));
  const decode = median(runs.map((r) => r.decodeTokS));
  const theirs1 = { prefillTokS: median(runs.map((r) => r.theirs.prefillTokS)), decodeTokS: median(runs.map((r) => r.theirs.decodeTokS)) };
  const prefillRatio = median(runs.map((r) => r.prefillTokS / r.theirs.prefillTokS));
  const decodeRatio = median(runs.map((r) => r.decodeTokS / r.theirs.decodeTokS));
  const ours16 = (node("neoserve-streams.js", [q4km, "--streams", "16", "--threads", String(threads)]) as { decodeTokS: number }).decodeTokS;
  const theirs16 = llamaBatched(q4km, threads, 16);

  const small: { type: string; ours: number; theirs: number }[] = [];
  for (const type of ["Q4_0", "Q6_K"]) {
    const f = smol(type);
    const ours = node("neoserve-engine.js", [f, "--threads", String(threads), "--json"]) as { decodeTokS: number };
    small.push({ type, ours: ours.decodeTokS, theirs: llamaBench(f, threads).decodeTokS });
  }
  const cold = [
    { name: "Q8_0", ...coldStart(q8, threads) },
    { name: "Q4_K_M", ...coldStart(q4km, threads) },
  ];

  const f = (x: number) => x.toFixed(1);
  const r = (a: number, b: number) => `${(a / b).toFixed(2)}×`;
  const lines = [
    `## ${new Date().toISOString().slice(0, 16)} — ${threads} threads`,
    "",
    `${machine()}; neoserve ${mid.device}. ` +
      `Command: \`npm run bench:quantized -- --threads ${threads}\`. One stream: ${ROUNDS} rounds of a read-bandwidth probe ` +
      `(${runs.map((x) => f(x.bandwidth)).join(", ")} GB/s), neoserve, then llama-bench; ratios are the medians of the rounds' own ratios.`,
    "",
    `1B-class Q4_K_M (llama1b quantized by llama-quantize: ${fileGB.toFixed(3)} GB; neoserve holds ${heldGB.toFixed(3)} GB of weights):`,
    "",
    "| measure | neoserve | llama.cpp | ratio | note |",
    "|---|---|---|---|---|",
    `| prompt 512, tok/s | ${f(prefill)} | ${f(theirs1.prefillTokS)} (llama-bench) | ${prefillRatio.toFixed(2)}× | rounds: ${runs.map((x) => r(x.prefillTokS, x.theirs.prefillTokS)).join(", ")} |`,
    `| decode, 1 stream, tok/s | ${f(decode)} | ${f(theirs1.decodeTokS)} (llama-bench) | ${decodeRatio.toFixed(2)}× | ` +
      `rounds: ${runs.map((x) => r(x.decodeTokS, x.theirs.decodeTokS)).join(", ")}; ` +
      `${(100 * share(mid, fileGB)).toFixed(0)}% of the file's roofline, ${(100 * share(mid, heldGB)).toFixed(0)}% of the bytes neoserve reads |`,
    `| decode, 16 streams aggregate, tok/s | ${f(ours16)} | ${f(theirs16)} (llama-batched-bench S_TG) | ${r(ours16, theirs16)} | |`,
    "",
    "SmolLM2-135M shape, one-stream decode (rows of 576 are not whole 256-blocks: llama-quantize gives Q6_K's tensors Q8_0 but the 1536-wide ones):",
    "",
    "| file type | neoserve tok/s | llama.cpp tok/s | ratio |",
    "|---|---|---|---|",
    ...small.map((s) => `| ${s.type} | ${f(s.ours)} | ${f(s.theirs)} | ${r(s.ours, s.theirs)} |`),
    "",
    "Cold start, 1B-class, files in the page cache: process start to the first token, and peak RSS (GNU time), median of " +
      `${ROUNDS}; llama.cpp is \`llama-bench -p 0 -n 1 -r 1 --no-warmup\`. neoserve converts at load, or (\`weightCache\`) maps the ` +
      "weights it converted on an earlier load:",
    "",
    "| file | neoserve | s | llama.cpp s | ratio | RSS MiB | llama.cpp RSS MiB | ratio |",
    "|---|---|---|---|---|---|---|---|",
    ...cold.flatMap((c) =>
      (
        [
          ["converting", c.ours],
          ["weight cache", c.cached],
        ] as const
      ).map(([how, t]) => `| ${c.name} | ${how} | ${t.seconds.toFixed(2)} | ${c.theirs.seconds.toFixed(2)} | ${r(t.seconds, c.theirs.seconds)} | ` +
        `${t.rssMiB.toFixed(0)} | ${c.theirs.rssMiB.toFixed(0)} | ${r(t.rssMiB, c.theirs.rssMiB)} |`),
    ),
    "",
  ];
  record(outFile, "GGUF quantized types against llama.cpp's own tools", lines);
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
