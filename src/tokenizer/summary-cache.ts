/**
 * What a text worker reports of a tokenizer it built (its id space and the
 * streaming byte table), kept in the weight cache's directory. A later load of
 * the same tokenizer files takes it from there and does not wait for the
 * workers to build the tokenizer again (a few hundred ms of a cold start):
 * they build it in the background, and text requests made meanwhile wait for
 * them. Only a tokenizer that built is ever written, so a broken one still
 * fails its first load.
 *
 * The key is every file the tokenizer is read from (path, size, times,
 * inode), the tokenizer library's code and this package's version and table
 * code; it is taken before the build and again after it, and a summary is
 * written only if the two agree (a file edited meanwhile could otherwise put
 * the old tokenizer's table under the new file's key). A file that does not
 * match, or does not parse, is a miss; one file per tokenizer location, so a
 * new build replaces the old one.
 */
import { createHash, randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { mkdir, open, realpath, rename, rm, stat } from "node:fs/promises";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { packageRoot } from "../addon.js";
import { readRegularBytes } from "../files.js";
import type { TokenizerSummary } from "./text-workers.js";
import type { TokenizerSource } from "./tokenizer.js";

/** Bumped whenever what a summary holds changes. */
const SUMMARY_VERSION = 1;
const MAGIC = "NSTOKSUM";
const MAX_HEADER = 1 << 16;
/** The most bytes a summary's table may hold (a 256k vocabulary of long tokens is a few MB). */
const MAX_TABLE_BYTES = 64 << 20;

/** A summary's place: its file in the cache directory, and the key it must hold to be used. */
export interface SummaryKey {
  file: string;
  key: string;
}

// The code whose output a summary is: the tokenizer library, this package's table and tokenizer code, and its version.
let code: string[] | undefined;
function codeIdentity(): string[] {
  const here = dirname(fileURLToPath(import.meta.url));
  const version = (JSON.parse(readFileSync(join(packageRoot(), "package.json"), "utf8")) as { version: string }).version;
  code ??= [`neoserve ${version}`, createRequire(import.meta.url).resolve("@huggingface/tokenizers"), join(here, "token-bytes.js"), join(here, "tokenizer.js")];
  return code;
}

// The files TextTokenizer.fromModelPath may read for `source`.
async function tokenizerFiles(source: TokenizerSource): Promise<string[]> {
  const dir = (await stat(source.path)).isDirectory() ? source.path : dirname(source.path);
  const siblings = ["tokenizer.json", "tokenizer_config.json", "generation_config.json", "chat_template.jinja"].map((f) => join(dir, f));
  return [source.path, ...siblings, ...(source.ggufPath ? [source.ggufPath] : [])];
}

const identity = async (f: string) => {
  const s = await stat(f).catch(() => undefined);
  return s ? `${await realpath(f)} ${s.size} ${s.mtimeMs} ${s.ctimeMs} ${s.ino} ${s.dev}` : `${f} absent`;
};

/** Where `source`'s summary lives in `dir`, and the key it must hold now. Throws when `source` cannot be read. */
export async function summaryKey(dir: string, source: TokenizerSource): Promise<SummaryKey> {
  const files = await tokenizerFiles(source);
  const place = JSON.stringify([await realpath(source.path), source.ggufPath ?? null, source.vocabLimit ?? null]);
  const [version, ...code] = codeIdentity();
  const key = JSON.stringify([SUMMARY_VERSION, version, source.vocabLimit ?? null, await Promise.all([...files, ...code].map(identity))]);
  return { file: join(dir, `${createHash("sha256").update(place).digest("hex").slice(0, 16)}.tok`), key };
}

// The cache is as trusted as the model (as the weight cache's own check): not a directory others may write to.
async function privateDir(dir: string): Promise<boolean> {
  const s = await stat(dir).catch(() => undefined);
  if (!s) return true; // made by us when written
  return s.isDirectory() && s.uid === process.geteuid?.() && (s.mode & 0o022) === 0;
}

interface Header {
  key: string;
  vocabSize: number;
  stripLeadingSpaces: number;
  bytes: number;
}

/** The summary at `at` when it holds `at.key`; undefined when there is none that matches (or it cannot be read). */
export async function readSummary(dir: string, at: SummaryKey, vocabLimit = 1 << 24): Promise<TokenizerSummary | undefined> {
  try {
    if (!(await privateDir(dir))) return undefined;
    const fail = (message: string) => new Error(message);
    const buf = await readRegularBytes(at.file, fail, 12 + MAX_HEADER + 4 * (vocabLimit + 1) + MAX_TABLE_BYTES);
    if (!buf || buf.length < 12 || buf.toString("latin1", 0, 8) !== MAGIC) return undefined;
    const headerLength = buf.readUInt32LE(8);
    if (headerLength > MAX_HEADER || 12 + headerLength > buf.length) return undefined;
    const h = JSON.parse(buf.toString("utf8", 12, 12 + headerLength)) as Header;
    if (h.key !== at.key || !Number.isInteger(h.vocabSize) || h.vocabSize < 1 || h.vocabSize > vocabLimit) return undefined;
    if (!Number.isInteger(h.bytes) || h.bytes < 0 || h.bytes > MAX_TABLE_BYTES) return undefined;
    if (!Number.isInteger(h.stripLeadingSpaces) || h.stripLeadingSpaces < 0 || h.stripLeadingSpaces > 16) return undefined;
    const offsetsAt = 12 + headerLength;
    const bytesAt = offsetsAt + 4 * (h.vocabSize + 1);
    if (bytesAt + h.bytes !== buf.length) return undefined;
    const offsets = new Uint32Array(h.vocabSize + 1);
    for (let i = 0; i <= h.vocabSize; i++) offsets[i] = buf.readUInt32LE(offsetsAt + 4 * i);
    if (offsets[0] !== 0 || offsets[h.vocabSize] !== h.bytes) return undefined;
    for (let i = 0; i < h.vocabSize; i++) if (offsets[i]! > offsets[i + 1]!) return undefined;
    const bytes = new Uint8Array(buf.buffer, buf.byteOffset + bytesAt, h.bytes).slice();
    return { vocabSize: h.vocabSize, decodeTable: { bytes, offsets, stripLeadingSpaces: h.stripLeadingSpaces, texts: new Array(h.vocabSize) } };
  } catch {
    return undefined; // gone, unreadable, not ours: a miss
  }
}

/**
 * Keeps `summary` of the tokenizer built while `before` was its key (written
 * whole, then renamed in), unless its files changed meanwhile; false when it
 * was not written.
 */
export async function writeSummary(dir: string, source: TokenizerSource, summary: TokenizerSummary, before: SummaryKey): Promise<boolean> {
  const table = summary.decodeTable;
  if (!table) return false; // such a tokenizer is built on the loading thread anyway: nothing to save
  try {
    if (!(await privateDir(dir))) return false;
    const now = await summaryKey(dir, source);
    if (now.key !== before.key || now.file !== before.file) return false;
    const header = Buffer.from(JSON.stringify({ key: now.key, vocabSize: summary.vocabSize, stripLeadingSpaces: table.stripLeadingSpaces, bytes: table.bytes.length } satisfies Header));
    const head = Buffer.alloc(12);
    head.write(MAGIC, 0, "latin1");
    head.writeUInt32LE(header.length, 8);
    const offsets = Buffer.alloc(table.offsets.length * 4);
    table.offsets.forEach((o, i) => offsets.writeUInt32LE(o, 4 * i));
    await mkdir(dir, { recursive: true, mode: 0o755 });
    const tmp = `${now.file}.${randomBytes(6).toString("hex")}.tmp`;
    try {
      const out = await open(tmp, "wx", 0o644);
      try {
        await out.writev([head, header, offsets, table.bytes]);
      } finally {
        await out.close();
      }
      await rename(tmp, now.file);
    } catch (e) {
      await rm(tmp, { force: true });
      throw e;
    }
    return true;
  } catch {
    return false; // a cache that cannot be written leaves the load as it was
  }
}

/** Removes the summary at `at` (one the workers could not confirm). */
export async function removeSummary(at: SummaryKey): Promise<void> {
  await rm(at.file, { force: true }).catch(() => {});
}
