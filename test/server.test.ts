// `neoserve serve` through the official openai client and raw HTTP, against a
// spawned server on 127.0.0.1: the API, its errors as the client's own typed
// errors, cancellation by a client that goes away, draining on SIGTERM, and a
// table of hostile bodies, each answered in bounded time.
import OpenAI, { APIError, AuthenticationError, BadRequestError, NotFoundError } from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { hfDir } from "./helpers/paths.js";
import { spawnServer, type SpawnedServer } from "./helpers/spawn-server.js";

const KEY = "test-key-0123456789";
let server: SpawnedServer;
let client: OpenAI;

beforeAll(async () => {
  server = await spawnServer(["--model", `tiny=${hfDir("tiny")}`, "--threads", "1", "--api-key", KEY, "--body-limit", String(256 << 10)]);
  client = new OpenAI({ apiKey: KEY, baseURL: `${server.url}/v1`, maxRetries: 0, timeout: 30_000 });
}, 90_000);
afterAll(async () => {
  server.proc.kill("SIGTERM");
  expect(await server.exited).toBe(0);
});

const chat = (content: string) => [{ role: "user" as const, content }];
const post = (path: string, body: string, headers: Record<string, string> = {}) =>
  fetch(`${server.url}${path}`, { method: "POST", headers: { authorization: `Bearer ${KEY}`, "content-type": "application/json", ...headers }, body, signal: AbortSignal.timeout(20_000) });

// The engine's own gauges for the model, from /metrics.
async function gauges(): Promise<Record<string, number>> {
  const text = await (await fetch(`${server.url}/metrics`, { headers: { authorization: `Bearer ${KEY}` } })).text();
  const out: Record<string, number> = {};
  for (const m of text.matchAll(/^(neoserve_\w+)\{[^}]*model="tiny"[^}]*\} (\S+)$/gm)) out[m[1]!] = Number(m[2]);
  return out;
}

