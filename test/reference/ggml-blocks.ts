// An independent decoder for ggml's tensor element types (the block layouts of ggml-common.h), written from
// the layouts rather than from neoserve's native code, so tests can check what the engine reads.
//
// Bit-exact with ggml's reference C dequantizers (ggml-base: dequantize_row_*, ggml_fp16_to_fp32_row,
// ggml_bf16_to_fp32_row): every float operation is done in the order C does it and rounded to float32 with
// Math.fround (C's `float * int` converts the int to float first; the ints here are small, so exactly). A product
// or sum of two float32 values computed in double and rounded once is the correctly rounded float32 result, as
// in C. (For these layouts every product, e.g. Q6_K's d*sc*q at 11+7+5 significant bits, is exact in float32,
// so only the final add/subtract rounds, and a compiler that fuses `a*b - c` into an FMA gets the same bits.)
// NaN and infinite fp16 scales propagate as in C; NaN payloads are not kept (JavaScript may canonicalize NaNs).
// Checked against ggml's own ggml_get_type_traits(type)->to_float on random blocks (random fp16 scales, NaN
// and infinities included) and all 65536 F16/BF16 values: identical bits, NaN for NaN.

export interface GgmlTypeInfo {
  /** enum ggml_type value (ggml.h) */
  id: number;
  /** upper case, as llama-quantize spells it ("Q4_K", "BF16"); ggml's own type_name is "q4_K", "bf16" */
  name: string;
  /** elements per block (1 for F32/F16/BF16) */
  blockElems: number;
  /** bytes per block */
  blockBytes: number;
}

export const QK_K = 256;

export const GGML_TYPES: readonly GgmlTypeInfo[] = Object.freeze([
  { id: 0, name: "F32", blockElems: 1, blockBytes: 4 },
  { id: 1, name: "F16", blockElems: 1, blockBytes: 2 },
  { id: 2, name: "Q4_0", blockElems: 32, blockBytes: 2 + 16 },
  { id: 3, name: "Q4_1", blockElems: 32, blockBytes: 2 + 2 + 16 },
  { id: 6, name: "Q5_0", blockElems: 32, blockBytes: 2 + 4 + 16 },
  { id: 7, name: "Q5_1", blockElems: 32, blockBytes: 2 + 2 + 4 + 16 },
  { id: 8, name: "Q8_0", blockElems: 32, blockBytes: 2 + 32 },
  { id: 10, name: "Q2_K", blockElems: QK_K, blockBytes: 16 + 64 + 2 + 2 },
  { id: 11, name: "Q3_K", blockElems: QK_K, blockBytes: 32 + 64 + 12 + 2 },
  { id: 12, name: "Q4_K", blockElems: QK_K, blockBytes: 2 + 2 + 12 + 128 },
  { id: 13, name: "Q5_K", blockElems: QK_K, blockBytes: 2 + 2 + 12 + 32 + 128 },
  { id: 14, name: "Q6_K", blockElems: QK_K, blockBytes: 128 + 64 + 16 + 2 },
  { id: 30, name: "BF16", blockElems: 1, blockBytes: 2 },
].map((t) => Object.freeze(t)));

/** The type with this id, or this name (any case: "q4_k", "Q4_K"); throws for a type this decoder lacks. */
export function ggmlType(idOrName: number | string): GgmlTypeInfo {
  const t =
    typeof idOrName === "number"
      ? GGML_TYPES.find((x) => x.id === idOrName)
      : GGML_TYPES.find((x) => x.name.toLowerCase() === idOrName.toLowerCase());
  if (!t) throw new Error(`ggml type ${JSON.stringify(idOrName)} is not one this decoder knows`);
  return t;
}

/** Bytes that n elements of the type take (n a whole number of blocks). */
export function ggmlBytes(typeId: number, n: number): number {
  const t = ggmlType(typeId);
  if (n % t.blockElems !== 0) throw new Error(`${t.name}: ${n} elements is not a whole number of ${t.blockElems}-element blocks`);
  return (n / t.blockElems) * t.blockBytes;
}

