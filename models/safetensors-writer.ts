// A small safetensors writer: u64 LE header length, JSON header {name: {dtype, shape, data_offsets}, __metadata__},
// padded with spaces so the data starts 8-byte aligned, then the tensors back to back (contiguous, as the format
// requires; every tensor's byte size must be a multiple of 8 so each one stays 8-byte aligned).
import { closeSync, openSync, writeSync } from "node:fs";
import { toBf16Array, toF16Array } from "./dtypes.js";

export type SafetensorsDtype = "F32" | "F16" | "BF16";

export function safetensorsDtypeBytes(dtype: SafetensorsDtype): number {
  return dtype === "F32" ? 4 : 2;
}

export function encodeSafetensors(dtype: SafetensorsDtype, data: Float32Array): Uint8Array {
  if (dtype === "F32") return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  const h = dtype === "F16" ? toF16Array(data) : toBf16Array(data);
  return new Uint8Array(h.buffer, h.byteOffset, h.byteLength);
}

interface Entry {
  name: string;
  dtype: SafetensorsDtype;
  shape: number[];
  begin: number;
  end: number;
  written: boolean;
}

/** Usage: addTensor() for each tensor, open(path), writeTensor() in the same order, close(). */
export class SafetensorsWriter {
  private readonly entries: Entry[] = [];
  private fd: number | undefined;
  private next = 0;
  private dataStart = 0;

  constructor(private readonly metadata: Record<string, string> = { format: "pt" }) {}

  addTensor(name: string, dtype: SafetensorsDtype, shape: readonly number[]): this {
    if (this.fd !== undefined) throw new Error("safetensors: header already written");
    if (this.entries.some((e) => e.name === name)) throw new Error(`safetensors: duplicate tensor ${name}`);
    const n = shape.reduce((a, b) => a * b, 1);
    const nbytes = n * safetensorsDtypeBytes(dtype);
    const prev = this.entries[this.entries.length - 1];
    const begin = prev ? prev.end : 0;
    if (begin % 8 !== 0) throw new Error(`safetensors: tensor ${name} would start unaligned (${begin})`);
    this.entries.push({ name, dtype, shape: [...shape], begin, end: begin + nbytes, written: false });
    return this;
  }

  /** Total bytes of tensor data. */
  get dataBytes(): number {
    return this.entries[this.entries.length - 1]?.end ?? 0;
  }

  tensorNames(): string[] {
    return this.entries.map((e) => e.name);
  }

  open(path: string): void {
    const header: Record<string, unknown> = { __metadata__: this.metadata };
    for (const e of this.entries) header[e.name] = { dtype: e.dtype, shape: e.shape, data_offsets: [e.begin, e.end] };
    let json = Buffer.from(JSON.stringify(header), "utf8");
    const padded = Math.ceil((8 + json.length) / 8) * 8 - 8;
    if (padded > json.length) json = Buffer.concat([json, Buffer.alloc(padded - json.length, 0x20)]);
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(json.length));
    this.fd = openSync(path, "w");
    writeAll(this.fd, len);
    writeAll(this.fd, json);
    this.dataStart = 8 + json.length;
  }

  writeTensor(name: string, data: Float32Array): void {
    if (this.fd === undefined) throw new Error("safetensors: open() first");
    const e = this.entries[this.next];
    if (!e || e.name !== name) throw new Error(`safetensors: expected tensor ${e?.name ?? "(none)"}, got ${name}`);
    const bytes = encodeSafetensors(e.dtype, data);
    if (bytes.byteLength !== e.end - e.begin) throw new Error(`safetensors: tensor ${name} has wrong size`);
    writeAll(this.fd, bytes);
    e.written = true;
    this.next++;
  }

  close(): void {
    if (this.fd === undefined) return;
    closeSync(this.fd);
    this.fd = undefined;
    const missing = this.entries.filter((e) => !e.written).map((e) => e.name);
    if (missing.length) throw new Error(`safetensors: tensors not written: ${missing.join(", ")}`);
  }

  get headerBytes(): number {
    return this.dataStart;
  }
}

function writeAll(fd: number, data: Uint8Array): void {
  let off = 0;
  while (off < data.byteLength) off += writeSync(fd, data, off, data.byteLength - off);
}
