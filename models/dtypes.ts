// Float conversions shared by the safetensors and GGUF writers, bit-exact with numpy / ggml:
//  - f32 -> f16: IEEE round-to-nearest-even (numpy astype(float16), ggml's FP32_TO_FP16)
//  - f32 -> bf16: round-to-nearest-even, NaN kept quiet (gguf-py / ggml's fp32_to_bf16)
//  - Q8_0: blocks of 32, d = amax / 127, q = roundf(x * (1/d)) (half away from zero), d stored as f16.

const f32buf = new Float32Array(1);
const u32buf = new Uint32Array(f32buf.buffer);

/** f32 bits -> f16 bits, round to nearest even (handles subnormals, inf, nan). */
export function f32BitsToF16(x: number): number {
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 | (mant >>> 13) : 0);
  // unbiased exponent
  const e = exp - 127;
  if (e > 15) return sign | 0x7c00; // overflow -> inf
  if (e >= -14) {
    // normal f16
    let h = ((e + 15) << 10) | (mant >>> 13);
    const rem = mant & 0x1fff;
    if (rem > 0x1000 || (rem === 0x1000 && (h & 1))) h += 1; // may carry into exponent (correct: becomes inf at the top)
    return sign | h;
  }
  if (e < -25) return sign; // too small even to round up to the smallest subnormal
  // subnormal f16: value = mant_full * 2^(e-23), f16 subnormal unit 2^-24
  mant |= 0x800000;
  // value = mant_full * 2^(e-23); in units of 2^-24 that is mant_full * 2^(e+1) = mant_full >> -(e+1)
  const shift = -e - 1; // 14..24
  const h = mant >>> shift;
  const rem = mant & ((1 << shift) - 1);
  const half = 1 << (shift - 1);
  let r = h;
  if (rem > half || (rem === half && (h & 1))) r += 1;
  return sign | r;
}

export function f32ToF16(v: number): number {
  f32buf[0] = v;
  return f32BitsToF16(u32buf[0]!);
}

export function f16ToF32(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 0x1f) return mant ? NaN : sign * Infinity;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

export function f32BitsToBf16(x: number): number {
  if ((x & 0x7fffffff) > 0x7f800000) return ((x >>> 16) & 0xffff) | 0x40; // quiet NaN
  return ((x + (0x7fff + ((x >>> 16) & 1))) >>> 16) & 0xffff;
}

export function f32ToBf16(v: number): number {
  f32buf[0] = v;
  return f32BitsToBf16(u32buf[0]!);
}

export function bf16ToF32(h: number): number {
  u32buf[0] = (h & 0xffff) << 16;
  return f32buf[0]!;
}

export function toF16Array(src: Float32Array): Uint16Array {
  const bits = new Uint32Array(src.buffer, src.byteOffset, src.length);
  const out = new Uint16Array(src.length);
  for (let i = 0; i < src.length; i++) out[i] = f32BitsToF16(bits[i]!);
  return out;
}

export function toBf16Array(src: Float32Array): Uint16Array {
  const bits = new Uint32Array(src.buffer, src.byteOffset, src.length);
  const out = new Uint16Array(src.length);
  for (let i = 0; i < src.length; i++) out[i] = f32BitsToBf16(bits[i]!);
  return out;
}

/** C roundf: round half away from zero. */
function roundf(x: number): number {
  return x < 0 ? -Math.floor(-x + 0.5) : Math.floor(x + 0.5);
}

export const Q8_0_BLOCK = 32;
export const Q8_0_BLOCK_BYTES = 34; // f16 d + 32 x int8

/**
 * Quantize to ggml's Q8_0 (block_q8_0 { ggml_half d; int8_t qs[32]; }), row-major, length % 32 == 0.
 * Arithmetic in float32 as ggml's quantize_row_q8_0_ref and gguf-py's quants.py do.
 */
export function quantizeQ8_0(src: Float32Array): Uint8Array {
  if (src.length % Q8_0_BLOCK !== 0) throw new Error(`Q8_0: length ${src.length} is not a multiple of 32`);
  const nb = src.length / Q8_0_BLOCK;
  const out = new Uint8Array(nb * Q8_0_BLOCK_BYTES);
  const dv = new DataView(out.buffer);
  const fr = Math.fround;
  for (let b = 0; b < nb; b++) {
    const base = b * Q8_0_BLOCK;
    let amax = 0;
    for (let j = 0; j < Q8_0_BLOCK; j++) {
      const a = Math.abs(src[base + j]!);
      if (a > amax) amax = a;
    }
    const d = fr(amax / 127);
    const id = d !== 0 ? fr(1 / d) : 0;
    const o = b * Q8_0_BLOCK_BYTES;
    dv.setUint16(o, f32ToF16(d), true);
    for (let j = 0; j < Q8_0_BLOCK; j++) {
      const q = roundf(fr(src[base + j]! * id));
      dv.setInt8(o + 2 + j, q);
    }
  }
  return out;
}

/** Dequantize Q8_0 (for tests / diagnostics). */
export function dequantizeQ8_0(data: Uint8Array, n: number): Float32Array {
  const out = new Float32Array(n);
  const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
  for (let b = 0; b < n / Q8_0_BLOCK; b++) {
    const o = b * Q8_0_BLOCK_BYTES;
    const d = f16ToF32(dv.getUint16(o, true));
    for (let j = 0; j < Q8_0_BLOCK; j++) out[b * Q8_0_BLOCK + j] = d * dv.getInt8(o + 2 + j);
  }
  return out;
}