const f = Math.fround;

/** IEEE binary16 bits -> its value (exact; every half is a float32). */
export function fp16ToNumber(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const man = h & 0x3ff;
  if (exp === 0x1f) return man === 0 ? sign * Infinity : NaN;
  if (exp === 0) return sign * man * 2 ** -24; // subnormal (and ±0)
  return sign * (1024 + man) * 2 ** (exp - 25);
}

/** bfloat16 bits -> its value (the top half of a float32). */
export function bf16ToNumber(h: number): number {
  bf16Scratch.setUint32(0, (h & 0xffff) << 16, true);
  return bf16Scratch.getFloat32(0, true);
}
const bf16Scratch = new DataView(new ArrayBuffer(4));

/**
 * Decodes n elements of ggml type typeId from bytes[0..], n a whole number of blocks (for a quantized
 * tensor: rows of ne[0] elements each; ne[0] is a multiple of the block size). Returns float32 values.
 */
export function dequantizeGgml(typeId: number, bytes: Uint8Array, n: number): Float32Array {
  const t = ggmlType(typeId);
  const need = ggmlBytes(typeId, n);
  if (bytes.length < need) throw new Error(`${t.name}: ${n} elements need ${need} bytes, got ${bytes.length}`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, need);
  const y = new Float32Array(n);
  const nb = n / t.blockElems;
  const half = (o: number) => fp16ToNumber(dv.getUint16(o, true));
  switch (t.id) {
    case 0: // F32: the bytes themselves (bit for bit, NaN payloads included)
      new Uint8Array(y.buffer).set(bytes.subarray(0, need));
      return y;
    case 1:
      for (let i = 0; i < n; i++) y[i] = half(2 * i);
      return y;
    case 30:
      for (let i = 0; i < n; i++) y[i] = bf16ToNumber(dv.getUint16(2 * i, true));
      return y;
    case 2: // Q4_0: { half d; u8 qs[16] }; y[j] = (lo(qs[j]) - 8)*d, y[j+16] = (hi(qs[j]) - 8)*d
      for (let i = 0; i < nb; i++) {
        const o = i * 18;
        const d = half(o);
        for (let j = 0; j < 16; j++) {
          const q = bytes[o + 2 + j]!;
          y[i * 32 + j] = f(((q & 15) - 8) * d);
          y[i * 32 + j + 16] = f(((q >> 4) - 8) * d);
        }
      }
      return y;
    case 3: // Q4_1: { half d, m; u8 qs[16] }; y = q*d + m
      for (let i = 0; i < nb; i++) {
        const o = i * 20;
        const d = half(o);
        const m = half(o + 2);
        for (let j = 0; j < 16; j++) {
          const q = bytes[o + 4 + j]!;
          y[i * 32 + j] = f(f((q & 15) * d) + m);
          y[i * 32 + j + 16] = f(f((q >> 4) * d) + m);
        }
      }
      return y;
    case 6: // Q5_0: { half d; u32 qh; u8 qs[16] }; 5th bit of element j is bit j of qh; y = (q - 16)*d
      for (let i = 0; i < nb; i++) {
        const o = i * 22;
        const d = half(o);
        const qh = dv.getUint32(o + 2, true);
        for (let j = 0; j < 16; j++) {
          const q = bytes[o + 6 + j]!;
          const q0 = (q & 15) | (((qh >>> j) & 1) << 4);
          const q1 = (q >> 4) | (((qh >>> (j + 16)) & 1) << 4);
          y[i * 32 + j] = f((q0 - 16) * d);
          y[i * 32 + j + 16] = f((q1 - 16) * d);
        }
      }
      return y;
    case 7: // Q5_1: { half d, m; u32 qh; u8 qs[16] }; y = q*d + m
      for (let i = 0; i < nb; i++) {
        const o = i * 24;
        const d = half(o);
        const m = half(o + 2);
        const qh = dv.getUint32(o + 4, true);
        for (let j = 0; j < 16; j++) {
          const q = bytes[o + 8 + j]!;
          const q0 = (q & 15) | (((qh >>> j) & 1) << 4);
          const q1 = (q >> 4) | (((qh >>> (j + 16)) & 1) << 4);
          y[i * 32 + j] = f(f(q0 * d) + m);
          y[i * 32 + j + 16] = f(f(q1 * d) + m);
        }
      }
      return y;
    case 8: // Q8_0: { half d; i8 qs[32] }; y = q*d
      for (let i = 0; i < nb; i++) {
        const o = i * 34;
        const d = half(o);
        for (let j = 0; j < 32; j++) y[i * 32 + j] = f(dv.getInt8(o + 2 + j) * d);
      }
      return y;
    case 10:
      for (let i = 0; i < nb; i++) decodeQ2K(dv, i * 84, y, i * QK_K);
      return y;
    case 11:
      for (let i = 0; i < nb; i++) decodeQ3K(dv, i * 110, y, i * QK_K);
      return y;
    case 12:
      for (let i = 0; i < nb; i++) decodeQ45K(dv, i * 144, y, i * QK_K, false);
      return y;
    case 13:
      for (let i = 0; i < nb; i++) decodeQ45K(dv, i * 176, y, i * QK_K, true);
      return y;
    case 14:
      for (let i = 0; i < nb; i++) decodeQ6K(dv, i * 210, y, i * QK_K);
      return y;
  }
  throw new Error(`unreachable: ${t.name}`);
}

