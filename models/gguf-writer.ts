// A small GGUF v3 writer (the format llama.cpp reads): header, metadata key/values, tensor infos, aligned data.
// Layout (little-endian): "GGUF" u32 version=3, u64 n_tensors, u64 n_kv, KVs, tensor infos
// (name, u32 n_dims, u64 ne[n_dims] innermost first, u32 ggml_type, u64 offset), pad to alignment, data.
import { closeSync, openSync, writeSync } from "node:fs";
import { Q8_0_BLOCK, Q8_0_BLOCK_BYTES, quantizeQ8_0, toBf16Array, toF16Array } from "./dtypes.js";

export const GGUF_MAGIC = 0x46554747; // "GGUF"
export const GGUF_VERSION = 3;
export const GGUF_DEFAULT_ALIGNMENT = 32;

/** ggml tensor types this writer can produce (ids from ggml.h). */
export enum GgmlType {
  F32 = 0,
  F16 = 1,
  Q8_0 = 8,
  BF16 = 30,
}

/** llama_ftype values for general.file_type. */
export enum LlamaFileType {
  ALL_F32 = 0,
  MOSTLY_F16 = 1,
  MOSTLY_Q8_0 = 7,
  MOSTLY_BF16 = 32,
}

export enum GgufValueType {
  UINT8 = 0,
  INT8 = 1,
  UINT16 = 2,
  INT16 = 3,
  UINT32 = 4,
  INT32 = 5,
  FLOAT32 = 6,
  BOOL = 7,
  STRING = 8,
  ARRAY = 9,
  UINT64 = 10,
  INT64 = 11,
  FLOAT64 = 12,
}

type ScalarType = Exclude<GgufValueType, GgufValueType.ARRAY>;

export type GgufValue =
  | { type: ScalarType; value: number | bigint | boolean | string }
  | { type: GgufValueType.ARRAY; itemType: ScalarType; value: ArrayLike<number> | readonly string[] | readonly boolean[] };

/** Bytes of one tensor's data of the given type and shape (ne innermost first). */
export function ggmlTensorBytes(type: GgmlType, ne: readonly number[]): number {
  const n = ne.reduce((a, b) => a * b, 1);
  switch (type) {
    case GgmlType.F32:
      return n * 4;
    case GgmlType.F16:
    case GgmlType.BF16:
      return n * 2;
    case GgmlType.Q8_0:
      if ((ne[0] ?? 0) % Q8_0_BLOCK !== 0) throw new Error(`Q8_0 needs ne[0] % 32 == 0, got ${ne[0]}`);
      return (n / Q8_0_BLOCK) * Q8_0_BLOCK_BYTES;
  }
}

/** Encode f32 values (row-major, innermost dimension contiguous) as the given ggml type. */
export function encodeTensor(type: GgmlType, data: Float32Array): Uint8Array {
  switch (type) {
    case GgmlType.F32:
      return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    case GgmlType.F16: {
      const h = toF16Array(data);
      return new Uint8Array(h.buffer, h.byteOffset, h.byteLength);
    }
    case GgmlType.BF16: {
      const h = toBf16Array(data);
      return new Uint8Array(h.buffer, h.byteOffset, h.byteLength);
    }
    case GgmlType.Q8_0:
      return quantizeQ8_0(data);
  }
}

