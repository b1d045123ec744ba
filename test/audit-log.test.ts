// The audit trail: records chain by SHA-256; `verify` finds one changed byte,
// a deleted line, a reordered pair, a missing rotated file; a reopened log
// continues its chain; hostile files are refused in bounded time and memory.
import { execFileSync } from "node:child_process";
import { appendFileSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AuditLog, type AuditRecord, GENESIS, sha256, verifyAuditFiles } from "../src/audit/audit-log.js";
import { repoRoot } from "./helpers/paths.js";

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "neoserve-audit-"));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const record = (i: number): AuditRecord => ({
  time: new Date(1_700_000_000_000 + i).toISOString(),
  requestId: `req-${i}`,
  tenant: i % 2 ? "acme" : null,
  model: "chat",
  backend: "small",
  reason: "rule_1",
  privacy: "private",
  promptTokens: 10 + i,
  completionTokens: 5,
  cost: 0.0001 * i,
  finishReason: "length",
  status: 200,
  promptSha256: sha256(`prompt ${i}`),
  outputSha256: sha256(`output ${i}`),
});

async function writeLog(name: string, n: number): Promise<string> {
  const path = join(dir, name);
  const log = await AuditLog.open(path);
  await Promise.all(Array.from({ length: n }, (_, i) => log.append(record(i))));
  await log.close();
  return path;
}

const cli = (...args: string[]) => {
  try {
    return { code: 0, out: execFileSync(process.execPath, [join(repoRoot, "dist", "src", "cli", "main.js"), "audit", "verify", ...args], { encoding: "utf8" }) };
  } catch (e) {
    const err = e as { status: number; stdout: string };
    return { code: err.status, out: err.stdout };
  }
};

describe("the audit trail", () => {
  it("chains every record to the one before it, from the genesis hash, in append order", async () => {
    const path = await writeLog("ok.jsonl", 20);
    const lines = readFileSync(path, "utf8").trim().split("\n");
    expect(lines).toHaveLength(20);
    const parsed = lines.map((l) => JSON.parse(l) as { seq: number; prev: string; hash: string; requestId: string });
    expect(parsed[0]!.prev).toBe(GENESIS);
    parsed.forEach((r, i) => {
      expect(r.seq).toBe(i);
      expect(r.requestId).toBe(`req-${i}`);
      if (i > 0) expect(r.prev).toBe(parsed[i - 1]!.hash);
      // Independently: the hash is SHA-256 of the line without its hash field.
      expect(sha256(lines[i]!.replace(/,"hash":"[0-9a-f]{64}"\}$/, "}"))).toBe(r.hash);
    });
    expect(await verifyAuditFiles([path])).toEqual({ ok: true, records: 20 });
    expect(cli(path)).toEqual({ code: 0, out: "ok: 20 records chain from the start\n" });
  });

  it("catches one changed byte, a deleted line and a reordered pair, naming the first bad record", async () => {
    const path = await writeLog("tamper.jsonl", 10);
    const original = readFileSync(path, "utf8");
    const lines = original.trim().split("\n");

    writeFileSync(path, original.replace('"promptTokens":14', '"promptTokens":15'));
    expect(await verifyAuditFiles([path])).toMatchObject({ ok: false, records: 4, broken: { line: 5, why: expect.stringMatching(/does not match its hash/) } });
    const changed = cli(path);
    expect(changed.code).toBe(1);
    expect(changed.out).toMatch(/tamper\.jsonl:5: its content does not match its hash/);

    writeFileSync(path, [...lines.slice(0, 3), ...lines.slice(4)].join("\n") + "\n");
    expect(await verifyAuditFiles([path])).toMatchObject({ ok: false, records: 3, broken: { line: 4, why: expect.stringMatching(/does not chain/) } });

    writeFileSync(path, [lines[0], lines[2], lines[1], ...lines.slice(3)].join("\n") + "\n");
    expect((await verifyAuditFiles([path])).broken).toMatchObject({ line: 2 });

    // The last record alone changed: its own hash catches it.
    writeFileSync(path, original.replace(/"status":200(?!.*"status":200)/s, '"status":500'));
    expect((await verifyAuditFiles([path])).broken).toMatchObject({ line: 10 });
  });

  it("a reopened log continues its chain; rotation keeps one chain across files", async () => {
    const path = join(dir, "rotating.jsonl");
    let log = await AuditLog.open(path, { rotateBytes: 2000 });
    for (let i = 0; i < 5; i++) await log.append(record(i));
    await log.close();
    log = await AuditLog.open(path, { rotateBytes: 2000 });
    for (let i = 5; i < 12; i++) await log.append(record(i));
    await log.close();
    const rotated = readdirSync(dir).filter((f) => f.startsWith("rotating.jsonl.")).sort().map((f) => join(dir, f));
    expect(rotated.length).toBeGreaterThan(0);
    const all = [...rotated, path];
    expect(await verifyAuditFiles(all)).toEqual({ ok: true, records: 12 });
    // The current file alone does not start the chain; dropping a rotated file is caught.
    expect((await verifyAuditFiles([path])).broken?.why).toMatch(/does not start here/);
    if (rotated.length > 1) expect((await verifyAuditFiles(all.slice(1))).ok).toBe(false);
  });

  it("refuses to append after a last line that is not a record", async () => {
    const path = join(dir, "garbled.jsonl");
    writeFileSync(path, "not a record\n");
    await expect(AuditLog.open(path)).rejects.toThrow(/last line is not an audit record/);
  });

  const hostile: [string, () => string, RegExp][] = [
    ["an empty line inside", () => (writeFileSync(join(dir, "h1"), "\n"), join(dir, "h1")), /not an audit record/],
    ["binary bytes", () => (writeFileSync(join(dir, "h2"), Buffer.from([0, 255, 1, 2, 10])), join(dir, "h2")), /not an audit record/],
    ["one 64 MiB line with no newline", () => (writeFileSync(join(dir, "h3"), Buffer.alloc(64 << 20, 0x61)), join(dir, "h3")), /a line over/],
    ["a hash with content that is not JSON", () => {
      const body = "{not json}";
      writeFileSync(join(dir, "h4"), `${body.slice(0, -1)},"hash":"${sha256(body)}"}\n`);
      return join(dir, "h4");
    }, /not JSON/],
    ["a record whose seq skips", () => {
      const body = JSON.stringify({ seq: 3, prev: GENESIS });
      writeFileSync(join(dir, "h5"), `${body.slice(0, -1)},"hash":"${sha256(body)}"}\n`);
      return join(dir, "h5");
    }, /sequence number 3 where 0 was due/],
  ];
  it.each(hostile)("%s: a broken record, in bounded time and memory", async (_what, make, why) => {
    const path = make();
    const rss = process.memoryUsage().rss;
    const t0 = performance.now();
    const result = await verifyAuditFiles([path]);
    expect(result.ok).toBe(false);
    expect(result.broken!.why).toMatch(why);
    expect(performance.now() - t0).toBeLessThan(5000);
    expect(process.memoryUsage().rss - rss).toBeLessThan(48 << 20);
  });

  it("appends from concurrent callers land whole, one record a line", async () => {
    const path = join(dir, "concurrent.jsonl");
    const log = await AuditLog.open(path);
    await Promise.all(Array.from({ length: 200 }, (_, i) => log.append({ ...record(i), prompt: "x".repeat(i * 50) })));
    await log.close();
    expect(await verifyAuditFiles([path])).toEqual({ ok: true, records: 200 });
    appendFileSync(path, "");
    await expect(log.append(record(0))).rejects.toThrow(/closed/);
  });
});
