// Router: one alias over a local Model, a second neoserve process standing in
// for the cloud, and a stub that fails on demand. Where a request went is
// checked from the remote's own request log, not the router's word.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { predictStepMs } from "../src/engine.js";
import { InvalidRequestError, ProviderUnavailableError } from "../src/errors.js";
import { loadModel, type Model } from "../src/index.js";
import { RemoteBackend } from "../src/router/remote-backend.js";
import { type Backend, type RouteInfo, Router, type ShadowReport } from "../src/router/router.js";
import { parseRules } from "../src/router/rules.js";
import type { GenerateRequest, GenerateResult } from "../src/types.js";
import { startFaultStub, type FaultStub } from "./helpers/fault-stub.js";
import { hfDir } from "./helpers/paths.js";
import { until } from "./helpers/waiting.js";
import { spawnServer, type SpawnedServer } from "./helpers/spawn-server.js";

let cloudServer: SpawnedServer;
let stub: FaultStub;
let model: Model;
let cloud: RemoteBackend;
let flaky: RemoteBackend;
const ALL = ["private", "internal", "public"] as const;

beforeAll(async () => {
  [cloudServer, model, stub] = await Promise.all([
    spawnServer(["--model", `tiny=${hfDir("tiny")}`, "--threads", "1"]),
    loadModel(hfDir("tiny"), { backend: "cpu", threads: 1, scheduler: { maxBatchSize: 1 } }),
    startFaultStub(),
  ]);
  cloud = new RemoteBackend({ baseUrl: cloudServer.url, model: "tiny", healthIntervalMs: 0 });
  flaky = new RemoteBackend({ baseUrl: stub.url, model: "stub", healthIntervalMs: 0, breaker: { failures: 1000 } });
  // The local step-time model fits after a few steps of different sizes.
  for (const n of [2, 9, 4, 17, 6, 30, 3, 12, 8, 20]) await model.generate({ tokens: Array.from({ length: n }, (_, i) => i + 1), maxTokens: 2 }).result;
}, 90_000);
afterAll(async () => {
  await Promise.all([cloud.dispose(), flaky.dispose(), model.dispose(), stub.close()]);
  cloudServer.proc.kill("SIGTERM");
  expect(await cloudServer.exited).toBe(0);
});

const completionsAtCloud = () => cloudServer.logs.filter((l) => l.msg === "completion").length;
const local = (): Backend => ({ name: "cpu", engine: model, where: "local", privacy: ALL, price: { perHour: 0.05 } });
const remote = (engine: RemoteBackend, name = "cloud"): Backend => ({ name, engine, where: "remote", privacy: ALL, price: { per1kPrompt: 0.5, per1kCompletion: 1.5 } });