// Q2_K: { u8 scales[16]; u8 qs[64]; half d; half dmin }. 16 groups of 16; group g has scale nibble
// scales[g] & 15 and min nibble scales[g] >> 4. Element e = 128*h + 32*s + 16*k + l (h half, s shift
// step, k sub-group, l lane) is bits 2s..2s+1 of qs[32*h + 16*k + l]; its group is 8*h + 2*s + k.
// y = (d*sc)*q - (dmin*m)
function decodeQ2K(dv: DataView, o: number, y: Float32Array, base: number): void {
  const d = fp16ToNumber(dv.getUint16(o + 80, true));
  const dmin = fp16ToNumber(dv.getUint16(o + 82, true));
  for (let h = 0; h < 2; h++)
    for (let s = 0; s < 4; s++)
      for (let k = 0; k < 2; k++) {
        const sc = dv.getUint8(o + 8 * h + 2 * s + k);
        const dl = f(d * (sc & 15));
        const ml = f(dmin * (sc >> 4));
        for (let l = 0; l < 16; l++) {
          const q = (dv.getUint8(o + 16 + 32 * h + 16 * k + l) >> (2 * s)) & 3;
          y[base + 128 * h + 32 * s + 16 * k + l] = f(f(dl * q) - ml);
        }
      }
}

// Q3_K: { u8 hmask[32]; u8 qs[64]; u8 scales[12]; half d }. Same element order as Q2_K; the third bit of
// element (h, s, k, l) is bit 4*h + s of hmask[16*k + l], and a clear bit subtracts 4 (q in -4..3).
// The 16 6-bit scales: low 4 bits of scale g are the low nibble of scales[g] for g < 8, else the high nibble
// of scales[g - 8]; the top 2 bits are bits 2*(g>>2)..+1 of scales[8 + (g & 3)]. y = (d*(sc - 32))*q
function decodeQ3K(dv: DataView, o: number, y: Float32Array, base: number): void {
  const sb = o + 96;
  const d = fp16ToNumber(dv.getUint16(o + 108, true));
  for (let h = 0; h < 2; h++)
    for (let s = 0; s < 4; s++)
      for (let k = 0; k < 2; k++) {
        const g = 8 * h + 2 * s + k;
        const lo = g < 8 ? dv.getUint8(sb + g) & 15 : dv.getUint8(sb + g - 8) >> 4;
        const hi = (dv.getUint8(sb + 8 + (g & 3)) >> (2 * (g >> 2))) & 3;
        const dl = f(d * ((lo | (hi << 4)) - 32));
        const bit = 1 << (4 * h + s);
        for (let l = 0; l < 16; l++) {
          const q2 = (dv.getUint8(o + 32 + 32 * h + 16 * k + l) >> (2 * s)) & 3;
          const q = q2 - (dv.getUint8(o + 16 * k + l) & bit ? 0 : 4);
          y[base + 128 * h + 32 * s + 16 * k + l] = f(dl * q);
        }
      }
}