describe("the OpenAI API", () => {
  it("chat: streamed and not, the same seed gives the same text, with usage and server timings", async () => {
    const once = await client.chat.completions.create({ model: "tiny", messages: chat("Hello"), max_tokens: 12, seed: 42, temperature: 0.8 });
    expect(once.object).toBe("chat.completion");
    expect(once.choices[0]!.message.role).toBe("assistant");
    expect(once.choices[0]!.finish_reason).toBe("length");
    expect(once.usage).toMatchObject({ completion_tokens: 12 });
    expect(once.usage!.prompt_tokens).toBeGreaterThan(3);
    const timings = (once as unknown as { neoserve: { timings: Record<string, number> } }).neoserve.timings;
    expect(timings.time_to_first_token_ms).toBeGreaterThan(0);
    expect(timings.total_ms).toBeGreaterThanOrEqual(timings.time_to_first_token_ms!);

    const stream = await client.chat.completions.create({ model: "tiny", messages: chat("Hello"), max_tokens: 12, seed: 42, temperature: 0.8, stream: true, stream_options: { include_usage: true } });
    let text = "";
    let role: string | undefined;
    let finish: string | null | undefined;
    let usage: OpenAI.CompletionUsage | undefined;
    for await (const chunk of stream) {
      if (chunk.usage) {
        usage = chunk.usage;
        expect(chunk.choices).toEqual([]);
      }
      const c = chunk.choices[0];
      role ??= c?.delta?.role;
      text += c?.delta?.content ?? "";
      finish = c?.finish_reason ?? finish;
    }
    expect(role).toBe("assistant");
    expect(text).toBe(once.choices[0]!.message.content);
    expect(finish).toBe("length");
    expect(usage).toEqual(once.usage);
  });

  it("completions: a string, a list of strings, token ids; n choices; stop", async () => {
    const two = await client.completions.create({ model: "tiny", prompt: ["Once upon", "The quick"], max_tokens: 5, n: 2, seed: 7 });
    expect(two.choices.map((c) => c.index)).toEqual([0, 1, 2, 3]);
    expect(two.usage!.completion_tokens).toBe(20);
    const ids = await (await post("/tokenize", JSON.stringify({ model: "tiny", prompt: "Once upon" }))).json() as { tokens: number[]; count: number };
    expect(ids.count).toBe(ids.tokens.length);
    const fromIds = await client.completions.create({ model: "tiny", prompt: ids.tokens, max_tokens: 5, seed: 7 });
    expect(fromIds.choices[0]!.text).toBe(two.choices[0]!.text); // seed 7 is choice 0's
    const detok = await (await post("/detokenize", JSON.stringify({ model: "tiny", tokens: ids.tokens }))).json() as { prompt: string };
    expect(detok.prompt).toBe("Once upon");
    const free = await client.completions.create({ model: "tiny", prompt: "Once upon", max_tokens: 40, temperature: 0 });
    const stop = free.choices[0]!.text.slice(3, 6);
    const stopped = await client.completions.create({ model: "tiny", prompt: "Once upon", max_tokens: 40, temperature: 0, stop });
    expect(stopped.choices[0]!.finish_reason).toBe("stop");
    expect(stopped.choices[0]!.text).toBe(free.choices[0]!.text.slice(0, free.choices[0]!.text.indexOf(stop)));
  });

  it("logprobs: chat and completions, streamed and not, the same numbers", async () => {
    const asked = { model: "tiny", max_tokens: 4, seed: 9, logprobs: true, top_logprobs: 3 } as const;
    const once = await client.chat.completions.create({ ...asked, messages: chat("Hi") });
    const content = once.choices[0]!.logprobs!.content!;
    expect(content).toHaveLength(4);
    for (const entry of content) {
      expect(entry.logprob).toBeLessThanOrEqual(0);
      expect(entry.top_logprobs).toHaveLength(3);
      expect(entry.top_logprobs[0]!.logprob).toBeGreaterThanOrEqual(entry.top_logprobs[2]!.logprob);
    }
    expect(content.map((e) => e.token).join("")).toBe(once.choices[0]!.message.content);
    const streamed = [];
    for await (const chunk of await client.chat.completions.create({ ...asked, messages: chat("Hi"), stream: true }))
      streamed.push(...(chunk.choices[0]?.logprobs?.content ?? []));
    expect(streamed).toEqual(content);
    const text = await client.completions.create({ model: "tiny", prompt: "Once", max_tokens: 4, seed: 9, logprobs: 2 });
    const lp = text.choices[0]!.logprobs!;
    expect(lp.tokens).toHaveLength(4);
    expect(lp.token_logprobs!.every((x) => x <= 0)).toBe(true);
    expect(Object.keys(lp.top_logprobs![0]!).length).toBeLessThanOrEqual(2);
    expect(lp.text_offset).toEqual([0, ...lp.tokens!.slice(0, -1).map((_, i) => lp.tokens!.slice(0, i + 1).join("").length)]);
  });

  it("lists its models with their context length", async () => {
    const list = await client.models.list();
    expect(list.data).toEqual([expect.objectContaining({ id: "tiny", object: "model", owned_by: "neoserve", max_model_len: 1024 })]);
  });

  it("echoes a client's x-request-id, and makes one otherwise", async () => {
    const given = await post("/v1/completions", JSON.stringify({ model: "tiny", prompt: "a", max_tokens: 1 }), { "x-request-id": "trace-123" });
    expect(given.headers.get("x-request-id")).toBe("trace-123");
    expect(given.headers.get("server-timing")).toMatch(/queue;dur=.*ttft;dur=/);
    const made = await post("/v1/completions", JSON.stringify({ model: "tiny", prompt: "a", max_tokens: 1 }));
    expect(made.headers.get("x-request-id")).toMatch(/^[0-9a-f-]{36}$/);
  });
});

