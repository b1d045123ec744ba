// The addon in worker_threads: several environments at once, each with its own
// models, and teardown of a worker's environment (terminate(), or its script
// ending) while models and samplers run or load. Each scenario runs in a child
// process (test/fixtures/worker-threads.mjs), so an abort of the addon fails
// its test instead of killing the runner; every child is bounded in time and
// must exit by itself with code 0.
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { repoRoot } from "./helpers/paths.js";

const fixture = join(repoRoot, "test", "fixtures", "worker-threads.mjs");
const childTimeoutMs = 60_000;

interface Outcome {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

function run(scenario: string): Promise<Outcome> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [fixture, scenario],
      { cwd: repoRoot, timeout: childTimeoutMs, killSignal: "SIGKILL", maxBuffer: 16 << 20 },
      (err, stdout, stderr) => {
        const e = err as (Error & { code?: number | string; signal?: NodeJS.Signals }) | null;
        resolve({
          code: e ? (typeof e.code === "number" ? e.code : null) : 0,
          signal: e?.signal ?? null,
          stdout,
          stderr,
        });
      },
    );
  });
}

// Runs a scenario, expects a clean exit by itself, and returns its JSON result.
async function scenario<T>(name: string): Promise<T> {
  const started = Date.now();
  const out = await run(name);
  const seconds = ((Date.now() - started) / 1000).toFixed(1);
  const how = out.signal ? `killed by ${out.signal} after ${seconds} s (limit ${childTimeoutMs / 1000} s)` : `exit code ${out.code}`;
  expect(out.code === 0 && out.signal === null, `${name}: ${how}\n${out.stderr.slice(-4000)}`).toBe(true);
  const last = out.stdout.trim().split("\n").at(-1) ?? "";
  return JSON.parse(last) as T;
}

beforeAll(() => {
  const dist = join(repoRoot, "dist", "src", "index.js");
  if (!existsSync(dist)) throw new Error(`${dist} is missing: the scenarios run the built library (npm run build:ts)`);
});

const timeout = childTimeoutMs + 30_000;

interface Concurrent {
  expected: number[];
  matching: number;
  codes: number[];
}

describe("worker_threads", () => {
  it("two workers load the model and generate at once, with the main thread's tokens", { timeout }, async () => {
    const r = await scenario<Concurrent>("two");
    expect(r.expected).toHaveLength(16);
    expect(r.matching).toBe(2);
    expect(r.codes).toEqual([0, 0]);
  });

  it("eight workers at once, the same", { timeout }, async () => {
    const r = await scenario<Concurrent>("eight");
    expect(r.expected).toHaveLength(16);
    expect(r.matching).toBe(8);
    expect(r.codes).toEqual(Array(8).fill(0));
  });

  it("a worker terminated mid-generation (or mid-dispose): another generating meanwhile finishes right, the process exits", { timeout }, async () => {
    const r = await scenario<{
      rounds: { aStreamed: boolean; aCode: number; same: boolean; bCode: number }[];
      disposing: number[];
      threadsBefore: number;
      threadsAfter: number;
    }>("terminateMidGeneration");
    expect(r.rounds).toHaveLength(2);
    for (const round of r.rounds) expect(round).toEqual({ aStreamed: true, aCode: 1, same: true, bCode: 0 });
    expect(r.disposing).toEqual([1, 1]); // terminated while dispose() was in progress
    // The terminated workers' scheduler threads were stopped, not left running.
    if (r.threadsBefore > 0) expect(r.threadsAfter).toBe(r.threadsBefore);
  });

  it("workers terminated while loadModel() is in progress", { timeout }, async () => {
    const r = await scenario<{ outcomes: { delayMs: number; loadedFirst: boolean; code: number }[]; tokens: number[] }>(
      "terminateDuringLoad",
    );
    expect(r.outcomes.length).toBeGreaterThan(10);
    for (const o of r.outcomes) expect(o.code, `terminated ${o.delayMs} ms into the load`).toBe(1);
    // Most of them ended before the load did (the ones at 0-400 ms; a load takes about a second in a worker).
    expect(r.outcomes.filter((o) => !o.loadedFirst).length).toBeGreaterThan(8);
    expect(r.tokens).toHaveLength(16); // the main thread loads and generates afterwards
  });

  it("workers that end without disposing their models (one to three of them), or exit mid-generation", { timeout }, async () => {
    const r = await scenario<{
      ended: { models: number; same: boolean; code: number }[];
      exitedMidGeneration: number[];
      threadsBefore: number;
      threadsAfter: number;
    }>("noDispose");
    expect(r.ended).toEqual([1, 2, 3].map((models) => ({ models, same: true, code: 0 })));
    expect(r.exitedMidGeneration).toEqual([0, 0, 0]);
    if (r.threadsBefore > 0) expect(r.threadsAfter).toBe(r.threadsBefore);
  });

  it("telemetry samplers in workers that are terminated or exit, alone or beside a model", { timeout }, async () => {
    const r = await scenario<{ terminated: number[]; exited: number[]; threadsBefore: number; threadsAfter: number }>(
      "telemetrySampler",
    );
    expect(r.terminated).toEqual([1, 1, 1, 1]);
    expect(r.exited).toEqual([0, 0]);
    if (r.threadsBefore > 0) expect(r.threadsAfter).toBe(r.threadsBefore);
  });
});
