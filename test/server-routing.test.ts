// `neoserve serve` with a routed alias: a local model and a second neoserve
// process as the remote, both declaring the alias, from a config file. Where
// each request went is read off the remote's own request log; the route shows
// in a response header, in neoserve_routed_total and in the audit trail, which
// rotates and still verifies through `neoserve audit verify`; bad routing
// headers are 400s.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import OpenAI, { BadRequestError } from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { hfDir, repoRoot } from "./helpers/paths.js";
import { spawnServer, type SpawnedServer } from "./helpers/spawn-server.js";

let cloud: SpawnedServer;
let front: SpawnedServer;
let client: OpenAI;
let dir: string;

beforeAll(async () => {
  cloud = await spawnServer(["--model", `big=${hfDir("tiny")}`, "--threads", "1"]);
  dir = mkdtempSync(join(tmpdir(), "neoserve-routing-"));
  const config = join(dir, "serve.yaml");
  writeFileSync(
    config,
    [
      "models:",
      "  small:",
      `    path: ${hfDir("tiny")}`,
      "    threads: 1",
      "    pricePerHour: 0.05",
      "    aliases: [chat]",
      "remotes:",
      "  cloud:",
      `    url: ${cloud.url}`,
      "    model: big",
      "    apiKeyEnv: CLOUD_KEY",
      "    pricePer1kPrompt: 0.5",
      "    pricePer1kCompletion: 1.5",
      "    aliases: [chat]",
      "routes:",
      "  chat:",
      "    rules:",
      "      - when: { privacy: private }",
      "        route: local",
      "      - route: remote",
      "audit:",
      `  path: ${join(dir, "audit.jsonl")}`,
      "  rotateBytes: 1500",
    ].join("\n"),
  );
  front = await spawnServer(["--config", config], { CLOUD_KEY: "not-needed-by-this-remote" });
  client = new OpenAI({ apiKey: "x", baseURL: `${front.url}/v1`, maxRetries: 0, timeout: 30_000 });
}, 120_000);
afterAll(async () => {
  for (const s of [front, cloud]) if (s.proc.exitCode === null) s.proc.kill("SIGTERM");
  expect(await front.exited).toBe(0);
  expect(await cloud.exited).toBe(0);
  rmSync(dir, { recursive: true, force: true });
});

const atCloud = () => cloud.logs.filter((l) => l.msg === "completion").length;
const settle = () => new Promise((r) => setTimeout(r, 150)); // a server logs a completion as its response ends

describe("a routed alias", () => {
  it("is listed beside the model it routes over", async () => {
    const ids = (await client.models.list()).data.map((m) => m.id).sort();
    expect(ids).toEqual(["chat", "small"]);
  });

  it("sends private requests to the local model only, the rest to the remote, and says so", async () => {
    const before = atCloud();
    const { data, response } = await client.chat.completions
      .create({ model: "chat", messages: [{ role: "user", content: "my secret" }], max_tokens: 4 }, { headers: { "x-neoserve-privacy": "private" } })
      .withResponse();
    expect(data.choices[0]!.finish_reason).toBe("length");
    expect(response.headers.get("x-neoserve-route")).toBe("backend=small; reason=rule_1; attempts=1");
    await settle();
    expect(atCloud()).toBe(before);

    const stream = await client.chat.completions
      .create({ model: "chat", messages: [{ role: "user", content: "public" }], max_tokens: 4, stream: true })
      .withResponse();
    expect(stream.response.headers.get("x-neoserve-route")).toBe("backend=cloud; reason=rule_2; attempts=1");
    let text = "";
    for await (const chunk of stream.data) text += chunk.choices[0]?.delta.content ?? "";
    expect(text.length).toBeGreaterThan(0);
    await settle();
    expect(atCloud()).toBe(before + 1);

    // The body field works as the header does.
    const body = await client.completions.create({ model: "chat", prompt: "x", max_tokens: 2, privacy: "private" } as never).withResponse();
    expect(body.response.headers.get("x-neoserve-route")).toMatch(/^backend=small;/);

    const metrics = await (await fetch(`${front.url}/metrics`)).text();
    expect(metrics).toMatch(/^neoserve_routed_total\{alias="chat",backend="small",reason="rule_1"\} 2$/m);
    expect(metrics).toMatch(/^neoserve_routed_total\{alias="chat",backend="cloud",reason="rule_2"\} 1$/m);
  });

  it.each([
    ["x-neoserve-privacy", "secret", /x-neoserve-privacy must be private, internal or public/],
    ["x-neoserve-latency-budget-ms", "soon", /x-neoserve-latency-budget-ms must be a number/],
    ["x-neoserve-max-cost-per-1k", "-1", /x-neoserve-max-cost-per-1k must be a number/],
    ["x-neoserve-deadline-ms", "0", /x-neoserve-deadline-ms must be a number from 1/],
  ])("a bad %s header is a 400 naming it", async (header, value, message) => {
    const err = await client.chat.completions.create({ model: "chat", messages: [{ role: "user", content: "x" }], max_tokens: 2 }, { headers: { [header]: value } }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BadRequestError);
    expect((err as BadRequestError).message).toMatch(message);
  });

  it("audits each routed request (backend, why, privacy, cost) in a trail that rotates and verifies across its files", async () => {
    front.proc.kill("SIGTERM"); // every record written
    expect(await front.exited).toBe(0);
    const current = join(dir, "audit.jsonl");
    const rotated = readdirSync(dir).filter((f) => f.startsWith("audit.jsonl.")).sort().map((f) => join(dir, f));
    expect(rotated.length).toBeGreaterThan(0);
    const files = [...rotated, current];
    const verify = (paths: string[]) => {
      try {
        return { code: 0, out: execFileSync(process.execPath, [join(repoRoot, "dist", "src", "cli", "main.js"), "audit", "verify", ...paths], { encoding: "utf8" }) };
      } catch (err) {
        const e = err as { status: number; stdout: string };
        return { code: e.status, out: e.stdout };
      }
    };
    const records = files.flatMap((f) => readFileSync(f, "utf8").trim().split("\n")).map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(verify(files)).toEqual({ code: 0, out: `ok: ${records.length} records chain from the start\n` });

    const routed = records.filter((r) => r.model === "chat" && r.status === 200);
    expect(routed[0]).toMatchObject({ backend: "small", reason: "rule_1", why: "rule 1", attempts: 1, privacy: "private", completionTokens: 4 });
    expect(routed[1]).toMatchObject({ backend: "cloud", reason: "rule_2", why: "rule 2", attempts: 1, privacy: "internal" });
    expect(routed[1]!.cost).toBeGreaterThan(0); // the remote's price per 1k tokens
    expect(routed[0]!.promptSha256).toMatch(/^[0-9a-f]{64}$/);
    expect(routed[0]!.prompt).toBeUndefined(); // no tenant opted in to text

    // One changed byte in a rotated file, a deleted line, a rotated file left out: each is named.
    const first = rotated[0]!;
    const original = readFileSync(first, "utf8");
    writeFileSync(first, original.replace('"status":200', '"status":201'));
    expect(verify(files)).toMatchObject({ code: 1, out: expect.stringMatching(new RegExp(`^${first}:1: `)) });
    const lines = original.trim().split("\n");
    writeFileSync(first, lines.slice(0, -1).map((l) => `${l}\n`).join("")); // its last record: the break shows at the next one
    expect(verify(files)).toMatchObject({ code: 1, out: expect.stringMatching(/: it does not chain to the record before it/) });
    writeFileSync(first, original);
    expect(verify(files.slice(1))).toMatchObject({ code: 1 });
    expect(verify(files).code).toBe(0);
  });
});
