// The router: (1) how long a routing decision takes with 16 backends, the pure
// decision and a Router's whole plan (16 engines' stats read); (2) the
// articles' case: a mixed workload (mostly short "trivial" requests, some
// long "heavy" ones) arriving as a Poisson process, over a local CPU model
// and a remote standing in for a GPU pool, each with a price: cost per 1k
// tokens and TTFT with routing, against sending everything to the pool.
//
//   npm run bench:router [-- --requests 240 --rate 12 --threads 2]
//
// The pool is emulated on 127.0.0.1 (an OpenAI-compatible SSE server with a
// fixed capacity, a first-token time and a per-token time, queueing FIFO past
// capacity), so its latency is a stated model, not this machine's CPU.
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { packageRoot } from "../src/addon.js";
import type { Engine, EngineStats } from "../src/engine.js";
import { loadModel } from "../src/index.js";
import { requestCost } from "../src/router/cost.js";
import { RemoteBackend } from "../src/router/remote-backend.js";
import { type Candidate, decide } from "../src/router/route-decision.js";
import { type Backend, Router } from "../src/router/router.js";
import { parseRules } from "../src/router/rules.js";
import type { GenerateRequest, GenerateResult } from "../src/types.js";
import { recordResult, runIfMain, sectionHeader } from "./record.js";

const percentile = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))]!;

// --- (1) decision time --------------------------------------------------------------

function timeIt(n: number, fn: (i: number) => void): { p50: number; p99: number } {
  const us: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = process.hrtime.bigint();
    fn(i);
    us.push(Number(process.hrtime.bigint() - t0) / 1000);
  }
  return { p50: percentile(us, 50), p99: percentile(us, 99) };
}

function decisionTimes(): string[] {
  const names = Array.from({ length: 16 }, (_, i) => `b${i}`);
  const candidates: Candidate[] = names.map((name, i) => ({
    name,
    where: i % 4 === 0 ? "remote" : "local",
    privacy: i % 3 === 0 ? ["internal", "public"] : ["private", "internal", "public"],
    available: i !== 5,
    predictedTtftMs: 20 + ((i * 37) % 300),
    predictedEndMs: 500 + ((i * 53) % 3000),
    costPer1k: 0.0001 * (1 + ((i * 13) % 16)),
    hasRoom: i % 2 === 0,
  }));
  const rules = parseRules(
    [
      { when: { privacy: "private" }, route: "local" },
      { when: { latency_budget_ms: { lte: 200 }, local_has_room: true }, route: "local" },
      { when: { prompt_chars: { gt: 4000 } }, route: ["b4", "b8"] },
      { route: "remote" },
    ],
    "rules",
    names,
  );
  const inputs = [
    { privacy: "private" as const, promptChars: 100, maxTokens: 64 },
    { privacy: "internal" as const, latencyBudgetMs: 150, promptChars: 300, maxTokens: 64 },
    { privacy: "public" as const, latencyBudgetMs: 500, maxCostPer1k: 0.001, promptChars: 9000, maxTokens: 256 },
  ];
  for (let i = 0; i < 20_000; i++) decide(inputs[i % 3]!, candidates, rules); // warm the JIT
  const pure = timeIt(100_000, (i) => decide(inputs[i % 3]!, candidates, rules));

  // A Router's plan: the same decision after reading 16 engines' stats (engines that do no work).
  const engine = (i: number): Engine => {
    const stats: EngineStats = { inFlight: i % 5, progress: 0, predictedWaitMs: 10 * i, stepTime: { a: 1, b: 0.05, c: 1e-5, minMs: 1, minTokens: 1 } };
    return {
      info: { backend: "none", device: "", source: "", maxContext: 4096, vocabSize: 100 },
      stats: () => stats,
      generate: () => {
        throw new Error("not in this benchmark");
      },
      tokenize: async () => new Int32Array(),
      detokenize: async () => "",
      dispose: async () => {},
    };
  };
  const router = new Router({
    alias: "bench",
    backends: candidates.map((c, i) => ({ name: c.name, engine: engine(i), where: c.where, privacy: c.privacy, price: { perHour: 1 + i } })),
    rules,
  });
  const requests: GenerateRequest[] = inputs.map((input) => ({ prompt: "x".repeat(input.promptChars), maxTokens: input.maxTokens, route: { privacy: input.privacy, latencyBudgetMs: input.latencyBudgetMs } }));
  for (let i = 0; i < 20_000; i++) router.plan(requests[i % 3]!);
  const planned = timeIt(100_000, (i) => router.plan(requests[i % 3]!));
  return [
    "| 16 backends, 4 rules | p50 µs | p99 µs |",
    "|---|---|---|",
    `| decide() over a snapshot | ${pure.p50.toFixed(2)} | ${pure.p99.toFixed(2)} |`,
    `| Router.plan() (16 engines' stats read, TTFT and cost predicted, then decide) | ${planned.p50.toFixed(2)} | ${planned.p99.toFixed(2)} |`,
  ];
}

