// Slice pools on this machine's CPU: aggregate tokens/s of a pool of 2 workers
// against a pool of 1 (one engine thread per worker), and the router's cost
// per request (the synchronous part of generate(): route and send).
//
//   npm run bench:pool [-- --requests 64 --tokens 64]
import { cpus } from "node:os";
import { join } from "node:path";
import { makeModel } from "../models/make-models.js";
import { packageRoot } from "../src/addon.js";
import { ModelPool } from "../src/pool/pool.js";
import { recordResult, runIfMain } from "./record.js";

async function aggregate(model: string, workers: number, requests: number, tokens: number): Promise<{ tokS: number; routeUs: number }> {
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

async function main(argv: string[]): Promise<void> {
  const opt = (name: string, d: number) => (argv.includes(name) ? Number(argv[argv.indexOf(name) + 1]) : d);
  const requests = opt("--requests", 64);
  const tokens = opt("--tokens", 64);
  const tiny = await makeModel("tiny", join(packageRoot(), "models", "generated"));
  const one = await aggregate(tiny.hfDir, 1, requests, tokens);
  const two = await aggregate(tiny.hfDir, 2, requests, tokens);
  const lines = [
    `## ${new Date().toISOString().slice(0, 16)} — pool of CPU workers, tiny model, ${requests} requests × ${tokens} tokens`,
    "",
    `Machine: ${cpus()[0]?.model ?? "?"}, ${cpus().length} cores. Command: \`npm run bench:pool -- --requests ${requests} --tokens ${tokens}\`.`,
    "",
    "| workers (1 engine thread each) | aggregate tok/s | vs 1 worker | routing µs/request |",
    "|---|---|---|---|",
    `| 1 | ${one.tokS.toFixed(0)} | 1.00× | ${one.routeUs.toFixed(1)} |`,
    `| 2 | ${two.tokS.toFixed(0)} | ${(two.tokS / one.tokS).toFixed(2)}× | ${two.routeUs.toFixed(1)} |`,
  ];
  recordResult("pool", "Slice pools", lines);
  console.log(lines.join("\n"));
}

runIfMain(import.meta.url, main);
