// Tenants through `neoserve serve`: their keys (hashed in the config), limits
// and budgets as the openai client's own RateLimitError / PermissionDeniedError,
// per-tenant metrics, and an audit trail that verifies and keeps text only for
// the tenant that opted in.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import OpenAI, { AuthenticationError, PermissionDeniedError, RateLimitError } from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { hashKey } from "../src/tenants/tenants.js";
import { hfDir, repoRoot } from "./helpers/paths.js";
import { spawnServer, type SpawnedServer } from "./helpers/spawn-server.js";

let server: SpawnedServer;
let dir: string;
const client = (key: string) => new OpenAI({ apiKey: key, baseURL: `${server.url}/v1`, maxRetries: 0, timeout: 30_000 });
const ask = (key: string, model = "small", max_tokens = 3) => client(key).completions.create({ model, prompt: "Hello", max_tokens });
const errorOf = (p: Promise<unknown>) => p.then(() => undefined, (e: unknown) => e);

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "neoserve-tenants-"));
  const config = join(dir, "serve.yaml");
  writeFileSync(
    config,
    [
      "models:",
      `  small: { path: ${hfDir("tiny")}, threads: 1, pricePerHour: 3600 }`,
      `  other: { path: ${hfDir("tiny")}, threads: 1 }`,
      "tenants:",
      `  acme: { keys: [${hashKey("sk-acme")}], models: [small], requestsPerMinute: 3, auditText: true }`,
      `  solo: { keys: [${hashKey("sk-solo")}], maxConcurrent: 1 }`,
      `  broke: { keys: [${hashKey("sk-broke")}], budgetPerDay: 0.000001 }`,
      "audit:",
      `  path: ${join(dir, "audit.jsonl")}`,
    ].join("\n"),
  );
  server = await spawnServer(["--config", config]);
}, 90_000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("tenants", () => {
  it("a key no tenant holds is a 401", async () => {
    expect(await errorOf(ask("sk-nobody"))).toBeInstanceOf(AuthenticationError);
  });

  it("requests per minute: the fourth is a RateLimitError with Retry-After", async () => {
    for (let i = 0; i < 3; i++) expect((await ask("sk-acme")).choices[0]!.finish_reason).toBe("length");
    const err = await errorOf(ask("sk-acme"));
    expect(err).toBeInstanceOf(RateLimitError);
    expect((err as RateLimitError).code).toBe("rate_limit_exceeded");
    expect(Number((err as RateLimitError).headers?.get("retry-after"))).toBeGreaterThan(0);
  });

  it("a model the tenant may not use is a PermissionDeniedError", async () => {
    const err = await errorOf(ask("sk-acme", "other"));
    expect(err).toBeInstanceOf(PermissionDeniedError);
    expect((err as PermissionDeniedError).code).toBe("model_not_allowed");
  });

  it("concurrent requests: a second while one streams is refused, then accepted once it ends", async () => {
    const stream = await client("sk-solo").completions.create({ model: "small", prompt: "x", max_tokens: 400, stream: true, ignore_eos: true } as never);
    const iterator = (stream as unknown as AsyncIterable<unknown>)[Symbol.asyncIterator]();
    await iterator.next(); // it runs
    const err = await errorOf(ask("sk-solo"));
    expect(err).toBeInstanceOf(RateLimitError);
    expect((err as RateLimitError).status).toBe(429);
    expect((err as RateLimitError).code).toBe("concurrency_limit_exceeded");
    expect(Number((err as RateLimitError).headers?.get("retry-after"))).toBeGreaterThan(0);
    for (let r = await iterator.next(); !r.done; r = await iterator.next());
    expect((await ask("sk-solo")).choices).toHaveLength(1);
  });

  it("a budget spent is a 429 with its own code until the day rolls over", async () => {
    expect((await ask("sk-broke")).choices).toHaveLength(1);
    const err = await errorOf(ask("sk-broke"));
    expect(err).toBeInstanceOf(RateLimitError);
    expect((err as RateLimitError).code).toBe("budget_exceeded");
    expect(Number((err as RateLimitError).headers?.get("retry-after"))).toBeGreaterThan(0);
  });

  it("counts each tenant's requests by outcome, tokens and cost", async () => {
    const text = await (await fetch(`${server.url}/metrics`, { headers: { authorization: "Bearer sk-acme" } })).text();
    expect(text).toMatch(/^neoserve_tenant_requests_total\{tenant="acme",outcome="ok"\} 3$/m);
    expect(text).toMatch(/^neoserve_tenant_requests_total\{tenant="acme",outcome="rate_limit_exceeded"\} 1$/m);
    expect(text).toMatch(/^neoserve_tenant_requests_total\{tenant="broke",outcome="budget_exceeded"\} 1$/m);
    expect(text).toMatch(/^neoserve_tenant_tokens_total\{tenant="acme",kind="completion"\} 9$/m);
    expect(Number(/^neoserve_tenant_cost_total\{tenant="broke"\} (\S+)$/m.exec(text)?.[1])).toBeGreaterThan(0);
  });

  it("writes an audit trail that verifies, with text only for the tenant that opted in", async () => {
    server.proc.kill("SIGTERM");
    expect(await server.exited).toBe(0);
    const path = join(dir, "audit.jsonl");
    const out = execFileSync(process.execPath, [join(repoRoot, "dist", "src", "cli", "main.js"), "audit", "verify", path], { encoding: "utf8" });
    expect(out).toMatch(/^ok: \d+ records chain from the start/);
    const records = readFileSync(path, "utf8").trim().split("\n").map((l) => JSON.parse(l) as Record<string, unknown>);
    const acme = records.filter((r) => r.tenant === "acme");
    expect(acme.map((r) => r.status)).toEqual([200, 200, 200, 429]);
    expect(acme[0]).toMatchObject({ model: "small", backend: "small", promptTokens: expect.any(Number), completionTokens: 3, prompt: '["Hello"]' });
    const solo = records.filter((r) => r.tenant === "solo");
    expect(solo.length).toBeGreaterThanOrEqual(3);
    for (const r of solo) {
      expect(r.prompt).toBeUndefined();
      expect(r.promptSha256).toMatch(/^[0-9a-f]{64}$/);
    }
    expect(records.find((r) => r.tenant === "broke" && r.status === 200)!.cost).toBeGreaterThan(0);
  });
});
