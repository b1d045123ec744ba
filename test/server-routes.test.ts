// The routes in-process (createServer, the plugin on a caller's own fastify
// app): streaming details the spawned-server suite does not time, and health
// judged on engine progress.
import Fastify from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createServer, loadModel, neoserveRoutes, ServingState, type Engine, type Model } from "../src/index.js";
import { hfDir } from "./helpers/paths.js";

let model: Model;
beforeAll(async () => {
  model = await loadModel(hfDir("tiny"), { backend: "cpu", threads: 1, scheduler: { maxBatchSize: 1 } });
});
afterAll(() => model.dispose());

// The SSE events of a streamed response, and its comments.
function events(body: string): { data: unknown[]; comments: string[] } {
  const data: unknown[] = [];
  const comments: string[] = [];
  for (const block of body.split("\n\n").filter(Boolean)) {
    if (block.startsWith(":")) comments.push(block);
    else if (block === "data: [DONE]") data.push("[DONE]");
    else data.push(JSON.parse(block.replace(/^data: /, "")));
  }
  return { data, comments };
}

describe("streaming", () => {
  it("n choices stream interleaved, each with its role chunk and finish chunk, then usage and [DONE]", async () => {
    const app = createServer({ models: { tiny: model }, logger: false });
    const res = await app.inject({
      method: "POST",
      url: "/v1/chat/completions",
      payload: { model: "tiny", messages: [{ role: "user", content: "Hi" }], max_tokens: 4, n: 3, seed: 1, stream: true, stream_options: { include_usage: true } },
    });
    await app.close();
    expect(res.statusCode).toBe(200);
    expect(res.headers["content-type"]).toMatch(/text\/event-stream/);
    const { data } = events(res.body);
    expect(data.at(-1)).toBe("[DONE]");
    const chunks = data.slice(0, -1) as { choices: { index: number; delta: { role?: string; content?: string }; finish_reason: string | null }[]; usage?: { completion_tokens: number } }[];
    for (const index of [0, 1, 2]) {
      const mine = chunks.flatMap((c) => c.choices.filter((ch) => ch.index === index));
      expect(mine[0]!.delta.role).toBe("assistant");
      expect(mine.at(-1)!.finish_reason).toBe("length");
    }
    expect(chunks.at(-1)!.choices).toEqual([]);
    expect(chunks.at(-1)!.usage!.completion_tokens).toBe(12);
  });

  it("a request waiting in the queue gets keep-alive comments", async () => {
    const app = createServer({ models: { tiny: model }, logger: false, keepAliveSeconds: 0.05 });
    await app.listen({ host: "127.0.0.1", port: 0 });
    const url = `http://127.0.0.1:${(app.server.address() as { port: number }).port}/v1/completions`;
    const body = (extra: object) => JSON.stringify({ model: "tiny", prompt: "Once", ignore_eos: true, stream: true, ...extra });
    try {
      // One sequence at a time: the second waits behind ~1000 tokens of the first.
      const first = fetch(url, { method: "POST", headers: { "content-type": "application/json" }, body: body({ max_tokens: 1000 }) }).then((r) => r.text());
      const second = await fetch(url, { method: "POST", headers: { "content-type": "application/json" }, body: body({ max_tokens: 2 }) }).then((r) => r.text());
      await first;
      expect(events(second).comments.length).toBeGreaterThan(0);
      expect(events(second).data.at(-1)).toBe("[DONE]");
    } finally {
      await app.close();
    }
  });
});

describe("health", () => {
  // An engine with a request in flight whose progress never moves.
  const stuck = (progress: { value: number }): Engine =>
    ({ info: model.info, stats: () => ({ inFlight: 1, progress: progress.value }) }) as unknown as Engine;

  it("is 503 naming an engine that has work and makes no progress, 200 again once it moves", () => {
    const state = new ServingState(100);
    const progress = { value: 5 };
    state.addModel("stuck", stuck(progress));
    expect(state.stalled(0)).toEqual([]);
    expect(state.stalled(50)).toEqual([]);
    expect(state.stalled(150)).toEqual(["stuck"]);
    progress.value = 6;
    expect(state.stalled(160)).toEqual([]);
  });

  it("an idle engine is healthy however long it idles", () => {
    const state = new ServingState(100);
    state.addModel("idle", { info: model.info, stats: () => ({ inFlight: 0, progress: 0 }) } as unknown as Engine);
    expect(state.stalled(0)).toEqual([]);
    expect(state.stalled(10_000)).toEqual([]);
  });
});

describe("the plugin on a caller's own fastify app", () => {
  it("mounts the routes beside the app's own, over the caller's engines", async () => {
    const app = Fastify({ logger: false });
    app.get("/own", async () => ({ own: true }));
    const state = new ServingState(30_000);
    state.addModel("tiny", model);
    state.setReady();
    await app.register(neoserveRoutes, { state, apiKeys: ["k"] });
    const own = await app.inject({ method: "GET", url: "/own" });
    expect(own.json()).toEqual({ own: true });
    const models = await app.inject({ method: "GET", url: "/v1/models", headers: { authorization: "Bearer k" } });
    expect(models.json().data[0].id).toBe("tiny");
    const done = await app.inject({ method: "POST", url: "/v1/completions", headers: { authorization: "Bearer k" }, payload: { model: "tiny", prompt: "a", max_tokens: 2 } });
    expect(done.json()).toMatchObject({ object: "text_completion", usage: { completion_tokens: 2 } });
    await app.close();
  });
});
