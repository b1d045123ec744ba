// A small GGUF reader (versions 2 and 3) for tests: the metadata key/values and each tensor's name, ggml
// type, dimensions and where its data lies, and a tensor's raw bytes or decoded values. Independent of the
// native loader; models/gguf-writer.ts shows the same layout from the writing side:
// "GGUF" u32 version, u64 n_tensors, u64 n_kv, KVs (string key, u32 value type, value), tensor infos
// (string name, u32 n_dims, u64 ne[n_dims] innermost first, u32 ggml_type, u64 offset into the data section),
// then padding to general.alignment (default 32) and the data section. Strings are u64 length + UTF-8 bytes.
import { closeSync, fstatSync, openSync, readSync } from "node:fs";
import { dequantizeGgml, GGML_TYPES, ggmlBytes } from "./ggml-blocks.js";

export const GGUF_MAGIC = 0x46554747; // "GGUF" read as a little-endian u32

/** A metadata value: scalars as number (u64/i64 as bigint when past 2^53), bool, string; arrays as arrays. */
export type GgufKvValue = number | bigint | boolean | string | GgufKvValue[];

export interface GgufTensorInfo {
  name: string;
  /** enum ggml_type value */
  type: number;
  /** the type's name ("Q4_K") when ggml-blocks knows it, else "type<id>" */
  typeName: string;
  /** dimensions, innermost (contiguous) first: a [rows, cols] weight has ne = [cols, rows] */
  ne: number[];
  nElements: number;
  /** offset from the start of the data section */
  offset: number;
  /** absolute offset in the file */
  fileOffset: number;
  /** bytes of data, when ggml-blocks knows the type (else undefined) */
  nbytes: number | undefined;
}

export interface GgufHeader {
  path: string;
  version: number;
  alignment: number;
  /** absolute file offset of the data section */
  dataOffset: number;
  kv: Map<string, GgufKvValue>;
  tensors: GgufTensorInfo[];
}

/** Sequential little-endian reads from a file descriptor through a growing window. */
class FileCursor {
  private buf = Buffer.alloc(1 << 16);
  private start = 0; // file offset of buf[0]
  private end = 0; // file offset just past the valid bytes
  pos = 0;
  constructor(private readonly fd: number, private readonly size: number, private readonly path: string) {}

  private need(n: number): number {
    if (this.pos + n > this.size) throw new Error(`GGUF ${this.path}: truncated (need ${n} bytes at ${this.pos}, file has ${this.size})`);
    if (this.pos >= this.start && this.pos + n <= this.end) return this.pos - this.start;
    const want = Math.max(n, 1 << 16);
    if (this.buf.length < want) this.buf = Buffer.alloc(want);
    const len = Math.min(this.buf.length, this.size - this.pos);
    let got = 0;
    while (got < len) {
      const r = readSync(this.fd, this.buf, got, len - got, this.pos + got);
      if (r === 0) break;
      got += r;
    }
    this.start = this.pos;
    this.end = this.pos + got;
    if (got < n) throw new Error(`GGUF ${this.path}: short read at ${this.pos}`);
    return 0;
  }
  u8(): number { const o = this.need(1); this.pos += 1; return this.buf.readUInt8(o); }
  i8(): number { const o = this.need(1); this.pos += 1; return this.buf.readInt8(o); }
  u16(): number { const o = this.need(2); this.pos += 2; return this.buf.readUInt16LE(o); }
  i16(): number { const o = this.need(2); this.pos += 2; return this.buf.readInt16LE(o); }
  u32(): number { const o = this.need(4); this.pos += 4; return this.buf.readUInt32LE(o); }
  i32(): number { const o = this.need(4); this.pos += 4; return this.buf.readInt32LE(o); }
  f32(): number { const o = this.need(4); this.pos += 4; return this.buf.readFloatLE(o); }
  f64(): number { const o = this.need(8); this.pos += 8; return this.buf.readDoubleLE(o); }
  u64(): bigint { const o = this.need(8); this.pos += 8; return this.buf.readBigUInt64LE(o); }
  i64(): bigint { const o = this.need(8); this.pos += 8; return this.buf.readBigInt64LE(o); }
  /** a u64 that must fit a JS number (a count, a size, an offset) */
  size64(what: string): number {
    const v = this.u64();
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new Error(`GGUF ${this.path}: ${what} ${v} is out of range at ${this.pos - 8}`);
    return Number(v);
  }
  str(): string {
    const n = this.size64("string length");
    const o = this.need(n);
    this.pos += n;
    return this.buf.toString("utf8", o, o + n);
  }
}

const smallest = (v: bigint): number | bigint => (v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v);

