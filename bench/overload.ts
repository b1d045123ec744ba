// Overload: open-loop Poisson arrivals at 2× the measured capacity, with a
// queue-delay cap, an inter-token cap and a per-request deadline. Every request
// must either meet its caps or end with the reason it did not; a request that
// finished normally but broke a cap is a silent violation, and there must be none.
//
//   npm run bench:overload [-- --seconds 20 --load 2]
import { cpus } from "node:os";
import { join } from "node:path";
import { makeModel } from "../models/make-models.js";
import { recordResult, runIfMain } from "./record.js";
import { packageRoot } from "../src/addon.js";
import { loadModel, QueueFullError, type GenerateResult, type Model } from "../src/index.js";
import { benchTokens } from "./llama-cpp-baseline.js";

const PROMPT = 64;
const MAX_TOKENS = 32;

interface Outcome {
  reason: string;
  queuedMs: number | null; // submit → started by the scheduler
  waitMs: number | null; // submit → first token
  maxGapMs: number;
  totalMs: number;
}

async function capacity(model: Model): Promise<number> {
  const n = 32;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: n }, (_, i) =>
      model.generate({ tokens: benchTokens(PROMPT, i + 1), maxTokens: MAX_TOKENS, temperature: 0, ignoreEos: true }).result,
    ),
  );
  return (n * 1000) / (performance.now() - t0); // requests per second, closed loop
}

async function run(model: Model, rate: number, seconds: number, deadlineMs: number): Promise<Outcome[]> {
  const outcomes: Promise<Outcome>[] = [];
  let rejected = 0;
  let seed = 12345;
  const uniform = () => ((seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) + 0.5) / 2 ** 32;
  const end = performance.now() + seconds * 1000;
  let next = performance.now();
  let i = 0;
  while (next < end) {
    const wait = next - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    next += (-Math.log(uniform()) / rate) * 1000;
    try {
      const submitted = performance.now();
      const stream = model.generate({ tokens: benchTokens(PROMPT, ++i), maxTokens: MAX_TOKENS, temperature: 0, ignoreEos: true, deadlineMs });
      outcomes.push(
        (async () => {
          let last = submitted;
          let first: number | null = null;
          let maxGap = 0;
          for await (const _ of stream) {
            const now = performance.now();
            if (first === null) first = now - submitted;
            else maxGap = Math.max(maxGap, now - last);
            last = now;
          }
          const r: GenerateResult = await stream.result;
          return { reason: r.finishReason, queuedMs: r.timings.queuedMs, waitMs: first, maxGapMs: maxGap, totalMs: r.timings.totalMs };
        })(),
      );
    } catch (e) {
      if (!(e instanceof QueueFullError)) throw e;
      rejected++;
    }
  }
  const done = await Promise.all(outcomes);
  for (let k = 0; k < rejected; k++) done.push({ reason: "queue_full", queuedMs: null, waitMs: null, maxGapMs: 0, totalMs: 0 });
  return done;
}