/** Growable little-endian byte buffer. */
class ByteSink {
  buf = new Uint8Array(1 << 16);
  dv = new DataView(this.buf.buffer);
  len = 0;
  private ensure(n: number): void {
    if (this.len + n <= this.buf.length) return;
    let cap = this.buf.length;
    while (cap < this.len + n) cap *= 2;
    const nb = new Uint8Array(cap);
    nb.set(this.buf.subarray(0, this.len));
    this.buf = nb;
    this.dv = new DataView(nb.buffer);
  }
  u8(v: number): void { this.ensure(1); this.dv.setUint8(this.len, v); this.len += 1; }
  i8(v: number): void { this.ensure(1); this.dv.setInt8(this.len, v); this.len += 1; }
  u16(v: number): void { this.ensure(2); this.dv.setUint16(this.len, v, true); this.len += 2; }
  i16(v: number): void { this.ensure(2); this.dv.setInt16(this.len, v, true); this.len += 2; }
  u32(v: number): void { this.ensure(4); this.dv.setUint32(this.len, v, true); this.len += 4; }
  i32(v: number): void { this.ensure(4); this.dv.setInt32(this.len, v, true); this.len += 4; }
  f32(v: number): void { this.ensure(4); this.dv.setFloat32(this.len, v, true); this.len += 4; }
  f64(v: number): void { this.ensure(8); this.dv.setFloat64(this.len, v, true); this.len += 8; }
  u64(v: number | bigint): void { this.ensure(8); this.dv.setBigUint64(this.len, BigInt(v), true); this.len += 8; }
  i64(v: number | bigint): void { this.ensure(8); this.dv.setBigInt64(this.len, BigInt(v), true); this.len += 8; }
  bytes(b: Uint8Array): void { this.ensure(b.length); this.buf.set(b, this.len); this.len += b.length; }
  str(s: string): void { const b = Buffer.from(s, "utf8"); this.u64(b.length); this.bytes(b); }
  zeros(n: number): void { this.ensure(n); this.buf.fill(0, this.len, this.len + n); this.len += n; }
  view(): Uint8Array { return this.buf.subarray(0, this.len); }
}

function writeScalar(sink: ByteSink, type: ScalarType, v: number | bigint | boolean | string): void {
  switch (type) {
    case GgufValueType.UINT8: sink.u8(Number(v)); break;
    case GgufValueType.INT8: sink.i8(Number(v)); break;
    case GgufValueType.UINT16: sink.u16(Number(v)); break;
    case GgufValueType.INT16: sink.i16(Number(v)); break;
    case GgufValueType.UINT32: sink.u32(Number(v)); break;
    case GgufValueType.INT32: sink.i32(Number(v)); break;
    case GgufValueType.FLOAT32: sink.f32(Number(v)); break;
    case GgufValueType.FLOAT64: sink.f64(Number(v)); break;
    case GgufValueType.UINT64: sink.u64(typeof v === "bigint" ? v : Number(v)); break;
    case GgufValueType.INT64: sink.i64(typeof v === "bigint" ? v : Number(v)); break;
    case GgufValueType.BOOL: sink.u8(v ? 1 : 0); break;
    case GgufValueType.STRING:
      if (typeof v !== "string") throw new Error("GGUF string value must be a string");
      sink.str(v);
      break;
  }
}

interface TensorEntry {
  name: string;
  ne: number[];
  type: GgmlType;
  nbytes: number;
  offset: number;
  written: boolean;
}

/**
 * Usage: add KVs and tensor infos, then open(path) (writes the header), then writeTensor() for each tensor
 * in the order the infos were added, then close().
 */
export class GgufWriter {
  private readonly kv = new Map<string, GgufValue>();
  private readonly tensors: TensorEntry[] = [];
  private readonly alignment: number;
  private fd: number | undefined;
  private pos = 0;
  private next = 0;

  constructor(opts: { alignment?: number } = {}) {
    this.alignment = opts.alignment ?? GGUF_DEFAULT_ALIGNMENT;
    if (this.alignment !== GGUF_DEFAULT_ALIGNMENT) this.addUint32("general.alignment", this.alignment);
  }

  add(key: string, value: GgufValue): this {
    if (this.fd !== undefined) throw new Error("GGUF: header already written");
    this.kv.set(key, value);
    return this;
  }
  addUint32(key: string, v: number): this { return this.add(key, { type: GgufValueType.UINT32, value: v }); }
  addInt32(key: string, v: number): this { return this.add(key, { type: GgufValueType.INT32, value: v }); }
  addUint64(key: string, v: number | bigint): this { return this.add(key, { type: GgufValueType.UINT64, value: v }); }
  addFloat32(key: string, v: number): this { return this.add(key, { type: GgufValueType.FLOAT32, value: v }); }
  addBool(key: string, v: boolean): this { return this.add(key, { type: GgufValueType.BOOL, value: v }); }
  addString(key: string, v: string): this { return this.add(key, { type: GgufValueType.STRING, value: v }); }
  addStringArray(key: string, v: readonly string[]): this {
    return this.add(key, { type: GgufValueType.ARRAY, itemType: GgufValueType.STRING, value: v });
  }
  addInt32Array(key: string, v: ArrayLike<number>): this {
    return this.add(key, { type: GgufValueType.ARRAY, itemType: GgufValueType.INT32, value: v });
  }
  addUint32Array(key: string, v: ArrayLike<number>): this {
    return this.add(key, { type: GgufValueType.ARRAY, itemType: GgufValueType.UINT32, value: v });
  }
  addFloat32Array(key: string, v: ArrayLike<number>): this {
    return this.add(key, { type: GgufValueType.ARRAY, itemType: GgufValueType.FLOAT32, value: v });
  }

