// RemoteBackend: an Engine over another server's OpenAI API. Against a spawned
// neoserve (the same text as the model in-process, cancellation reaching the
// remote engine) and against a stub that fails in each way a remote can.
import { spawn } from "node:child_process";
import { connect, type Socket } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { InvalidRequestError, ProviderUnavailableError, QueueFullError } from "../src/errors.js";
import { loadModel, type Model } from "../src/index.js";
import { RemoteBackend } from "../src/router/remote-backend.js";
import { startFaultStub, type FaultStub } from "./helpers/fault-stub.js";
import { hfDir } from "./helpers/paths.js";
import { spawnServer, type SpawnedServer } from "./helpers/spawn-server.js";
import { until } from "./helpers/waiting.js";

// Listens with a queue of one and then blocks its own thread (no CPU spent), so it never accepts.
const DEAF_LISTENER = `const s = require("node:net").createServer();
s.listen({ port: 0, host: "127.0.0.1", backlog: 1 }, () => {
  process.stdout.write(String(s.address().port)); // synchronous to a pipe
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 60000);
});`;

let server: SpawnedServer;
let model: Model;
let remote: RemoteBackend;

beforeAll(async () => {
  [server, model] = await Promise.all([spawnServer(["--model", `tiny=${hfDir("tiny")}`, "--threads", "1"]), loadModel(hfDir("tiny"), { backend: "cpu", threads: 1 })]);
  remote = new RemoteBackend({ baseUrl: server.url, model: "tiny", healthIntervalMs: 0 });
}, 90_000);
afterAll(async () => {
  await remote.dispose();
  await model.dispose();
  server.proc.kill("SIGTERM");
  expect(await server.exited).toBe(0);
});

async function running(): Promise<number> {
  const text = await (await fetch(`${server.url}/metrics`)).text();
  return Number(/^neoserve_running_sequences\{[^}]*\} (\S+)$/m.exec(text)?.[1]);
}