function readValue(c: FileCursor, type: number): GgufKvValue {
  switch (type) {
    case 0: return c.u8();
    case 1: return c.i8();
    case 2: return c.u16();
    case 3: return c.i16();
    case 4: return c.u32();
    case 5: return c.i32();
    case 6: return c.f32();
    case 7: return c.u8() !== 0;
    case 8: return c.str();
    case 9: {
      const itemType = c.u32();
      const n = c.size64("array length");
      const out: GgufKvValue[] = new Array(n);
      for (let i = 0; i < n; i++) out[i] = readValue(c, itemType);
      return out;
    }
    case 10: return smallest(c.u64());
    case 11: return smallest(c.i64());
    case 12: return c.f64();
  }
  throw new Error(`GGUF: unknown value type ${type} at ${c.pos - 4}`);
}

/** Reads a GGUF file's header: metadata and tensor infos (not the tensor data). */
export function readGgufHeader(path: string): GgufHeader {
  const fd = openSync(path, "r");
  try {
    const c = new FileCursor(fd, fstatSync(fd).size, path);
    const magic = c.u32();
    if (magic !== GGUF_MAGIC) throw new Error(`${path}: not a GGUF file (magic 0x${magic.toString(16)})`);
    const version = c.u32();
    if (version !== 2 && version !== 3) throw new Error(`${path}: GGUF version ${version} is not supported`);
    const nTensors = c.size64("tensor count");
    const nKv = c.size64("key/value count");
    const kv = new Map<string, GgufKvValue>();
    for (let i = 0; i < nKv; i++) {
      const key = c.str();
      kv.set(key, readValue(c, c.u32()));
    }
    const rawAlignment = kv.get("general.alignment");
    const alignment = typeof rawAlignment === "number" && rawAlignment > 0 ? rawAlignment : 32;
    const infos: Omit<GgufTensorInfo, "fileOffset">[] = [];
    for (let i = 0; i < nTensors; i++) {
      const name = c.str();
      const nDims = c.u32();
      const ne: number[] = [];
      for (let d = 0; d < nDims; d++) ne.push(c.size64(`${name} ne[${d}]`));
      const type = c.u32();
      const offset = c.size64(`${name} offset`);
      const nElements = ne.reduce((a, b) => a * b, 1);
      const known = GGML_TYPES.find((t) => t.id === type);
      infos.push({
        name,
        type,
        typeName: known?.name ?? `type${type}`,
        ne,
        nElements,
        offset,
        nbytes: known ? ggmlBytes(type, nElements) : undefined,
      });
    }
    const dataOffset = Math.ceil(c.pos / alignment) * alignment;
    return { path, version, alignment, dataOffset, kv, tensors: infos.map((t) => ({ ...t, fileOffset: dataOffset + t.offset })) };
  } finally {
    closeSync(fd);
  }
}

function findTensor(h: GgufHeader, name: string): GgufTensorInfo {
  const t = h.tensors.find((x) => x.name === name);
  if (!t) throw new Error(`${h.path}: no tensor ${name}`);
  return t;
}

/** The raw bytes of one tensor's data, as stored. */
export function readGgufTensorBytes(fileOrHeader: string | GgufHeader, name: string): Uint8Array {
  const h = typeof fileOrHeader === "string" ? readGgufHeader(fileOrHeader) : fileOrHeader;
  const t = findTensor(h, name);
  if (t.nbytes === undefined) throw new Error(`${h.path}: tensor ${name} has type ${t.type}, which ggml-blocks cannot size`);
  const out = new Uint8Array(t.nbytes);
  const fd = openSync(h.path, "r");
  try {
    let got = 0;
    while (got < out.length) {
      const r = readSync(fd, out, got, out.length - got, t.fileOffset + got);
      if (r === 0) throw new Error(`${h.path}: tensor ${name} is truncated`);
      got += r;
    }
  } finally {
    closeSync(fd);
  }
  return out;
}

/** One tensor's values decoded to float32 (row-major, ne[0] contiguous), bit-exact with ggml's dequantizers. */
export function readGgufTensor(fileOrHeader: string | GgufHeader, name: string): { info: GgufTensorInfo; data: Float32Array } {
  const h = typeof fileOrHeader === "string" ? readGgufHeader(fileOrHeader) : fileOrHeader;
  const info = findTensor(h, name);
  return { info, data: dequantizeGgml(info.type, readGgufTensorBytes(h, name), info.nElements) };
}

/** name -> ggml type id of each tensor in the file. */
export function ggufTensorTypes(path: string): Map<string, number> {
  return new Map(readGgufHeader(path).tensors.map((t) => [t.name, t.type]));
}