  /** ne: dimensions innermost first (for a PyTorch [rows, cols] weight: [cols, rows]). */
  addTensorInfo(name: string, ne: readonly number[], type: GgmlType): this {
    if (this.fd !== undefined) throw new Error("GGUF: header already written");
    if (this.tensors.some((t) => t.name === name)) throw new Error(`GGUF: duplicate tensor ${name}`);
    if (ne.length < 1 || ne.length > 4) throw new Error(`GGUF: tensor ${name} has ${ne.length} dims`);
    const nbytes = ggmlTensorBytes(type, ne);
    const prev = this.tensors[this.tensors.length - 1];
    const offset = prev ? alignUp(prev.offset + prev.nbytes, this.alignment) : 0;
    this.tensors.push({ name, ne: [...ne], type, nbytes, offset, written: false });
    return this;
  }

  /** Writes header, KVs and tensor infos to path, padded to the alignment. */
  open(path: string): void {
    const s = new ByteSink();
    s.u32(GGUF_MAGIC);
    s.u32(GGUF_VERSION);
    s.u64(this.tensors.length);
    s.u64(this.kv.size);
    for (const [key, v] of this.kv) {
      s.str(key);
      s.u32(v.type);
      if (v.type === GgufValueType.ARRAY) {
        s.u32(v.itemType);
        s.u64(v.value.length);
        for (let i = 0; i < v.value.length; i++) writeScalar(s, v.itemType, v.value[i] as number | string | boolean);
      } else {
        writeScalar(s, v.type, v.value);
      }
    }
    for (const t of this.tensors) {
      s.str(t.name);
      s.u32(t.ne.length);
      for (const d of t.ne) s.u64(d);
      s.u32(t.type);
      s.u64(t.offset);
    }
    s.zeros(alignUp(s.len, this.alignment) - s.len);
    this.fd = openSync(path, "w");
    writeAll(this.fd, s.view());
    this.pos = 0;
  }

  /** Writes the next tensor's data (already encoded in its type). */
  writeTensorBytes(name: string, data: Uint8Array): void {
    if (this.fd === undefined) throw new Error("GGUF: open() first");
    const t = this.tensors[this.next];
    if (!t || t.name !== name) throw new Error(`GGUF: expected tensor ${t?.name ?? "(none)"}, got ${name}`);
    if (data.byteLength !== t.nbytes) throw new Error(`GGUF: tensor ${name}: ${data.byteLength} bytes, expected ${t.nbytes}`);
    if (this.pos < t.offset) writeAll(this.fd, new Uint8Array(t.offset - this.pos));
    writeAll(this.fd, data);
    this.pos = t.offset + t.nbytes;
    t.written = true;
    this.next++;
  }

  /** Encodes f32 values as the tensor's declared type and writes them. */
  writeTensor(name: string, data: Float32Array): void {
    const t = this.tensors[this.next];
    if (!t || t.name !== name) throw new Error(`GGUF: expected tensor ${t?.name ?? "(none)"}, got ${name}`);
    this.writeTensorBytes(name, encodeTensor(t.type, data));
  }

  close(): void {
    if (this.fd === undefined) return;
    const missing = this.tensors.filter((t) => !t.written).map((t) => t.name);
    // Pad the end too, so the data section is a whole number of alignment units (as gguf-py does).
    const end = alignUp(this.pos, this.alignment);
    if (end > this.pos) writeAll(this.fd, new Uint8Array(end - this.pos));
    closeSync(this.fd);
    this.fd = undefined;
    if (missing.length) throw new Error(`GGUF: tensors not written: ${missing.join(", ")}`);
  }
}

function alignUp(n: number, a: number): number {
  return Math.ceil(n / a) * a;
}

function writeAll(fd: number, data: Uint8Array): void {
  let off = 0;
  while (off < data.byteLength) off += writeSync(fd, data, off, data.byteLength - off);
}