describe("errors arrive as the client's own typed errors", () => {
  it.each<[string, () => Promise<unknown>, new (...args: never[]) => APIError, RegExp]>([
    ["a wrong key", () => new OpenAI({ apiKey: "wrong", baseURL: `${server.url}/v1`, maxRetries: 0 }).models.list(), AuthenticationError, /valid API key/],
    ["an unknown model", () => client.chat.completions.create({ model: "gpt-9", messages: chat("x") }), NotFoundError, /no model "gpt-9"/],
    ["a prompt longer than the context", () => client.completions.create({ model: "tiny", prompt: "word ".repeat(3000) }), BadRequestError, /context is 1024/],
    ["a parameter of the wrong type", () => client.chat.completions.create({ model: "tiny", messages: chat("x"), temperature: "hot" as never }), BadRequestError, /temperature/],
    ["top_logprobs without logprobs", () => client.chat.completions.create({ model: "tiny", messages: chat("x"), top_logprobs: 2 }), BadRequestError, /^400 top_logprobs: needs logprobs/],
    ["a response_format it cannot honour", () => client.chat.completions.create({ model: "tiny", messages: chat("x"), response_format: { type: "json_object" } }), BadRequestError, /response_format/],
  ])("%s", async (_what, call, Class, message) => {
    const err = await call().then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(Class);
    expect((err as Error).message).toMatch(message);
  });

  it("a full queue is a 503 with Retry-After, an APIError once the client's retries run out", { timeout: 90_000 }, async () => {
    // One sequence at a time and two waiting: three long requests fill the engine.
    const s = await spawnServer(["--model", `tiny=${hfDir("tiny")}`, "--threads", "1", "--max-batch-size", "1", "--max-queue-size", "2"]);
    const hold = new AbortController();
    try {
      const body = JSON.stringify({ model: "tiny", prompt: "x", max_tokens: 5000, ignore_eos: true, stream: true });
      const running = await Promise.all(
        [0, 1, 2].map(() => fetch(`${s.url}/v1/completions`, { method: "POST", headers: { "content-type": "application/json" }, body, signal: hold.signal })),
      );
      expect(running.map((r) => r.status)).toEqual([200, 200, 200]);
      const full = await fetch(`${s.url}/v1/completions`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ model: "tiny", prompt: "x" }) });
      expect(full.status).toBe(503);
      expect(full.headers.get("retry-after")).toBe("1");
      expect(full.headers.get("retry-after-ms")).toBe("100");
      expect(await full.json()).toMatchObject({ error: { code: "queue_full", type: "server_error" } });
      const retrying = new OpenAI({ apiKey: "none", baseURL: `${s.url}/v1`, maxRetries: 2 }); // 100 ms apart: the queue is still full
      const err = await retrying.completions.create({ model: "tiny", prompt: "x" }).then(() => undefined, (e: unknown) => e);
      expect(err).toBeInstanceOf(APIError);
      expect((err as APIError).status).toBe(503);
    } finally {
      hold.abort();
      s.proc.kill("SIGTERM");
      expect(await s.exited).toBe(0);
    }
  });
});

describe("a client that goes away", () => {
  it("cancels its request in the engine: nothing left running, every KV block free", async () => {
    const controller = new AbortController();
    const stream = await client.chat.completions.create({ model: "tiny", messages: chat("Tell me a story"), max_tokens: 1000, ignore_eos: true, stream: true } as never, { signal: controller.signal });
    let chunks = 0;
    try {
      for await (const _ of stream as unknown as AsyncIterable<unknown>) if (++chunks === 3) controller.abort();
    } catch {
      // the client's own abort error, or none: either way the response closed early
    }
    expect(chunks).toBe(3);
    const deadline = Date.now() + 5000;
    let g = await gauges();
    while ((g.neoserve_running_sequences !== 0 || g.neoserve_kv_blocks_used !== 0) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
      g = await gauges();
    }
    expect(g.neoserve_running_sequences).toBe(0);
    expect(g.neoserve_kv_blocks_used).toBe(0);
  });
});

