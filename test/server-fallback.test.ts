// `neoserve serve` routing through failures, seen by the official openai
// client: a remote (the fault stub) that answers 200 and then fails before its
// first token is replaced by the local model, and a streamed response's route
// header names the backend that served; every remote down is "degraded mode",
// said in a header; a shadowed route's comparisons reach /metrics.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startFaultStub, type FaultStub } from "./helpers/fault-stub.js";
import { hfDir } from "./helpers/paths.js";
import { spawnServer, type SpawnedServer } from "./helpers/spawn-server.js";

let stub: FaultStub;
let front: SpawnedServer;
let client: OpenAI;
let dir: string;

beforeAll(async () => {
  stub = await startFaultStub();
  dir = mkdtempSync(join(tmpdir(), "neoserve-fallback-"));
  const config = join(dir, "serve.yaml");
  writeFileSync(
    config,
    [
      "models:",
      `  small: { path: ${hfDir("tiny")}, threads: 1 }`,
      "remotes:",
      `  flaky: { url: "${stub.url}", model: stub, healthIntervalMs: 0, breaker: { failures: 1000 } }`,
      // Nothing listens there: its health check at startup fails, and it stays down.
      '  gone: { url: "http://127.0.0.1:1", model: x, healthIntervalMs: 0, connectTimeoutMs: 1000 }',
      "routes:",
      "  chat: { backends: [flaky, small], rules: [{ route: remote }] }",
      "  offline: { backends: [gone, small] }",
      "  mirrored: { backends: [small], shadow: { backend: small, percent: 100 } }",
    ].join("\n"),
  );
  front = await spawnServer(["--config", config]);
  client = new OpenAI({ apiKey: "x", baseURL: `${front.url}/v1`, maxRetries: 0, timeout: 30_000 });
}, 120_000);
afterAll(async () => {
  front?.proc.kill("SIGTERM");
  if (front) expect(await front.exited).toBe(0);
  await stub?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const messages = [{ role: "user" as const, content: "Tell me" }];

async function streamed(model: string) {
  const { data, response } = await client.chat.completions.create({ model, messages, max_tokens: 4, temperature: 0, stream: true }).withResponse();
  let text = "";
  let finish: string | null | undefined;
  for await (const chunk of data) {
    text += chunk.choices[0]?.delta.content ?? "";
    finish = chunk.choices[0]?.finish_reason ?? finish;
  }
  return { headers: response.headers, text, finish };
}

describe("routing through failures over HTTP", () => {
  it("a healthy remote serves a streamed request, and the route header names it", async () => {
    stub.mode = "ok";
    const r = await streamed("chat");
    expect(r.headers.get("x-neoserve-route")).toBe("backend=flaky; reason=rule_1; attempts=1");
    expect(r.text).toBe("Hello, world!");
    expect(r.headers.get("x-neoserve-degraded")).toBeNull();
  });

  it("a remote that answers 200 then fails before its first token: the stream's headers name the backend that served", async () => {
    const local = await client.chat.completions.create({ model: "small", messages, max_tokens: 4, temperature: 0 });
    stub.mode = "drop-before-first-token";
    const sent = stub.requests.length;
    const r = await streamed("chat");
    expect(stub.requests.length).toBe(sent + 1); // the remote was tried
    expect(r.headers.get("x-neoserve-route")).toBe("backend=small; reason=fallback; attempts=2");
    expect(r.text).toBe(local.choices[0]!.message.content);
    expect(r.finish).toBe("length");
    const metrics = await (await fetch(`${front.url}/metrics`)).text();
    expect(metrics).toMatch(/^neoserve_routed_total\{alias="chat",backend="small",reason="fallback"\} 1$/m);
  });

  it("every remote down: the local model serves, and the response says it ran degraded", async () => {
    const { data, response } = await client.chat.completions.create({ model: "offline", messages, max_tokens: 3 }).withResponse();
    expect(data.choices[0]!.finish_reason).toBe("length");
    expect(response.headers.get("x-neoserve-route")).toMatch(/^backend=small; /);
    expect(response.headers.get("x-neoserve-degraded")).toBe("remote backends unavailable: served locally");
    const s = await streamed("offline");
    expect(s.finish).toBe("length");
    expect(s.headers.get("x-neoserve-degraded")).toBe("remote backends unavailable: served locally");
  });

  it("a shadowed route's comparisons are scraped from /metrics", async () => {
    for (let i = 0; i < 2; i++) expect((await client.chat.completions.create({ model: "mirrored", messages, max_tokens: 4, temperature: 0 })).choices[0]!.finish_reason).toBe("length");
    const scrape = async () => (await fetch(`${front.url}/metrics`)).text();
    let text = await scrape();
    const compared = /^neoserve_shadow_requests_total\{alias="mirrored",backend="small",outcome="compared"\} (\d+)$/m;
    // The copies end on their own time, after the caller's responses: scrape again, 20 s at most.
    for (let k = 0; k < 200 && Number(compared.exec(text)?.[1] ?? 0) < 2; k++) {
      await new Promise((r) => setTimeout(r, 100));
      text = await scrape();
    }
    expect(text).toMatch(/^neoserve_shadow_requests_total\{alias="mirrored",backend="small",outcome="compared"\} 2$/m);
    // The same model, greedy: the copy's text is the caller's (agreement 1 each time).
    expect(text).toMatch(/^neoserve_shadow_agreement_count\{alias="mirrored",backend="small"\} 2$/m);
    expect(text).toMatch(/^neoserve_shadow_agreement_sum\{alias="mirrored",backend="small"\} 2$/m);
    expect(text).toMatch(/^neoserve_shadow_ttft_ratio_count\{alias="mirrored",backend="small"\} 2$/m);
  });
});