// The 6-bit scale and min of sub-block j (0..7) of a Q4_K/Q5_K block, from its 12 scale bytes at p:
// j < 4: low 6 bits of bytes j (scale) and j+4 (min); j >= 4: the nibbles of byte j+4 (low: scale, high: min)
// with the top bits of bytes j-4 (scale) and j (min) as bits 4..5.
function scaleMinK4(dv: DataView, p: number, j: number): [number, number] {
  if (j < 4) return [dv.getUint8(p + j) & 63, dv.getUint8(p + j + 4) & 63];
  const b = dv.getUint8(p + j + 4);
  return [(b & 15) | ((dv.getUint8(p + j - 4) >> 6) << 4), (b >> 4) | ((dv.getUint8(p + j) >> 6) << 4)];
}

// Q4_K: { half d; half dmin; u8 scales[12]; u8 qs[128] }; Q5_K adds u8 qh[32] before qs.
// 8 sub-blocks of 32: sub-block 2c takes the low nibbles of qs[32c..32c+31], sub-block 2c+1 the high ones;
// Q5_K's fifth bit of element l of sub-block b is bit b of qh[l]. y = (d*sc)*q - (dmin*m)
function decodeQ45K(dv: DataView, o: number, y: Float32Array, base: number, five: boolean): void {
  const d = fp16ToNumber(dv.getUint16(o, true));
  const dmin = fp16ToNumber(dv.getUint16(o + 2, true));
  const qs = o + (five ? 48 : 16);
  for (let b = 0; b < 8; b++) {
    const [sc, m] = scaleMinK4(dv, o + 4, b);
    const d1 = f(d * sc);
    const m1 = f(dmin * m);
    const c = b >> 1;
    const shift = (b & 1) * 4;
    for (let l = 0; l < 32; l++) {
      let q = (dv.getUint8(qs + 32 * c + l) >> shift) & 15;
      if (five && dv.getUint8(o + 16 + l) & (1 << b)) q += 16;
      y[base + 32 * b + l] = f(f(d1 * q) - m1);
    }
  }
}

// Q6_K: { u8 ql[128]; u8 qh[64]; i8 scales[16]; half d }. Two halves of 128; in half h, element
// 32*r + l (r 0..3, l 0..31) has low nibble from ql[64h + l + 32*(r&1)] (low nibble for r < 2, high for
// r >= 2), top 2 bits from bits 2r..2r+1 of qh[32h + l], q = that - 32, and scale scales[8h + 2r + (l>>4)].
// y = (d*sc)*q
function decodeQ6K(dv: DataView, o: number, y: Float32Array, base: number): void {
  const d = fp16ToNumber(dv.getUint16(o + 208, true));
  for (let h = 0; h < 2; h++)
    for (let r = 0; r < 4; r++)
      for (let l = 0; l < 32; l++) {
        const lowByte = dv.getUint8(o + 64 * h + l + 32 * (r & 1));
        const lo = r < 2 ? lowByte & 15 : lowByte >> 4;
        const hi = (dv.getUint8(o + 128 + 32 * h + l) >> (2 * r)) & 3;
        const q = (lo | (hi << 4)) - 32;
        const sc = dv.getInt8(o + 192 + 8 * h + 2 * r + (l >> 4));
        y[base + 128 * h + 32 * r + l] = f(f(d * sc) * q);
      }
}