describe("hostile bodies: each a 4xx in the OpenAI envelope, in bounded time, the server still serving", () => {
  const deep = "[".repeat(100_000) + "]".repeat(100_000);
  const cases: [string, string, number, RegExp, Record<string, string>?][] = [
    ["malformed JSON", '{"model": "tiny", "messages": [', 400, /malformed|JSON/i],
    ["an empty body", "", 400, /./],
    ["JSON nested 100,000 deep", `{"model":"tiny","messages":${deep}}`, 400, /./],
    ["a body over the limit", JSON.stringify({ model: "tiny", prompt: "x".repeat(300 << 10) }), 413, /too large/],
    ["text/plain", "hello", 415, /application\/json/, { "content-type": "text/plain" }],
    ["no messages", JSON.stringify({ model: "tiny", messages: [] }), 400, /messages/],
    ["a message that is a number", JSON.stringify({ model: "tiny", messages: [5] }), 400, /messages/],
    ["an image part", JSON.stringify({ model: "tiny", messages: [{ role: "user", content: [{ type: "image_url", image_url: { url: "x" } }] }] }), 400, /content\[0\]/],
    ["n = 1000", JSON.stringify({ model: "tiny", messages: [{ role: "user", content: "x" }], n: 1000 }), 400, /n must be/],
    ["max_tokens = 2^40", JSON.stringify({ model: "tiny", messages: [{ role: "user", content: "x" }], max_tokens: 2 ** 40 }), 400, /max_tokens/],
    ["100 stop strings", JSON.stringify({ model: "tiny", messages: [{ role: "user", content: "x" }], stop: Array(100).fill("a") }), 400, /stop/],
    ["a model that is null", JSON.stringify({ model: null, messages: [{ role: "user", content: "x" }] }), 400, /model/],
    ["token ids past the vocabulary", JSON.stringify({ model: "tiny", prompt: [1, 2, 10_000_000] }), 400, /vocabulary/],
    ["tools with tool_choice auto", JSON.stringify({ model: "tiny", messages: [{ role: "user", content: "x" }], tools: [{ type: "function" }], tool_choice: "auto" }), 400, /tools/],
    ["__proto__ as a field (prototype pollution)", '{"model":"tiny","messages":[{"role":"user","content":"x"}],"max_tokens":1,"__proto__":{"n":5}}', 400, /not valid JSON/],
  ];
  it.each(cases)("%s", async (_what, body, status, message, headers) => {
    const t0 = performance.now();
    const path = body.includes('"prompt"') ? "/v1/completions" : "/v1/chat/completions";
    const res = await post(path, body, headers);
    const text = await res.text();
    expect(res.status, text.slice(0, 300)).toBe(status);
    expect(text).toMatch(message);
    if (status >= 400) {
      expect(JSON.parse(text)).toMatchObject({ error: { message: expect.any(String), type: expect.any(String) } });
      expect(text).not.toMatch(/\bat .*\.(js|ts):\d+/); // never a stack trace
    }
    expect(performance.now() - t0).toBeLessThan(5000);
  });

  it("an unknown route is a 404 in the same envelope", async () => {
    const res = await fetch(`${server.url}/v1/embeddings`, { method: "POST", headers: { authorization: `Bearer ${KEY}` } });
    expect(res.status).toBe(404);
    expect(await res.json()).toMatchObject({ error: { type: "not_found_error" } });
  });

  it("health and readiness need no key", async () => {
    expect((await fetch(`${server.url}/health`)).status).toBe(200);
    expect(await (await fetch(`${server.url}/ready`)).json()).toEqual({ status: "ready" });
    expect((await fetch(`${server.url}/metrics`)).status).toBe(401);
  });
});

describe("SIGTERM", () => {
  it("drains: a running stream finishes, new work and /ready get 503, the process exits 0", { timeout: 90_000 }, async () => {
    const s = await spawnServer(["--model", `tiny=${hfDir("tiny")}`, "--threads", "1", "--shutdown-timeout", "30"]);
    const c = new OpenAI({ apiKey: "none", baseURL: `${s.url}/v1`, maxRetries: 0 });
    const stream = await c.completions.create({ model: "tiny", prompt: "Once", max_tokens: 600, ignore_eos: true, stream: true } as never) as unknown as AsyncIterable<OpenAI.Completion>;
    let text = "";
    let finish: string | null = null;
    let signalled = false;
    let refused: number | undefined;
    let ready: number | undefined;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.text ?? "";
      finish = chunk.choices[0]?.finish_reason ?? finish;
      if (!signalled && text.length > 0) {
        signalled = true;
        s.proc.kill("SIGTERM");
        await s.waitForLog("draining");
        refused = (await fetch(`${s.url}/v1/completions`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ model: "tiny", prompt: "x" }) })).status;
        ready = (await fetch(`${s.url}/ready`)).status;
      }
    }
    expect(finish).toBe("length");
    expect(refused).toBe(503);
    expect(ready).toBe(503);
    expect(await s.exited).toBe(0);
  });

  it("cancels what has not finished by --shutdown-timeout, with a final chunk saying why", { timeout: 90_000 }, async () => {
    const s = await spawnServer(["--model", `tiny=${hfDir("tiny")}`, "--threads", "1", "--shutdown-timeout", "0.3"]);
    const res = await fetch(`${s.url}/v1/completions`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ model: "tiny", prompt: "Once", max_tokens: 100_000, ignore_eos: true, stream: true }) });
    const reader = res.body!.getReader();
    const first = await reader.read();
    expect(first.done).toBe(false);
    s.proc.kill("SIGTERM");
    let body = new TextDecoder().decode(first.value);
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      body += new TextDecoder().decode(value);
    }
    expect(body).toMatch(/data: \{"error":\{"message":"the server is shutting down[^"]*","type":"server_error"/);
    expect(body.trimEnd().endsWith("data: [DONE]")).toBe(true);
    expect(await s.exited).toBe(0);
  });
});
