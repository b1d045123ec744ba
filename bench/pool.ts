// Slice pools on this machine's CPU: aggregate tokens/s of a pool of 2 workers
// against a pool of 1 (one engine thread per worker) on the same workload, and
// the router's cost per request (the synchronous part of generate(): route and
// send). Beside them, the machine's own ceiling: two independent engines in
// two plain processes, no pool, each serving half the requests at the same
// time — what any pool of 2 could reach here. Trials alternate so that drift
// in the machine's speed (a shared VM) falls on all alike; medians are the result.
//
//   npm run bench:pool [-- --requests 64 --tokens 256 --trials 5]
import { fork } from "node:child_process";
import { cpus } from "node:os";
import { join } from "node:path";
import { makeModel } from "../models/make-models.js";
import { packageRoot } from "../src/addon.js";
import { loadModel } from "../src/model.js";
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
      const s = pool.generate(request(i, tokens));
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

function request(i: number, tokens: number) {
  return { tokens: [(i * 97) % 50000, 11, 12, 13], maxTokens: tokens, temperature: 0, ignoreEos: true };
}

/** One independent engine (a child process): loads, waits for `startAt`, serves its share, reports. */
async function independentEngine(model: string, first: number, count: number, tokens: number, startAt: number): Promise<void> {
  const engine = await loadModel(model, { backend: "cpu", threads: 1 });
  await Promise.all([engine.generate({ tokens: [1], maxTokens: 4 }).result]); // warm-up
  await new Promise((r) => setTimeout(r, Math.max(0, startAt - Date.now())));
  const start = Date.now();
  const results = await Promise.all(Array.from({ length: count }, (_, i) => engine.generate(request(first + i, tokens)).result));
  const end = Date.now();
  process.send!({ tokens: results.reduce((n, r) => n + r.tokens.length, 0), start, end });
  await engine.dispose();
}

/** Two independent engines at once, each with half the requests: tokens over the span of both. */
async function ceiling(model: string, requests: number, tokens: number): Promise<number> {
  const startAt = Date.now() + 4000; // both loaded by then
  const half = Math.floor(requests / 2);
  const shares = [
    [0, half],
    [half, requests - half],
  ] as const;
  const reports = await Promise.all(
    shares.map(
      ([first, count]) =>
        new Promise<{ tokens: number; start: number; end: number }>((resolve, reject) => {
          const child = fork(new URL(import.meta.url).pathname, ["--independent", model, `${first}`, `${count}`, `${tokens}`, `${startAt}`]);
          child.once("message", (m) => resolve(m as { tokens: number; start: number; end: number }));
          child.once("exit", (code) => code !== 0 && reject(new Error(`independent engine exited with ${code}`)));
        }),
    ),
  );
  const span = (Math.max(...reports.map((r) => r.end)) - Math.min(...reports.map((r) => r.start))) / 1000;
  return reports.reduce((n, r) => n + r.tokens, 0) / span;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function main(argv: string[]): Promise<void> {
  if (argv[0] === "--independent") {
    const [model, first, count, tokens, startAt] = argv.slice(1);
    return independentEngine(model!, Number(first), Number(count), Number(tokens), Number(startAt));
  }
  const opt = (name: string, d: number) => (argv.includes(name) ? Number(argv[argv.indexOf(name) + 1]) : d);
  const requests = opt("--requests", 64);
  const tokens = opt("--tokens", 256);
  const trials = opt("--trials", 5);
  const tiny = await makeModel("tiny", join(packageRoot(), "models", "generated"));
  const rows: string[] = [];
  const ratios: number[] = [];
  const ceilings: number[] = [];
  const route: number[] = [];
  for (let t = 1; t <= trials; t++) {
    const one = await aggregate(tiny.hfDir, 1, requests, tokens);
    const two = await aggregate(tiny.hfDir, 2, requests, tokens);
    const apart = await ceiling(tiny.hfDir, requests, tokens);
    ratios.push(two.tokS / one.tokS);
    ceilings.push(apart / one.tokS);
    route.push(one.routeUs, two.routeUs);
    rows.push(
      `| ${t} | ${one.tokS.toFixed(0)} | ${two.tokS.toFixed(0)} | ${(two.tokS / one.tokS).toFixed(2)}× | ${apart.toFixed(0)} | ${(apart / one.tokS).toFixed(2)}× | ${one.routeUs.toFixed(1)} / ${two.routeUs.toFixed(1)} |`,
    );
    console.log(rows.at(-1));
  }
  const lines = [
    `## ${new Date().toISOString().slice(0, 16)} — pool of CPU workers, tiny model, ${requests} requests × ${tokens} tokens`,
    "",
    `Machine: ${cpus()[0]?.model ?? "?"}, ${cpus().length} cores. Command: \`npm run bench:pool -- --requests ${requests} --tokens ${tokens} --trials ${trials}\`.`,
    "",
    "| trial | pool of 1 tok/s | pool of 2 tok/s | 2 / 1 | 2 independent engines tok/s (ceiling) | ceiling / 1 | routing µs/request (1 / 2 workers) |",
    "|---|---|---|---|---|---|---|",
    ...rows,
    "",
    `Median pool of 2 / pool of 1: **${median(ratios).toFixed(2)}×** (min ${Math.min(...ratios).toFixed(2)}×, max ${Math.max(...ratios).toFixed(2)}×); ` +
      `median ceiling (2 independent engines / pool of 1): ${median(ceilings).toFixed(2)}×; median routing ${median(route).toFixed(1)} µs/request.`,
  ];
  recordResult("pool", "Slice pools", lines);
  console.log(lines.at(-1));
}

runIfMain(import.meta.url, main);