async function main(argv: string[]): Promise<void> {
  const opt = (name: string, d: number) => (argv.includes(name) ? Number(argv[argv.indexOf(name) + 1]) : d);
  const seconds = opt("--seconds", 20);
  const load = opt("--load", 2);
  const root = packageRoot();
  const smol = await makeModel("smol", join(root, "models", "generated"));
  const gguf = smol.gguf.q8_0!;

  const probe = await loadModel(gguf, { backend: "cpu", threads: 2, scheduler: { maxBatchSize: 32 } });
  const cap = await capacity(probe);
  await probe.dispose();

  const caps = { maxQueueDelayMs: 1000, itlCapMs: 150, deadlineMs: 4000, maxQueueSize: 64 };
  const model = await loadModel(gguf, {
    backend: "cpu",
    threads: 2,
    scheduler: { maxBatchSize: 32, maxQueueSize: caps.maxQueueSize, maxQueueDelayMs: caps.maxQueueDelayMs, itlCapMs: caps.itlCapMs },
  });
  let outcomes: Outcome[];
  try {
    outcomes = await run(model, cap * load, seconds, caps.deadlineMs);
  } finally {
    await model.dispose();
  }

  // A request that finished normally must have been started within the queue
  // cap (as the scheduler measured it; a step's length is its granularity) and
  // have ended within its deadline (measured in JS, so event delivery adds a few ms).
  const finishedNormally = (o: Outcome) => o.reason === "length" || o.reason === "stop";
  const stepGrace = caps.itlCapMs * 1.5;
  const silentQueue = outcomes.filter((o) => finishedNormally(o) && o.queuedMs! > caps.maxQueueDelayMs + stepGrace).length;
  const silentDeadline = outcomes.filter((o) => finishedNormally(o) && o.totalMs > caps.deadlineMs + 25).length;
  const overItl = outcomes.filter((o) => finishedNormally(o) && o.maxGapMs > caps.itlCapMs * 1.5).length;
  const byReason = new Map<string, number>();
  for (const o of outcomes) byReason.set(o.reason, (byReason.get(o.reason) ?? 0) + 1);
  const pct = (xs: number[], q: number) => (xs.length ? xs.sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(q * xs.length))]!.toFixed(0) : "-");
  const met = outcomes.filter(finishedNormally);
  // Goodput: requests that met every cap (finished normally, none of the checks above), per second offered, over capacity.
  const good = met.filter((o) => o.queuedMs! <= caps.maxQueueDelayMs + stepGrace && o.totalMs <= caps.deadlineMs + 25 && o.maxGapMs <= caps.itlCapMs * 1.5).length;

  const lines = [
    `## ${new Date().toISOString().slice(0, 16)} — overload at ${load}× capacity, SmolLM2-135M shape Q8_0, 2 threads`,
    "",
    `Machine: ${cpus()[0]?.model ?? "?"}, ${cpus().length} cores. Command: \`npm run bench:overload -- --seconds ${seconds} --load ${load}\`.`,
    `Capacity (closed loop, ${PROMPT}-token prompts, ${MAX_TOKENS} tokens): ${cap.toFixed(2)} req/s; offered ${(cap * load).toFixed(2)} req/s for ${seconds} s (Poisson).`,
    `Caps: maxQueueDelayMs ${caps.maxQueueDelayMs}, itlCapMs ${caps.itlCapMs}, deadlineMs ${caps.deadlineMs}, maxQueueSize ${caps.maxQueueSize}.`,
    "",
    "| outcome | requests |",
    "|---|---|",
    ...[...byReason.entries()].sort().map(([r, n]) => `| ${r} | ${n} |`),
    `| **total** | ${outcomes.length} |`,
    "",
    "| check | count |",
    "|---|---|",
    `| finished normally but started past the queue cap + one step (silent) | ${silentQueue} |`,
    `| finished normally but past the deadline + 25 ms delivery (silent) | ${silentDeadline} |`,
    `| finished normally with an inter-token gap over 1.5× itlCapMs | ${overItl} |`,
    "",
    `Goodput: ${good} requests met every cap, ${(good / seconds).toFixed(2)} req/s = **${((good / seconds / cap) * 100).toFixed(0)}%** of closed-loop capacity. ` +
      `Requests that could not meet their deadline even if started at once end \`deadline_unmeetable\` at admission, unstarted.`,
    "",
    `Met requests: queue wait p50 ${pct(met.map((o) => o.queuedMs!), 0.5)} ms, p99 ${pct(met.map((o) => o.queuedMs!), 0.99)} ms; time to first token p50 ${pct(met.map((o) => o.waitMs!), 0.5)} ms, p99 ${pct(met.map((o) => o.waitMs!), 0.99)} ms; ` +
      `max inter-token gap p50 ${pct(met.map((o) => o.maxGapMs), 0.5)} ms, p99 ${pct(met.map((o) => o.maxGapMs), 0.99)} ms.`,
  ];
  recordResult("overload", "Overload: latency caps under 2× capacity", lines);
  console.log(lines.join("\n"));
}

runIfMain(import.meta.url, main);