// --- (2) the articles' case ---------------------------------------------------------

interface PoolModel {
  capacity: number;
  firstTokenMs: number;
  msPerToken: number;
}

// An OpenAI-compatible server standing in for a GPU pool: `capacity` streams at once, FIFO beyond.
async function emulatedPool(model: PoolModel): Promise<{ url: string; close(): Promise<void> }> {
  let running = 0;
  const waiting: (() => void)[] = [];
  const slot = () => (running < model.capacity ? (running++, Promise.resolve()) : new Promise<void>((r) => waiting.push(() => (running++, r()))));
  const release = () => {
    running--;
    waiting.shift()?.();
  };
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
  const server: Server = createServer((req, res) => {
    let text = "";
    req.on("data", (c: Buffer) => (text += c.toString()));
    req.on("end", async () => {
      if (req.method === "GET") return res.end(JSON.stringify({ data: [{ id: "pool", max_model_len: 8192 }] }));
      const body = JSON.parse(text) as { prompt: string; max_tokens: number };
      res.writeHead(200, { "content-type": "text/event-stream" });
      res.flushHeaders();
      await slot();
      try {
        await sleep(model.firstTokenMs);
        const n = body.max_tokens;
        for (let i = 0; i < n; i++) {
          if (i > 0) await sleep(model.msPerToken);
          res.write(`data: ${JSON.stringify({ choices: [{ index: 0, text: " tok", finish_reason: null }] })}\n\n`);
        }
        res.write(`data: ${JSON.stringify({ choices: [{ index: 0, text: "", finish_reason: "length" }] })}\n\n`);
        const prompt = Math.ceil(body.prompt.length / 4);
        res.write(`data: ${JSON.stringify({ choices: [], usage: { prompt_tokens: prompt, completion_tokens: n, total_tokens: prompt + n } })}\n\n`);
        res.end("data: [DONE]\n\n");
      } finally {
        release();
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => new Promise<void>((r) => (server.closeAllConnections(), server.close(() => r()))),
  };
}

// A seeded workload: arrival times (Poisson) and each request's kind.
function workload(n: number, ratePerSecond: number, heavyShare: number, seed = 11) {
  let s = seed >>> 0;
  const rand = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
  let t = 0;
  return Array.from({ length: n }, (_, i) => {
    t += -Math.log(1 - rand()) / ratePerSecond;
    const heavy = rand() < heavyShare;
    const words = heavy ? 300 : 12;
    const prompt = Array.from({ length: words }, (_, w) => `word${(i * 31 + w * 7) % 997}`).join(" ");
    return { at: t * 1000, heavy, request: { prompt, maxTokens: heavy ? 96 : 16, temperature: 0, ignoreEos: true } satisfies GenerateRequest };
  });
}

interface CaseResult {
  ttft: number[];
  ttftTrivial: number[];
  ttftHeavy: number[];
  cost: number;
  tokens: number;
  local: number;
  failed: number;
}

async function runCase(engine: Engine, jobs: ReturnType<typeof workload>, costOf: (r: GenerateResult, stream: unknown) => number, isLocal: (stream: unknown) => boolean): Promise<CaseResult> {
  const out: CaseResult = { ttft: [], ttftTrivial: [], ttftHeavy: [], cost: 0, tokens: 0, local: 0, failed: 0 };
  const t0 = performance.now();
  await Promise.all(
    jobs.map(async (job) => {
      const wait = job.at - (performance.now() - t0);
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      const stream = engine.generate(job.request);
      const r = await stream.result;
      if (r.finishReason !== "length" && r.finishReason !== "stop") return void out.failed++;
      const ttft = r.timings.timeToFirstTokenMs!;
      out.ttft.push(ttft);
      (job.heavy ? out.ttftHeavy : out.ttftTrivial).push(ttft);
      out.cost += costOf(r, stream);
      out.tokens += r.usage.promptTokens + r.usage.completionTokens;
      if (isLocal(stream)) out.local++;
    }),
  );
  return out;
}

async function main(argv: string[]): Promise<void> {
  const at = (flag: string) => (argv.includes(flag) ? argv[argv.indexOf(flag) + 1] : undefined);
  const n = Number(at("--requests") ?? 240);
  const rate = Number(at("--rate") ?? 12);
  const threads = Number(at("--threads") ?? 2);
  const lines = [...sectionHeader(`router: decision time, and a mixed workload over a local CPU model and a GPU pool`, `npm run bench:router -- ${argv.join(" ")}`)];
  lines.push(...decisionTimes(), "");

  const pool: PoolModel = { capacity: 4, firstTokenMs: 100, msPerToken: 6 };
  const prices = { localPerHour: 0.1, poolPer1kPrompt: 0.0005, poolPer1kCompletion: 0.0015 };
  const emulated = await emulatedPool(pool);
  const model = await loadModel(join(packageRoot(), "models", "generated", "smol", "smol-q8_0.gguf"), { backend: "cpu", threads, scheduler: { maxBatchSize: 16 } });
  const remote = new RemoteBackend({ baseUrl: emulated.url, model: "pool", connections: 64, healthIntervalMs: 0 });
  try {
    for (let i = 0; i < 4; i++) await model.generate({ prompt: "warm up the engine", maxTokens: 16 }).result;
    const local: Backend = { name: "cpu", engine: model, where: "local", privacy: ["private", "internal", "public"], price: { perHour: prices.localPerHour } };
    const gpu: Backend = { name: "gpu-pool", engine: remote, where: "remote", privacy: ["internal", "public"], price: { per1kPrompt: prices.poolPer1kPrompt, per1kCompletion: prices.poolPer1kCompletion } };
    const rules = parseRules(
      [
        { when: { prompt_chars: { lte: 400 }, max_tokens: { lte: 32 }, local_has_room: true }, route: "local" },
        { route: "remote" },
      ],
      "rules",
      ["cpu", "gpu-pool"],
    );
    const jobs = workload(n, rate, 0.2);
    const routed = new Router({ alias: "chat", backends: [local, gpu], rules });
    const allToPool = new Router({ alias: "chat", backends: [gpu] });
    const routeOf = (s: unknown) => (s as { route: { backend?: string; cost: number } }).route;
    const withRouting = await runCase(routed, jobs, (_r, s) => routeOf(s).cost, (s) => routeOf(s).backend === "cpu");
    const allRemote = await runCase(allToPool, jobs, (r) => requestCost(gpu.price, r.usage, undefined), () => false);

    const row = (what: string, c: CaseResult) =>
      `| ${what} | ${((c.cost / c.tokens) * 1000).toFixed(6)} | ${percentile(c.ttft, 50).toFixed(0)} | ${percentile(c.ttft, 99).toFixed(0)} | ${percentile(c.ttftTrivial, 99).toFixed(0)} | ${percentile(c.ttftHeavy, 99).toFixed(0)} | ${((100 * c.local) / (c.ttft.length || 1)).toFixed(0)}% | ${c.failed} |`;
    lines.push(
      `Workload: ${n} requests, Poisson arrivals at ${rate}/s; 80% trivial (a 12-word prompt, 16 tokens), 20% heavy (a 300-word prompt, 96 tokens), seeded. ` +
        `Local: smol Q8_0 on this CPU, ${threads} threads, priced at $${prices.localPerHour}/hour (its cost per token from its measured tokens/s). ` +
        `GPU pool (emulated): ${pool.capacity} streams at once, FIFO beyond, first token ${pool.firstTokenMs} ms, ${pool.msPerToken} ms a token; $${prices.poolPer1kPrompt} per 1k prompt and $${prices.poolPer1kCompletion} per 1k completion tokens. ` +
        `Rule: prompt_chars <= 400 and max_tokens <= 32 and a local slot free → local; else the pool.`,
      "",
      "| route | cost per 1k tokens ($) | TTFT p50 ms | TTFT p99 ms | trivial p99 ms | heavy p99 ms | served locally | failed |",
      "|---|---|---|---|---|---|---|---|",
      row("routed (rules)", withRouting),
      row("everything to the GPU pool", allRemote),
      "",
      `Routing: cost per 1k tokens ${((withRouting.cost / withRouting.tokens / (allRemote.cost / allRemote.tokens)) * 100).toFixed(0)}% of all-to-the-pool; ` +
        `TTFT p99 ${percentile(withRouting.ttft, 99).toFixed(0)} vs ${percentile(allRemote.ttft, 99).toFixed(0)} ms (${((1 - percentile(withRouting.ttft, 99) / percentile(allRemote.ttft, 99)) * 100).toFixed(0)}% lower).`,
    );
  } finally {
    await remote.dispose();
    await model.dispose();
    await emulated.close();
  }
  console.log(lines.join("\n"));
  recordResult("router", "The router: decision time and the mixed-workload case", lines);
}

runIfMain(import.meta.url, main);
