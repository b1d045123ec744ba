// Slice pools on this machine's CPU: aggregate tokens/s of a pool of 2 workers
// against a pool of 1 (one engine thread per worker) on the same workload, and
// the router's cost per request (the synchronous part of generate(): route and
// send). Trials alternate 1 and 2 workers so that drift in the machine's speed
// (a shared VM) falls on both alike; the median ratio is the result.
//
//   npm run bench:pool [-- --requests 64 --tokens 256 --trials 5]
import { cpus } from "node:os";
import { join } from "node:path";
import { makeModel } from "../models/make-models.js";
import { packageRoot } from "../src/addon.js";
import { ModelPool } from "../src/pool/pool.js";
import { recordResult, runIfMain } from "./record.js";

interface Trial {
  tokS: number;
  routeUs: number;
}

async function aggregate(model: string, workers: number, requests: number, tokens: number): Promise<Trial> {
  const pool = await ModelPool.start({ model, slices: workers, load: { backend: "cpu", threads: 1 } });
  try {
    await Promise.all(Array.from({ length: workers * 2 }, (_, i) => pool.generate({ tokens: [i + 1], maxTokens: 4 }).result)); // warm-up
    const t0 = performance.now();
    let routing = 0;
    const streams = Array.from({ length: requests }, (_, i) => {
      const r0 = performance.now();
      const s = pool.generate({ tokens: [(i * 97) % 50000, 11, 12, 13], maxTokens: tokens, temperature: 0, ignoreEos: true });
      routing += performance.now() - r0;
      return s;
    });
    const results = await Promise.all(streams.map((s) => s.result));
    const seconds = (performance.now() - t0) / 1000;
    return { tokS: results.reduce((n, r) => n + r.tokens.length, 0) / seconds, routeUs: (routing * 1000) / requests };
  } finally {
    await pool.dispose();
  }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function main(argv: string[]): Promise<void> {
  const opt = (name: string, d: number) => (argv.includes(name) ? Number(argv[argv.indexOf(name) + 1]) : d);
  const requests = opt("--requests", 64);
  const tokens = opt("--tokens", 256);
  const trials = opt("--trials", 5);
  const tiny = await makeModel("tiny", join(packageRoot(), "models", "generated"));
  const rows: string[] = [];
  const ratios: number[] = [];
  const route: number[] = [];
  for (let t = 1; t <= trials; t++) {
    const one = await aggregate(tiny.hfDir, 1, requests, tokens);
    const two = await aggregate(tiny.hfDir, 2, requests, tokens);
    ratios.push(two.tokS / one.tokS);
    route.push(one.routeUs, two.routeUs);
    rows.push(`| ${t} | ${one.tokS.toFixed(0)} | ${two.tokS.toFixed(0)} | ${(two.tokS / one.tokS).toFixed(2)}× | ${one.routeUs.toFixed(1)} / ${two.routeUs.toFixed(1)} |`);
    console.log(rows.at(-1));
  }
  const lines = [
    `## ${new Date().toISOString().slice(0, 16)} — pool of CPU workers, tiny model, ${requests} requests × ${tokens} tokens`,
    "",
    `Machine: ${cpus()[0]?.model ?? "?"}, ${cpus().length} cores. Command: \`npm run bench:pool -- --requests ${requests} --tokens ${tokens} --trials ${trials}\`.`,
    "",
    "| trial | 1 worker tok/s | 2 workers tok/s | 2 / 1 | routing µs/request (1 / 2 workers) |",
    "|---|---|---|---|---|",
    ...rows,
    "",
    `Median 2 / 1: **${median(ratios).toFixed(2)}×** (min ${Math.min(...ratios).toFixed(2)}×, max ${Math.max(...ratios).toFixed(2)}×); median routing ${median(route).toFixed(1)} µs/request.`,
  ];
  recordResult("pool", "Slice pools", lines);
  console.log(lines.at(-1));
}

runIfMain(import.meta.url, main);