describe("Router", () => {
  it("never sends a private request to a remote, whatever the rules say", async () => {
    const routed: RouteInfo[] = [];
    const router = new Router({ alias: "chat", backends: [remote(cloud), local()], rules: parseRules([{ route: "remote" }], "rules", ["cpu", "cloud"]), onRouted: (r) => routed.push(r) });
    const before = completionsAtCloud();
    const publicOne = await router.generate({ prompt: "to the cloud", maxTokens: 3, route: { privacy: "public" } }).result;
    expect(publicOne.finishReason).toBe("length");
    await new Promise((r) => setTimeout(r, 100)); // the remote logs a completion as its response ends
    expect(completionsAtCloud()).toBe(before + 1);
    for (let i = 0; i < 5; i++) {
      const s = router.generate({ prompt: `secret ${i}`, maxTokens: 3, route: { privacy: "private" } });
      await s.result;
      expect(s.route).toMatchObject({ backend: "cpu", privacy: "private" });
    }
    await new Promise((r) => setTimeout(r, 100));
    expect(completionsAtCloud()).toBe(before + 1);
    expect(routed.map((r) => r.backend)).toEqual(["cloud", "cpu", "cpu", "cpu", "cpu", "cpu"]);
  });

  it("moves traffic to the remote as the local queue fills past the latency budget, and back", async () => {
    stub.mode = "ok";
    await flaky.generate({ prompt: "warm" }).result; // the remote's observed TTFT
    const router = new Router({ alias: "chat", backends: [local(), remote(flaky)] });
    const ask = () => router.plan({ prompt: "hello", maxTokens: 8, route: { latencyBudgetMs: 150 } });
    expect(ask()).toMatchObject({ order: ["cpu", "cloud"], reason: "cheapest within budget" });
    // One long request runs (batch of 1) and four wait behind it.
    const hogs = Array.from({ length: 5 }, () => model.generate({ tokens: [1, 2, 3], maxTokens: 4000, ignoreEos: true }));
    const deadline = Date.now() + 10_000;
    while ((model.stats().predictedWaitMs ?? 0) <= 150 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    expect(model.stats().predictedWaitMs).toBeGreaterThan(150);
    expect(ask().order[0]).toBe("cloud");
    const served = router.generate({ prompt: "hello", maxTokens: 8, route: { latencyBudgetMs: 150 } });
    expect((await served.result).text).toBe("Hello, world!");
    expect(served.route.backend).toBe("cloud");
    hogs.forEach((h) => h.cancel());
    await Promise.all(hogs.map((h) => h.result));
    expect(model.stats().predictedWaitMs).toBe(0);
    expect(ask().order[0]).toBe("cpu");
  });

  it("falls back before the first token without the caller seeing it", async () => {
    stub.mode = "500";
    const router = new Router({ alias: "chat", backends: [remote(flaky, "flaky"), local()], rules: parseRules([{ route: ["flaky"] }], "rules", ["flaky", "cpu"]) });
    const direct = await model.generate({ prompt: "fallback", maxTokens: 6, temperature: 0 }).result;
    const s = router.generate({ prompt: "fallback", maxTokens: 6, temperature: 0 });
    const result = await s.result;
    expect(result.text).toBe(direct.text);
    expect(result.finishReason).toBe("length");
    expect(s.route).toMatchObject({ backend: "cpu", attempts: 2, reason: "fallback from flaky" });
  });

  it("a backend that accepts (its 200) and fails before its first token: the caller is accepted only by the one that serves", async () => {
    stub.mode = "drop-before-first-token";
    const router = new Router({ alias: "chat", backends: [remote(flaky, "flaky"), local()], rules: parseRules([{ route: ["flaky"] }], "rules", ["flaky", "cpu"]) });
    const sent = stub.requests.length;
    const s = router.generate({ prompt: "late failure", maxTokens: 4, temperature: 0 });
    await s.accepted;
    expect(s.route).toMatchObject({ backend: "cpu", attempts: 2, reason: "fallback from flaky" }); // as it stood when accepted
    expect(stub.requests.length).toBe(sent + 1);
    expect((await s.result).finishReason).toBe("length");
  });

  it.each(["429", "503"] as const)("falls back on a remote's refusal for overload (%s)", async (mode) => {
    stub.mode = mode;
    const router = new Router({ alias: "chat", backends: [remote(flaky, "flaky"), local()], rules: parseRules([{ route: ["flaky"] }], "rules", ["flaky", "cpu"]) });
    const direct = await model.generate({ prompt: "overload", maxTokens: 4, temperature: 0 }).result;
    const sent = stub.requests.length;
    const s = router.generate({ prompt: "overload", maxTokens: 4, temperature: 0 });
    const result = await s.result;
    expect(result).toMatchObject({ finishReason: "length", text: direct.text });
    expect(s.route).toMatchObject({ backend: "cpu", attempts: 2, reason: "fallback from flaky" });
    expect(stub.requests.length).toBe(sent + 1);
    expect(flaky.stats().breaker).toBe("closed"); // an overloaded remote is not a broken one
  });

  it("falls back past a backend whose breaker opened after the decision, and routes around it once open", async () => {
    stub.mode = "500";
    const fragile = new RemoteBackend({ baseUrl: stub.url, model: "stub", healthIntervalMs: 0, breaker: { failures: 1, cooldownMs: 60_000 } });
    // Two names for the one remote: the first's failure opens the breaker the second then meets.
    const router = new Router({
      alias: "chat",
      backends: [remote(fragile, "a"), remote(fragile, "b"), local()],
      rules: parseRules([{ route: ["a", "b"] }], "rules", ["a", "b", "cpu"]),
    });
    const sent = stub.requests.length;
    const s = router.generate({ prompt: "breaker", maxTokens: 3 });
    expect((await s.result).finishReason).toBe("length");
    expect(s.route).toMatchObject({ backend: "cpu", attempts: 3, reason: "fallback from b" });
    expect(stub.requests.length).toBe(sent + 1); // b's breaker refused without sending
    expect(fragile.stats()).toMatchObject({ breaker: "open", available: false });
    const next = router.generate({ prompt: "breaker", maxTokens: 3 });
    expect((await next.result).finishReason).toBe("length");
    expect(next.route).toMatchObject({ backend: "cpu", attempts: 1 });
    expect(stub.requests.length).toBe(sent + 1);
    await fragile.dispose();
  });

  it("tries at most maxAttempts backends", async () => {
    stub.mode = "500";
    const flaky2 = new RemoteBackend({ baseUrl: stub.url, model: "stub", healthIntervalMs: 0, breaker: { failures: 1000 } });
    const routed: RouteInfo[] = [];
    const router = new Router({
      alias: "chat",
      backends: [remote(flaky, "flaky"), remote(flaky2, "flaky2"), local()],
      rules: parseRules([{ route: ["flaky", "flaky2"] }], "rules", ["flaky", "flaky2", "cpu"]),
      maxAttempts: 2,
      onRouted: (r) => routed.push(r),
    });
    const sent = stub.requests.length;
    const s = router.generate({ prompt: "bounded", maxTokens: 3 });
    await expect(s.accepted).rejects.toThrow(ProviderUnavailableError);
    expect(await s.result).toMatchObject({ finishReason: "error", tokens: [] });
    expect(s.route.attempts).toBe(2);
    expect(["flaky", "flaky2"]).toContain(s.route.backend); // the two remotes, in the decision's order; the local model never tried
    expect(stub.requests.length).toBe(sent + 2);
    await until(() => routed.length === 1);
    expect(routed[0]).toMatchObject({ backend: s.route.backend, attempts: 2 });
    await flaky2.dispose();
  });

  it("a local engine that judges the deadline out of its reach hands the request on; when every backend does, that is the ending", async () => {
    stub.mode = "ok";
    // The engine judges deadlines from its fitted step time: warm it until it has one (a loaded machine's noisy steps may have unset it).
    for (let i = 0; i < 40 && !model.stats().stepTime; i++)
      await model.generate({ tokens: Array.from({ length: 2 + ((i * 7) % 29) }, (_, j) => j + 1), maxTokens: 2 }).result;
    const fit = model.stats().stepTime;
    if (!fit) return expect.fail("the engine fitted no step time after 40 requests");
    const maxTokens = model.info.maxContext - 8;
    // Half of what the engine itself predicts for the decode: it refuses at admission, before any token; the stub's few tokens fit.
    const deadlineMs = (maxTokens * predictStepMs(fit, 1, maxTokens / 2)) / 2;
    const rules = parseRules([{ route: ["cpu"] }], "rules", ["cpu", "flaky"]);
    const router = new Router({ alias: "chat", backends: [local(), remote(flaky, "flaky")], rules });
    const s = router.generate({ prompt: "in time?", maxTokens, ignoreEos: true, deadlineMs });
    expect(await s.result).toMatchObject({ finishReason: "length", text: "Hello, world!" });
    expect(s.route).toMatchObject({ backend: "flaky", attempts: 2, reason: "fallback from cpu" });
    expect(model.stats().endedEarly.deadline_unmeetable).toBeGreaterThan(0);

    const alone = new Router({ alias: "chat", backends: [local()] }).generate({ prompt: "in time?", maxTokens, ignoreEos: true, deadlineMs });
    expect(await alone.result).toMatchObject({ finishReason: "deadline_unmeetable", tokens: [] });
  });

  it("after the first token, a failing backend's stream ends with its reason", async () => {
    stub.mode = "drop-mid-stream";
    const router = new Router({ alias: "chat", backends: [remote(flaky, "flaky"), local()], rules: parseRules([{ route: ["flaky"] }], "rules", ["flaky", "cpu"]) });
    const s = router.generate({ prompt: "x", maxTokens: 6 });
    const result = await s.result;
    expect(result).toMatchObject({ finishReason: "error", text: "Hello," });
    expect(s.route).toMatchObject({ backend: "flaky", attempts: 1 });
  });

  it("refuses with provider_unavailable when every backend tried fails, and when none is eligible", async () => {
    stub.mode = "500";
    const onlyRemote = new Router({ alias: "chat", backends: [remote(flaky, "flaky")] });
    const s = onlyRemote.generate({ prompt: "all fail" });
    await expect(s.accepted).rejects.toThrow(ProviderUnavailableError);
    const privateOne = onlyRemote.generate({ prompt: "all fail", route: { privacy: "private" } });
    await expect(privateOne.accepted).rejects.toThrow(/no eligible backend \(flaky: private requests stay local\)/);
    expect(stub.requests.filter((r) => r.body.prompt === "all fail").length).toBe(1);
  });

  it("says it is degraded when every remote is down, and serves locally", async () => {
    const down = new RemoteBackend({ baseUrl: "http://127.0.0.1:1", model: "x", healthIntervalMs: 0 });
    await down.checkHealth();
    const router = new Router({ alias: "chat", backends: [remote(down), local()] });
    const s = router.generate({ prompt: "x", maxTokens: 2 });
    expect((await s.result).finishReason).toBe("length");
    expect(s.route).toMatchObject({ backend: "cpu", degraded: true });
    await down.dispose();
  });

  it("a backend's verdict that the request is invalid is the caller's error, not a retry; the tenant goes along to the backend", async () => {
    const router = new Router({ alias: "chat", backends: [remote(cloud), local()], rules: parseRules([{ route: ["cloud"] }], "rules", ["cloud", "cpu"]) });
    const s = router.generate({ tokens: [1, 2], maxTokens: 4, temperature: 5 }); // the remote's schema allows 0-2
    await expect(s.accepted).rejects.toThrow(InvalidRequestError);
    expect(s.route.attempts).toBe(1);
    const seen: GenerateRequest[] = [];
    const spy: Backend = { ...local(), engine: Object.assign(Object.create(model) as Model, { generate: (r: GenerateRequest) => (seen.push(r), model.generate(r)) }) };
    await new Router({ alias: "chat", backends: [spy] }).generate({ prompt: "x", maxTokens: 2, route: { tenant: "acme", user: "u1" } }).result;
    expect(seen[0]!.route).toMatchObject({ tenant: "acme", user: "u1" });
  });

  it("throws at once what no backend would take; cancel() reaches the backend", async () => {
    const router = new Router({ alias: "chat", backends: [local()] });
    expect(() => router.generate({ prompt: "x", temperature: -1 })).toThrow(InvalidRequestError);
    expect(() => router.generate({ prompt: 3 } as never)).toThrow(InvalidRequestError);
    const s = router.generate({ tokens: [1, 2], maxTokens: 4000, ignoreEos: true });
    for await (const _ of s) break;
    const r: GenerateResult = await s.result;
    expect(r.finishReason).toBe("cancelled");
    expect(model.stats()).toMatchObject({ running: 0, waiting: 0 });
    expect(router.stats().inFlight).toBe(0);
  });

  it("splits a canary within ±3% over 2,000 callers, the same caller always on the same side", () => {
    const router = new Router({ alias: "chat", backends: [local(), remote(cloud)], canary: { backend: "cloud", percent: 20 } });
    let canary = 0;
    for (let i = 0; i < 2000; i++) {
      const plan = router.plan({ prompt: "x", route: { tenant: "t", user: `user-${i}` } });
      if (plan.order[0] === "cloud") {
        canary++;
        expect(plan.reason).toBe("canary");
      } else expect(plan.order).not.toContain("cloud"); // the rest never go there
    }
    expect(Math.abs(canary / 2000 - 0.2)).toBeLessThanOrEqual(0.03);
    for (const user of ["user-1", "user-7", "user-42"]) {
      const first = router.plan({ prompt: "x", route: { tenant: "t", user } }).order[0];
      for (let k = 0; k < 20; k++) expect(router.plan({ prompt: "y", route: { tenant: "t", user } }).order[0]).toBe(first);
    }
    // A private caller in the canary group still stays local.
    const privateOnes = Array.from({ length: 200 }, (_, i) => router.plan({ prompt: "x", route: { tenant: "t", user: `user-${i}`, privacy: "private" } }).order);
    expect(privateOnes.every((o) => o.join() === "cpu")).toBe(true);
  });

  it("a shadow gets a copy of the request: the caller's text and latency do not change, agreement is reported", async () => {
    const reports: ShadowReport[] = [];
    const request = { tokens: [4, 8, 15, 16, 23, 42], maxTokens: 8, temperature: 0 };
    const alone = new Router({ alias: "chat", backends: [local()] });
    const baseline = await alone.generate(request).result;

    // The same model behind the remote: the copy agrees exactly.
    const same = new Router({ alias: "chat", backends: [local()], shadow: { backend: remote(cloud), percent: 100 }, onShadow: (r) => reports.push(r) });
    const withShadow = await same.generate(request).result;
    expect(withShadow.text).toBe(baseline.text);
    const deadline = Date.now() + 10_000;
    while (reports.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(reports[0]).toMatchObject({ backend: "cloud", outcome: "compared", agreement: 1 });

    // A shadow that never answers: the caller's request ends in its usual time all the same.
    stub.mode = "no-first-token";
    const hung = new RemoteBackend({ baseUrl: stub.url, model: "stub", healthIntervalMs: 0, firstTokenTimeoutMs: 3000 });
    const slow = new Router({ alias: "chat", backends: [local()], shadow: { backend: remote(hung, "hung"), percent: 100 }, onShadow: (r) => reports.push(r) });
    const copies = stub.requests.length;
    const t0 = performance.now();
    const r = await slow.generate(request).result;
    expect(performance.now() - t0).toBeLessThan(1000);
    expect(r.text).toBe(baseline.text);
    await until(() => stub.requests.length === copies + 1); // the copy reached the shadow
    // A private request is never copied to a remote shadow.
    const sent = stub.requests.length;
    await slow.generate({ ...request, route: { privacy: "private" } }).result;
    await new Promise((res) => setTimeout(res, 100));
    expect(stub.requests.length).toBe(sent);
    await hung.dispose(); // ends the hung copy
    while (reports.length < 2 && Date.now() < deadline) await new Promise((res) => setTimeout(res, 20));
    expect(reports[1]).toMatchObject({ backend: "hung", outcome: "shadow_failed" });
  });
});