describe("RemoteBackend over a neoserve server", () => {
  it("streams the same greedy text as the model in-process, with usage and timings", async () => {
    for (const request of [
      { tokens: [1, 5, 9, 2, 7], maxTokens: 16, temperature: 0, ignoreEos: true },
      { messages: [{ role: "user" as const, content: "Hello there" }], maxTokens: 12, temperature: 0 },
      { prompt: "Once upon a time", maxTokens: 10, temperature: 0, stop: ["zz"] },
    ]) {
      const here = await model.generate(request).result;
      const stream = remote.generate(request);
      let streamed = "";
      for await (const token of stream) {
        expect(token.id).toBe(-1);
        streamed += token.text;
      }
      const there = await stream.result;
      expect(there.text).toBe(here.text);
      expect(streamed).toBe(here.text);
      expect(there.finishReason).toBe(here.finishReason);
      expect(there.usage).toEqual(here.usage);
      expect(there.timings.timeToFirstTokenMs).toBeGreaterThan(0);
    }
    expect(remote.stats()).toMatchObject({ inFlight: 0, available: true, breaker: "closed" });
    expect(remote.stats().predictedWaitMs).toBeGreaterThan(0);
  });

  it("tokenizes and detokenizes as the model does; its health check reads max_model_len", async () => {
    expect(Array.from(await remote.tokenize({ prompt: "Hello world" }))).toEqual(Array.from(await model.tokenize({ prompt: "Hello world" })));
    expect(await remote.detokenize([5, 6, 7])).toBe(await model.detokenize([5, 6, 7]));
    expect(await remote.checkHealth()).toBe(true);
    expect(remote.info.maxContext).toBe(model.info.maxContext);
  });

  it("cancel() mid-stream ends the request in the remote engine", async () => {
    const stream = remote.generate({ tokens: [3, 4, 5], maxTokens: 5000, ignoreEos: true });
    for await (const _ of stream) break; // the first token, then cancel (breaking the loop cancels)
    const result = await stream.result;
    expect(result.finishReason).toBe("cancelled");
    const deadline = Date.now() + 10_000;
    while ((await running()) !== 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(await running()).toBe(0);
  });

  it("refuses at once what it cannot carry", () => {
    expect(() => remote.generate({ prompt: "x", logprobs: 2 })).toThrow(InvalidRequestError);
    expect(() => remote.generate({ prompt: "x", returnLogits: true })).toThrow(/returnLogits is not available through a remote backend/);
    expect(() => remote.generate({ prompt: 5 } as never)).toThrow(InvalidRequestError);
  });

  it("a remote's 400 is the caller's InvalidRequestError", async () => {
    const stream = remote.generate({ tokens: [1, 2], maxTokens: 4, temperature: -3 });
    await expect(stream.accepted).rejects.toThrow(InvalidRequestError);
    expect((await stream.result).finishReason).toBe("error");
  });
});

describe("RemoteBackend against a failing remote", () => {
  let stub: FaultStub;
  beforeAll(async () => {
    stub = await startFaultStub();
  });
  afterAll(() => stub.close());

  const backend = (over: object = {}) => new RemoteBackend({ baseUrl: stub.url, model: "stub", healthIntervalMs: 0, ...over });

  it("streams a healthy answer, chat and completions", async () => {
    stub.mode = "ok";
    const b = backend();
    for (const request of [{ prompt: "hi" }, { messages: [{ role: "user" as const, content: "hi" }] }]) {
      const r = await b.generate({ ...request, maxTokens: 4 }).result;
      expect(r).toMatchObject({ text: "Hello, world!", finishReason: "length", usage: { promptTokens: 7, completionTokens: 4 } });
    }
    expect(stub.requests.at(-1)).toMatchObject({ path: "/v1/chat/completions", body: { model: "stub", stream: true, max_tokens: 4 } });
    await b.dispose();
  });

  const failures: [string, FaultStub["mode"], object, (s: ReturnType<RemoteBackend["generate"]>) => Promise<void>][] = [
    ["a 500 is a refusal: ProviderUnavailableError", "500", {}, async (s) => {
      await expect(s.accepted).rejects.toThrow(ProviderUnavailableError);
      expect((await s.result).error).toMatch(/answered 500: stub says 500/);
    }],
    ["a 429 is a full queue", "429", {}, async (s) => {
      await expect(s.accepted).rejects.toThrow(QueueFullError);
      expect((await s.result).finishReason).toBe("queue_full");
    }],
    ["no first token within the timeout (keep-alives do not count)", "no-first-token", { firstTokenTimeoutMs: 300 }, async (s) => {
      const r = await s.result;
      expect(r).toMatchObject({ finishReason: "error", tokens: [] });
      expect(r.error).toMatch(/no first token within 300 ms/);
    }],
    ["a connection dropped mid-stream ends it with the tokens so far", "drop-mid-stream", {}, async (s) => {
      await s.accepted;
      const r = await s.result;
      expect(r).toMatchObject({ finishReason: "error", text: "Hello," });
    }],
    ["an error chunk after the 200 ends it with that error", "error-chunk", {}, async (s) => {
      const r = await s.result;
      expect(r).toMatchObject({ finishReason: "error", text: "Hel" });
      expect(r.error).toMatch(/the engine failed/);
    }],
    ["a stream that ends with no finish reason is an error", "no-finish", {}, async (s) => {
      expect((await s.result).error).toMatch(/ended without a finish reason/);
    }],
  ];
  it.each(failures)("%s", async (_what, mode, options, check) => {
    stub.mode = mode;
    const b = backend(options);
    const t0 = performance.now();
    await check(b.generate({ prompt: "hi", maxTokens: 4 }));
    expect(performance.now() - t0).toBeLessThan(5000);
    expect(b.stats().inFlight).toBe(0);
    await b.dispose();
  });

  it("a stream idle past idleTimeoutMs after its first token ends with the timeout as its reason, within bounds", async () => {
    stub.mode = "stall-after-first-token";
    const b = backend({ idleTimeoutMs: 300 });
    const t0 = performance.now();
    const s = b.generate({ prompt: "hi", maxTokens: 4 });
    await s.accepted;
    const r = await s.result;
    const elapsed = performance.now() - t0;
    expect(r).toMatchObject({ finishReason: "error", text: "Hello" });
    expect(r.error).toMatch(/idle for 300 ms \(idle timeout\)/);
    expect(elapsed).toBeGreaterThanOrEqual(250); // not before the silence lasted the timeout (timer slack aside)
    expect(elapsed).toBeLessThan(10_000);
    expect(b.stats()).toMatchObject({ inFlight: 0, breaker: "closed" }); // after a first token: no mark against the remote
    await b.dispose();
  });

  it("a server that is not there: a refusal within the connect timeout", async () => {
    const b = new RemoteBackend({ baseUrl: "http://127.0.0.1:1", model: "x", healthIntervalMs: 0 });
    const s = b.generate({ prompt: "hi" });
    await expect(s.accepted).rejects.toThrow(ProviderUnavailableError);
    expect(await b.checkHealth()).toBe(false);
    expect(b.stats().available).toBe(false);
    await b.dispose();
  });

  it("a server that accepts no connection: a refusal when the connect timeout passes", async () => {
    // A listener whose process never accepts: once its small queue is full, the kernel drops new handshakes.
    const deaf = spawn(process.execPath, ["-e", DEAF_LISTENER], { stdio: ["ignore", "pipe", "inherit"] });
    const fillers: Socket[] = [];
    let b: RemoteBackend | undefined;
    try {
      const port = Number(
        await new Promise<string>((resolve, reject) => {
          deaf.stdout!.once("data", (d: Buffer) => resolve(d.toString()));
          setTimeout(() => reject(new Error("the listener gave no port in 10 s")), 10_000);
        }),
      );
      for (let i = 0; i < 8; i++) {
        const socket = connect(port, "127.0.0.1").on("error", () => {}); // reset when the listener dies
        fillers.push(socket);
        const joined = await new Promise<boolean>((resolve) => {
          socket.once("connect", () => resolve(true));
          setTimeout(() => resolve(false), 300);
        });
        if (!joined) break; // the queue is full: handshakes now hang
      }
      b = new RemoteBackend({ baseUrl: `http://127.0.0.1:${port}`, model: "x", healthIntervalMs: 0, connectTimeoutMs: 400 });
      const t0 = performance.now();
      const s = b.generate({ prompt: "hi" });
      const err = await s.accepted.then(() => undefined, (e: unknown) => e);
      const elapsed = performance.now() - t0;
      expect(err).toBeInstanceOf(ProviderUnavailableError);
      expect((err as Error).message).toMatch(/connect/i);
      expect(elapsed).toBeGreaterThanOrEqual(350); // the timeout, not a refusal
      expect(elapsed).toBeLessThan(5000);
      expect((await s.result).finishReason).toBe("error");
    } finally {
      await b?.dispose();
      for (const f of fillers) f.destroy();
      deaf.kill("SIGKILL");
    }
  });

  it("keeps at most `connections` connections open; requests beyond wait for one", async () => {
    stub.mode = "ok";
    const quiet = await startFaultStub(); // its own counts
    const b = new RemoteBackend({ baseUrl: quiet.url, model: "stub", healthIntervalMs: 0, connections: 2 });
    try {
      const results = await Promise.all(Array.from({ length: 8 }, () => b.generate({ prompt: "x", maxTokens: 4 }).result));
      expect(results.map((r) => r.finishReason)).toEqual(Array(8).fill("length"));
      expect(quiet.requests.length).toBe(8);
      expect(quiet.sockets.peak).toBe(2);
      expect(quiet.sockets.total).toBe(2); // kept alive and reused
    } finally {
      await b.dispose();
      await quiet.close();
    }
  });

  it("checks its health on a timer while idle: down, it is unavailable without a request sent; back, it is available", async () => {
    stub.mode = "ok";
    const b = backend({ healthIntervalMs: 50 });
    const sent = stub.requests.length;
    const checks = stub.healthChecks;
    stub.healthy = false;
    try {
      await until(() => !b.stats().healthy, 5000);
      expect(b.stats()).toMatchObject({ healthy: false, available: false, breaker: "closed" });
      expect(stub.healthChecks).toBeGreaterThan(checks);
      stub.healthy = true;
      await until(() => b.stats().healthy, 5000);
      expect(b.stats().available).toBe(true);
      expect(stub.requests.length).toBe(sent); // health alone: no completion was sent to find out
    } finally {
      stub.healthy = true;
      await b.dispose();
    }
    await new Promise((r) => setTimeout(r, 100)); // a check already sent when it was disposed may still land
    const after = stub.healthChecks;
    await new Promise((r) => setTimeout(r, 300));
    expect(stub.healthChecks).toBe(after); // disposed: the timer stopped
  });

  it("the circuit breaker opens after consecutive failures, refuses without sending, then lets one probe through", async () => {
    const b = backend({ breaker: { failures: 2, cooldownMs: 300 } });
    stub.mode = "500";
    for (let i = 0; i < 2; i++) await b.generate({ prompt: "hi" }).result;
    expect(b.stats()).toMatchObject({ breaker: "open", available: false });
    const sent = stub.requests.length;
    const refused = b.generate({ prompt: "hi" });
    await expect(refused.accepted).rejects.toThrow(/circuit breaker open/);
    expect(stub.requests.length).toBe(sent);
    await new Promise((r) => setTimeout(r, 350));
    expect(b.stats().breaker).toBe("half-open");
    stub.mode = "ok";
    expect((await b.generate({ prompt: "hi" }).result).finishReason).toBe("length");
    expect(b.stats()).toMatchObject({ breaker: "closed", available: true });
    await b.dispose();
  });

  it("a half-open probe that is cancelled frees the breaker for the next probe", async () => {
    const b = backend({ breaker: { failures: 1, cooldownMs: 100 } });
    stub.mode = "500";
    await b.generate({ prompt: "hi" }).result;
    await new Promise((r) => setTimeout(r, 120));
    stub.mode = "no-first-token";
    const probe = b.generate({ prompt: "hi" });
    await new Promise((r) => setTimeout(r, 50));
    expect(b.stats().available).toBe(false); // the probe is out
    probe.cancel();
    await probe.result;
    expect(b.stats()).toMatchObject({ breaker: "half-open", available: true });
    await b.dispose();
  });

  it("cancel() before the answer ends it cancelled", async () => {
    stub.mode = "no-first-token";
    const b = backend();
    const s = b.generate({ prompt: "hi" });
    s.cancel();
    expect((await s.result).finishReason).toBe("cancelled");
    await b.dispose();
  });
});
