// Pool workers that fail without dying, and requests that kill their workers:
// a stopped worker is declared dead by the watchdog, deadlines and cancels are
// enforced by the parent, and a poison request is not resent forever.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { InvalidRequestError } from "../src/errors.js";
import { ModelPool } from "../src/pool/pool.js";
import type { GenerateResult } from "../src/types.js";
import { hfDir } from "./helpers/paths.js";
import { numberedRequest, until } from "./helpers/waiting.js";

// Well above a loading worker's longest pause on a busy machine (its tokenizer is built on its event loop).
const WORKER_TIMEOUT_MS = 1500;
const options = { model: hfDir("tiny"), load: { backend: "cpu" as const, threads: 1 }, restartBackoff: { initialMs: 50, maxMs: 200 } };

const request = numberedRequest;

/** The results, or a rejection naming how many were still open after `ms`: a hang fails the test rather than the suite. */
function within(ms: number, results: Promise<GenerateResult>[]): Promise<GenerateResult[]> {
  let open = results.length;
  for (const r of results) void r.then(() => open--);
  return Promise.race([
    Promise.all(results),
    new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`${open} of ${results.length} requests still open after ${ms} ms`)), ms).unref()),
  ]);
}

/** Resumes and kills a process the test stopped, if the pool has not already. */
function release(pid: number | undefined): void {
  if (pid === undefined) return;
  for (const signal of ["SIGCONT", "SIGKILL"] as const) {
    try {
      process.kill(pid, signal);
    } catch {
      return; // gone
    }
  }
}

describe("a pool whose worker stops (SIGSTOP) instead of dying", () => {
  let pool: ModelPool;
  beforeAll(async () => {
    pool = await ModelPool.start({ ...options, slices: 2, workerTimeoutMs: WORKER_TIMEOUT_MS });
  });
  afterAll(() => pool?.dispose());

  it("declares it dead within about workerTimeoutMs: its requests are resent or end device_lost, and it is restarted", async () => {
    const victim = pool.stats().slices[0]!;
    const before = pool.stats();
    const streams = Array.from({ length: 20 }, (_, i) => pool.generate(request(i, 200)));
    try {
      await until(() => streams.some((s) => s.streamed > 0));
      process.kill(victim.pid!, "SIGSTOP");
      const stoppedAt = performance.now();
      await until(() => !pool.stats().slices[0]!.ready, 3 * WORKER_TIMEOUT_MS);
      const declaredAfter = performance.now() - stoppedAt;
      expect(declaredAfter).toBeGreaterThan(WORKER_TIMEOUT_MS - 300); // the last heartbeat may predate the stop by one interval
      expect(declaredAfter).toBeLessThan(WORKER_TIMEOUT_MS + 1000);
      const results = await within(15_000, streams.map((s) => s.result));
      for (const r of results) expect(["length", "device_lost"]).toContain(r.finishReason);
      const lost = results.filter((r) => r.finishReason === "device_lost").length;
      const after = pool.stats();
      expect(after.deviceLost - before.deviceLost).toBe(lost);
      expect(lost + (after.resent - before.resent)).toBeGreaterThan(0); // the stopped worker had requests in flight
      await until(() => pool.stats().slices[0]!.ready && pool.stats().slices[0]!.pid !== victim.pid);
      expect(pool.stats().slices[0]!.restarts).toBeGreaterThan(victim.restarts);
      const again = await within(10_000, [pool.generate({ ...request(3), slice: victim.slice }).result]);
      expect(again[0]!.finishReason).toBe("length");
    } finally {
      release(victim.pid);
    }
  }, 40_000);

  it("ends a stopped worker's request at its deadline (deadline_exceeded) and an aborted one as cancelled", async () => {
    await until(() => pool.stats().slices.every((s) => s.ready));
    const victim = pool.stats().slices[1]!;
    // A few ordinary steps first, so the worker's step-time fit prices decodes from warm steps (a fresh
    // worker's first steps, cold, can price 600 tokens past the deadline and refuse the request).
    expect((await within(10_000, [pool.generate({ ...request(7, 32), slice: victim.slice }).result]))[0]!.finishReason).toBe("length");
    // The worker admits it (its step times price 600 tokens well inside the deadline, even on a loaded
    // machine), and it is still running when the worker stops; the parent ends it before the watchdog's kill.
    const deadlineMs = 1200;
    const startedAt = performance.now();
    const timed = pool.generate({ ...request(1, 600), slice: victim.slice, deadlineMs });
    let tookMs = Infinity;
    void timed.result.then(() => (tookMs = performance.now() - startedAt));
    const abort = new AbortController();
    const aborted = pool.generate({ ...request(2, 900), slice: victim.slice, signal: abort.signal });
    try {
      let early: string | undefined;
      void timed.result.then((r) => (early ??= r.finishReason));
      await until(() => (timed.streamed > 0 && aborted.streamed > 0) || (early !== undefined && timed.streamed === 0), 10_000);
      expect(timed.streamed, `the timed request ended before its first token: ${early}`).toBeGreaterThan(0);
      process.kill(victim.pid!, "SIGSTOP");
      abort.abort();
      const [deadline, cancelled] = await within(10_000, [timed.result, aborted.result]);
      expect(deadline!.finishReason).toBe("deadline_exceeded");
      expect(tookMs).toBeGreaterThanOrEqual(deadlineMs);
      expect(tookMs).toBeLessThan(deadlineMs + 250); // before the watchdog's kill (workerTimeoutMs after the stop)
      expect(cancelled!.finishReason).toBe("cancelled");
      expect(cancelled!.tokens.length).toBeGreaterThan(0); // what streamed before the abort stays
      // The stopped worker is still declared dead and comes back.
      await until(() => pool.stats().slices[1]!.ready && pool.stats().slices[1]!.pid !== victim.pid);
    } finally {
      release(victim.pid);
    }
  }, 40_000);

  it("rejects a worker timeout shorter than two heartbeats, and a crash limit below 1", async () => {
    await expect(ModelPool.start({ ...options, slices: 1, workerTimeoutMs: 100 })).rejects.toThrow(InvalidRequestError);
    await expect(ModelPool.start({ ...options, slices: 1, maxCrashesPerRequest: 0 })).rejects.toThrow(InvalidRequestError);
  });
});

