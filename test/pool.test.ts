// Slice pools on CPU workers: requests spread across workers, pins, and
// failover when a worker is killed mid-load — no request lost or hung.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { InvalidRequestError, ModelLoadError } from "../src/errors.js";
import { loadModel } from "../src/model.js";
import { ModelPool } from "../src/pool/pool.js";
import { hfDir } from "./helpers/paths.js";
import { numberedRequest, until } from "./helpers/waiting.js";

let pool: ModelPool;
beforeAll(async () => {
  pool = await ModelPool.start({ model: hfDir("tiny"), slices: 2, load: { backend: "cpu", threads: 1 }, restartBackoff: { initialMs: 50, maxMs: 1000 } });
});
afterAll(() => pool.dispose());

const request = numberedRequest;

describe("a pool of CPU workers", () => {
  it("spreads requests across workers and streams each to completion", async () => {
    const streams = Array.from({ length: 24 }, (_, i) => pool.generate(request(i)));
    const results = await Promise.all(streams.map((s) => s.result));
    for (const r of results) {
      expect(r.finishReason).toBe("length");
      expect(r.tokens).toHaveLength(24);
    }
    const served = pool.stats().slices.map((s) => s.served);
    expect(served.every((n) => n > 0)).toBe(true);
  });

  it("reports its workers' load from their heartbeats: throughput, and the wait a router predicts with", async () => {
    await until(() => pool.stats().tokensPerSecond > 0 && pool.stats().predictedWaitMs === 0); // idle, once a heartbeat after the last request says so
    const busy = Array.from({ length: 8 }, (_, i) => pool.generate({ ...request(i), maxTokens: 600, ignoreEos: true }));
    await until(() => (pool.stats().predictedWaitMs ?? 0) > 0);
    busy.forEach((s) => s.cancel());
    await Promise.all(busy.map((s) => s.result));
  });

  it("gives the same tokens as the same request on any worker", async () => {
    const a = await pool.generate({ ...request(5), slice: "worker-0" }).result;
    const b = await pool.generate({ ...request(5), slice: "worker-1" }).result;
    expect(b.tokens).toEqual(a.tokens);
  });

  it("streams exactly what the model gives in-process: tokens, their texts, and the result built from them", async () => {
    const model = await loadModel(hfDir("tiny"), { backend: "cpu", threads: 1 });
    try {
      const req = { prompt: "The pool and the model", maxTokens: 40, temperature: 0.9, seed: 11, ignoreEos: true };
      const local = await model.generate(req).result;
      const stream = pool.generate(req);
      const pieces: string[] = [];
      for await (const token of stream) pieces.push(token.text);
      const remote = await stream.result;
      expect(remote.tokens).toEqual(local.tokens);
      expect(remote.text).toBe(local.text);
      expect(pieces.join("")).toBe(local.text);
      expect(remote.usage).toEqual(local.usage);
      // The same through a callback reader.
      const viaCallback = pool.generate(req);
      const ids: number[] = [];
      viaCallback.onToken((t) => ids.push(t.id));
      await viaCallback.result;
      expect(ids).toEqual(local.tokens);
    } finally {
      await model.dispose();
    }
  });

  it("rejects a flush interval that is not a number of ms", async () => {
    await expect(ModelPool.start({ model: hfDir("tiny"), slices: 1, flushIntervalMs: -1 })).rejects.toThrow(InvalidRequestError);
  });

  it("rejects a pin to a slice it does not have", () => {
    expect(() => pool.generate({ ...request(1), slice: "MIG-nope" })).toThrow(InvalidRequestError);
  });

  it("kill -9 of a worker mid-load loses nothing: each request completes or ends device_lost, and the worker returns", async () => {
    const before = pool.stats();
    const streams = Array.from({ length: 40 }, (_, i) => pool.generate(request(i, 300)));
    const victim = pool.stats().slices[0]!;
    await until(() => streams.some((s) => s.streamed > 0));
    process.kill(victim.pid!, "SIGKILL");
    const results = await Promise.all(streams.map((s) => s.result));
    const byReason = new Map<string, number>();
    for (const r of results) byReason.set(r.finishReason, (byReason.get(r.finishReason) ?? 0) + 1);
    expect([...byReason.keys()].every((k) => k === "length" || k === "device_lost")).toBe(true);
    expect((byReason.get("length") ?? 0) + (byReason.get("device_lost") ?? 0)).toBe(40);
    for (const r of results) {
      if (r.finishReason === "length") expect(r.tokens).toHaveLength(300);
      else expect(r.tokens.length).toBeGreaterThan(0); // only streaming requests may be lost
    }
    const after = pool.stats();
    expect(after.deviceLost - before.deviceLost).toBe(byReason.get("device_lost") ?? 0);
    await until(() => pool.stats().slices[0]!.ready);
    expect(pool.stats().slices[0]!.restarts).toBeGreaterThan(victim.restarts);
    const again = await pool.generate({ ...request(9), slice: victim.slice }).result;
    expect(again.finishReason).toBe("length");
  });

  it("requests that had streamed nothing are resent to a live worker", async () => {
    const before = pool.stats();
    const victim = pool.stats().slices[1]!;
    // Queue far more than one worker runs at once so some are still waiting when it dies.
    const streams = Array.from({ length: 60 }, (_, i) => pool.generate({ ...request(i, 60), slice: undefined }));
    await until(() => streams.some((s) => s.streamed > 0));
    process.kill(victim.pid!, "SIGKILL");
    const results = await Promise.all(streams.map((s) => s.result));
    const resent = pool.stats().resent - before.resent;
    const lost = results.filter((r) => r.finishReason === "device_lost").length;
    expect(results.filter((r) => r.finishReason === "length").length + lost).toBe(60);
    expect(resent + lost).toBeGreaterThan(0);
    await until(() => pool.stats().slices[1]!.ready);
  });
});

describe("pool start", () => {
  it("a model that cannot load rejects start with ModelLoadError and leaves no worker", async () => {
    await expect(ModelPool.start({ model: "/nonexistent/model", slices: 2 })).rejects.toBeInstanceOf(ModelLoadError);
  });
});
