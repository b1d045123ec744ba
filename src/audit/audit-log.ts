/**
 * The audit trail: an append-only JSONL file, one record per request, each
 * carrying the SHA-256 of its own content (`hash`, the last field) and the
 * hash of the record before it (`prev`), so a changed byte breaks its own
 * hash and a deleted line breaks the next record's `prev`. A file rotates
 * past `rotateBytes` (renamed with a timestamp); the new file's first record
 * chains to the old file's last, so `verifyAuditFiles(old, new)` checks the
 * whole history. Reopening a file continues its chain.
 */
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { open, rename, stat } from "node:fs/promises";

export const GENESIS = "0".repeat(64);
/** Longest line verify reads; anything longer is not a record of ours. */
const MAX_LINE = 1 << 20;
const HASH_SUFFIX = /,"hash":"([0-9a-f]{64})"\}$/;

export interface AuditRecord {
  time: string;
  requestId: string;
  tenant: string | null;
  model: string;
  backend: string | null;
  /** The kind of choice: rule_N, cheapest, fastest, canary, fallback, unroutable. */
  reason: string | null;
  /** The router's own words for it ("rule 2", "fallback from cloud"). */
  why?: string | null;
  /** Backends tried, the serving one included. */
  attempts?: number | null;
  privacy: string | null;
  promptTokens: number;
  completionTokens: number;
  cost: number | null;
  finishReason: string;
  status: number;
  promptSha256: string;
  outputSha256: string;
  /** Only for tenants that opted in. */
  prompt?: string;
  output?: string;
}

export const sha256 = (text: string) => createHash("sha256").update(text).digest("hex");

// A record's line: its JSON with prev, then its own hash over everything before it.
function seal(record: AuditRecord & { seq: number; prev: string }): { line: string; hash: string } {
  const body = JSON.stringify(record);
  const hash = sha256(body);
  return { line: `${body.slice(0, -1)},"hash":"${hash}"}`, hash };
}

export interface AuditLogOptions {
  /** Rotate once the file passes this size. Default 256 MiB. */
  rotateBytes?: number;
}

export class AuditLog {
  private chain: Promise<void> = Promise.resolve();
  private prev = GENESIS;
  private seq = 0;
  private bytes = 0;
  private closed = false;

  private constructor(
    private readonly path: string,
    private readonly rotateBytes: number,
  ) {}

  /** Opens (or creates) the log at `path`, continuing the chain of the records already there. */
  static async open(path: string, options: AuditLogOptions = {}): Promise<AuditLog> {
    const log = new AuditLog(path, options.rotateBytes ?? 256 << 20);
    const last = await lastLine(path);
    if (last) {
      const m = HASH_SUFFIX.exec(last.line);
      if (!m) throw new Error(`${path}: its last line is not an audit record; run neoserve audit verify`);
      log.prev = m[1]!;
      log.seq = (JSON.parse(last.line) as { seq: number }).seq + 1;
      log.bytes = last.size;
    }
    return log;
  }

  /**
   * Appends a record (in call order); resolves once it is written. A record
   * is sealed when its turn comes and the chain moves on only once it is on
   * disk, so a write that fails leaves no gap: the next record chains to the
   * last one written.
   */
  append(record: AuditRecord): Promise<void> {
    if (this.closed) return Promise.reject(new Error("the audit log is closed"));
    const write = this.chain.then(async () => {
      const { line, hash } = seal({ seq: this.seq, prev: this.prev, ...record });
      const bytes = Buffer.byteLength(line) + 1;
      if (this.bytes > 0 && this.bytes + bytes > this.rotateBytes) await this.rotate();
      const file = await open(this.path, "a");
      try {
        await file.appendFile(line + "\n");
      } finally {
        await file.close();
      }
      this.prev = hash;
      this.seq++;
      this.bytes += bytes;
    });
    this.chain = write.catch(() => {}); // one failed write does not stop the ones after it
    return write;
  }

  // The current file gets a name that sorts after every earlier one (time, then sequence): nothing is ever overwritten.
  private async rotate(): Promise<void> {
    const stamp = new Date().toISOString().replace(/[:.]/g, "-");
    await rename(this.path, `${this.path}.${stamp}.${String(this.seq).padStart(12, "0")}`);
    this.bytes = 0;
  }

  /** Waits for every record appended so far; later appends fail. */
  async close(): Promise<void> {
    this.closed = true;
    await this.chain;
  }
}

// The file's last non-empty line and size, reading only its tail.
async function lastLine(path: string): Promise<{ line: string; size: number } | undefined> {
  let size: number;
  try {
    size = (await stat(path)).size;
  } catch {
    return undefined;
  }
  if (size === 0) return undefined;
  const file = await open(path, "r");
  try {
    const length = Math.min(size, MAX_LINE + 2);
    const buf = Buffer.alloc(length);
    await file.read(buf, 0, length, size - length);
    const lines = buf.toString("utf8").split("\n").filter((l) => l.length > 0);
    return lines.length ? { line: lines[lines.length - 1]!, size } : undefined;
  } finally {
    await file.close();
  }
}

export interface VerifyResult {
  ok: boolean;
  records: number;
  /** The first record that does not verify: its file, 1-based line, and why. */
  broken?: { file: string; line: number; why: string };
}

/** Checks the files in order (oldest first) as one chain starting from GENESIS. Memory stays within one line of MAX_LINE. */
export async function verifyAuditFiles(files: readonly string[]): Promise<VerifyResult> {
  let prev = GENESIS;
  let records = 0;
  for (const file of files) {
    let n = 0;
    const fail = (why: string): VerifyResult => ({ ok: false, records, broken: { file, line: n, why } });
    for await (const line of linesOf(file)) {
      n++;
      if (line === undefined) return fail(`a line over ${MAX_LINE} characters`);
      const m = HASH_SUFFIX.exec(line);
      if (!m) return fail("not an audit record (no hash at its end)");
      const body = `${line.slice(0, m.index)}}`;
      if (sha256(body) !== m[1]) return fail("its content does not match its hash (changed)");
      let record: { prev?: unknown; seq?: unknown };
      try {
        record = JSON.parse(body) as typeof record;
      } catch {
        return fail("not JSON");
      }
      if (record.prev !== prev) return fail(records === 0 ? "the chain does not start here (an earlier file is missing)" : "it does not chain to the record before it (a record was removed or reordered)");
      if (record.seq !== records) return fail(`sequence number ${String(record.seq)} where ${records} was due`);
      prev = m[1]!;
      records++;
    }
  }
  return { ok: true, records };
}

// The file's lines; undefined for a line past MAX_LINE (and the reading stops there).
async function* linesOf(file: string): AsyncGenerator<string | undefined> {
  let pending = "";
  for await (const chunk of createReadStream(file, { encoding: "utf8", highWaterMark: 64 << 10 })) {
    pending += chunk as string;
    let cut: number;
    while ((cut = pending.indexOf("\n")) >= 0) {
      const line = pending.slice(0, cut);
      pending = pending.slice(cut + 1);
      if (line.length > MAX_LINE) return yield undefined;
      yield line;
    }
    if (pending.length > MAX_LINE) return yield undefined;
  }
  if (pending.length) yield pending;
}