describe("a request that kills every worker it reaches", () => {
  const POISON = [31337, 4242, 31337, 4242];

  it("ends with error after maxCrashesPerRequest worker deaths, while innocent requests sent with it complete", async () => {
    process.env.NEOSERVE_TEST_POISON_TOKENS = POISON.join(","); // workers (and their restarts) inherit it
    let pool: ModelPool | undefined;
    try {
      pool = await ModelPool.start({ ...options, slices: 2, maxCrashesPerRequest: 2 });
      const before = pool.stats();
      // Pinned, and sent first: the worker dies on receiving it, before any innocent request there has streamed.
      const poison = pool.generate({ tokens: POISON, maxTokens: 8, slice: "worker-0" });
      const innocents = Array.from({ length: 12 }, (_, i) => pool!.generate(request(i)));
      const [bad, ...good] = await within(20_000, [poison.result, ...innocents.map((s) => s.result)]);
      expect(bad!.finishReason).toBe("error");
      expect(bad!.error).toMatch(/crashed 2 workers/);
      for (const r of good) {
        expect(r.finishReason).toBe("length");
        expect(r.tokens).toHaveLength(24);
      }
      const after = pool.stats();
      expect(after.poisoned - before.poisoned).toBe(1);
      expect(after.resent - before.resent).toBeLessThanOrEqual(1 + innocents.length); // the poison once, each innocent at most once
      await until(() => pool!.stats().slices[0]!.ready);
      expect(pool.stats().slices[0]!.restarts).toBe(2);
      const again = await within(10_000, [pool.generate({ ...request(4), slice: "worker-0" }).result]);
      expect(again[0]!.finishReason).toBe("length");
    } finally {
      delete process.env.NEOSERVE_TEST_POISON_TOKENS;
      await pool?.dispose();
    }
  }, 60_000);
});
