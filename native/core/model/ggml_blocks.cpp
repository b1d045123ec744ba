#include "ggml_blocks.h"

#include <cstring>

#include "half.h"

namespace neoserve {
namespace {

float half_at(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return fp16_to_f32(h);
}

// Each decoder below follows its ggml counterpart's arithmetic exactly:
// integer quants converted to float, then the products and differences in
// ggml's order, each rounded to float (this file is built without fma
// contraction: portable x86-64 has no fma instruction to contract into).

// Types whose 32-blocks are exactly d * int8 values (Q8_0, Q4_0, Q5_0): the
// integer values and scales, which int8 kernels run unchanged.
void to_int8_q8_0(const uint8_t* b, int64_t n, int8_t* q, float* d) {  // {d; int8 qs[32]}
  for (int64_t i = 0; i < n; ++i, b += 34, q += 32) {
    d[i] = half_at(b);
    std::memcpy(q, b + 2, 32);
  }
}

void to_int8_q4_0(const uint8_t* b, int64_t n, int8_t* q, float* d) {  // {d; qs[16]}: low nibbles then high, minus 8
  for (int64_t i = 0; i < n; ++i, b += 18, q += 32) {
    d[i] = half_at(b);
    for (int j = 0; j < 16; ++j) {
      q[j] = static_cast<int8_t>((b[2 + j] & 0x0F) - 8);
      q[j + 16] = static_cast<int8_t>((b[2 + j] >> 4) - 8);
    }
  }
}

// Q5: a fifth bit per value in a 32-bit little-endian word, bit j for value j.
int fifth_bit(uint32_t qh, int j) { return static_cast<int>((qh >> j) & 1u) << 4; }

void to_int8_q5_0(const uint8_t* b, int64_t n, int8_t* q, float* d) {  // {d; qh[4]; qs[16]}: minus 16
  for (int64_t i = 0; i < n; ++i, b += 22, q += 32) {
    d[i] = half_at(b);
    uint32_t qh;
    std::memcpy(&qh, b + 2, 4);
    for (int j = 0; j < 16; ++j) {
      q[j] = static_cast<int8_t>(((b[6 + j] & 0x0F) | fifth_bit(qh, j)) - 16);
      q[j + 16] = static_cast<int8_t>(((b[6 + j] >> 4) | fifth_bit(qh, j + 16)) - 16);
    }
  }
}

// Q4_K/Q5_K: 8 groups of 32, each a 6-bit scale and 6-bit min packed in 12 bytes.
void scale_min_k4(int j, const uint8_t* q, uint8_t& sc, uint8_t& m) {
  if (j < 4) {
    sc = q[j] & 63;
    m = q[j + 4] & 63;
  } else {
    sc = static_cast<uint8_t>((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
    m = static_cast<uint8_t>((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
  }
}

// 4-bit types as d * q - m, q unsigned: Q4_0's m is 8d, Q4_1's its -m, Q4_K's
// the sub-block's dmin * min (each product exact in fp32: 11 x 6 bits).
void to_u4_q4_0(const uint8_t* b, int64_t n, uint8_t* q, float* d, float* m) {
  for (int64_t i = 0; i < n; ++i, b += 18, q += 32) {
    d[i] = half_at(b);
    m[i] = 8.0f * d[i];
    for (int j = 0; j < 16; ++j) {
      q[j] = b[2 + j] & 0x0F;
      q[j + 16] = b[2 + j] >> 4;
    }
  }
}

void to_u4_q4_1(const uint8_t* b, int64_t n, uint8_t* q, float* d, float* m) {
  for (int64_t i = 0; i < n; ++i, b += 20, q += 32) {
    d[i] = half_at(b);
    m[i] = -half_at(b + 2);
    for (int j = 0; j < 16; ++j) {
      q[j] = b[4 + j] & 0x0F;
      q[j + 16] = b[4 + j] >> 4;
    }
  }
}

void to_u4_q4_k(const uint8_t* b, int64_t n32, uint8_t* q, float* d, float* m) {
  for (int64_t i = 0; i < n32 / 8; ++i, b += 144) {
    const float dd = half_at(b), dmin = half_at(b + 2);
    const uint8_t* qs = b + 16;
    for (int g = 0; g < 8; ++g, q += 32) {
      uint8_t sc, mn;
      scale_min_k4(g, b + 4, sc, mn);
      d[i * 8 + g] = dd * static_cast<float>(sc);
      m[i * 8 + g] = dmin * static_cast<float>(mn);
      const uint8_t* src = qs + 32 * (g / 2);
      for (int l = 0; l < 32; ++l) q[l] = g % 2 ? src[l] >> 4 : src[l] & 0x0F;
    }
  }
}

// ggml: y = float(q) * d.
template <void (*ToInt8)(const uint8_t*, int64_t, int8_t*, float*), size_t kBlockBytes>
void dequantize_symmetric(const uint8_t* b, int64_t n, float* y) {
  int8_t q[32];
  float d;
  for (int64_t i = 0; i < n; ++i, b += kBlockBytes, y += 32) {
    ToInt8(b, 1, q, &d);
    for (int j = 0; j < 32; ++j) y[j] = static_cast<float>(q[j]) * d;
  }
}

void dequantize_q4_1(const uint8_t* b, int64_t n, float* y) {  // {d; m; qs[16]}: q * d + m
  for (int64_t i = 0; i < n; ++i, b += 20, y += 32) {
    const float d = half_at(b), m = half_at(b + 2);
    const uint8_t* qs = b + 4;
    for (int j = 0; j < 16; ++j) {
      y[j] = static_cast<float>(qs[j] & 0x0F) * d + m;
      y[j + 16] = static_cast<float>(qs[j] >> 4) * d + m;
    }
  }
}

void dequantize_q5_1(const uint8_t* b, int64_t n, float* y) {  // {d; m; qh[4]; qs[16]}
  for (int64_t i = 0; i < n; ++i, b += 24, y += 32) {
    const float d = half_at(b), m = half_at(b + 2);
    uint32_t qh;
    std::memcpy(&qh, b + 4, 4);
    const uint8_t* qs = b + 8;
    for (int j = 0; j < 16; ++j) {
      y[j] = static_cast<float>((qs[j] & 0x0F) | fifth_bit(qh, j)) * d + m;
      y[j + 16] = static_cast<float>((qs[j] >> 4) | fifth_bit(qh, j + 16)) * d + m;
    }
  }
}

// {scales[16]; qs[64]; d; dmin}: 16 groups of 16, each a 4-bit scale and
// 4-bit min; 2-bit quants, four groups of 32 bytes' bit pairs per 128 values.
void dequantize_q2_k(const uint8_t* b, int64_t n, float* y) {
  for (int64_t i = 0; i < n; ++i, b += 84) {
    const uint8_t* scales = b;
    const uint8_t* q = b + 16;
    const float d = half_at(b + 80), min = half_at(b + 82);
    int is = 0;
    for (int half = 0; half < 2; ++half, q += 32)
      for (int shift = 0; shift < 8; shift += 2)
        for (int part = 0; part < 2; ++part) {
          const uint8_t sc = scales[is++];
          const float dl = d * static_cast<float>(sc & 0xF), ml = min * static_cast<float>(sc >> 4);
          for (int l = 0; l < 16; ++l) *y++ = dl * static_cast<float>((q[l + 16 * part] >> shift) & 3) - ml;
        }
  }
}

// {hmask[32]; qs[64]; scales[12]; d}: 16 signed 6-bit scales (offset 32),
// 2-bit quants with a high bit from hmask (clear means minus 4).
void dequantize_q3_k(const uint8_t* b, int64_t n, float* y) {
  for (int64_t i = 0; i < n; ++i, b += 110) {
    const uint8_t* hm = b;
    const uint8_t* q = b + 32;
    const uint8_t* packed = b + 96;
    const float d_all = half_at(b + 108);
    int8_t scales[16];  // low 4 bits from bytes 0..7, high 2 bits from bytes 8..11
    for (int s = 0; s < 16; ++s) {
      const int low = (packed[s % 8] >> (s < 8 ? 0 : 4)) & 0xF;
      const int high = (packed[8 + s % 4] >> (2 * (s / 4))) & 3;
      scales[s] = static_cast<int8_t>(low | (high << 4));
    }
    int is = 0;
    uint8_t m = 1;
    for (int half = 0; half < 2; ++half, q += 32)
      for (int shift = 0; shift < 8; shift += 2, m <<= 1)
        for (int part = 0; part < 2; ++part) {
          const float dl = d_all * static_cast<float>(scales[is++] - 32);
          for (int l = 0; l < 16; ++l) {
            const int k = l + 16 * part;
            *y++ = dl * static_cast<float>(((q[k] >> shift) & 3) - ((hm[k] & m) ? 0 : 4));
          }
        }
  }
}

void dequantize_q4_k(const uint8_t* b, int64_t n, float* y) {  // {d; dmin; scales[12]; qs[128]}
  for (int64_t i = 0; i < n; ++i, b += 144) {
    const float d = half_at(b), min = half_at(b + 2);
    const uint8_t* scales = b + 4;
    const uint8_t* q = b + 16;
    for (int g = 0; g < 8; g += 2, q += 32) {
      uint8_t sc, m;
      scale_min_k4(g, scales, sc, m);
      const float d1 = d * static_cast<float>(sc), m1 = min * static_cast<float>(m);
      scale_min_k4(g + 1, scales, sc, m);
      const float d2 = d * static_cast<float>(sc), m2 = min * static_cast<float>(m);
      for (int l = 0; l < 32; ++l) *y++ = d1 * static_cast<float>(q[l] & 0xF) - m1;
      for (int l = 0; l < 32; ++l) *y++ = d2 * static_cast<float>(q[l] >> 4) - m2;
    }
  }
}

void dequantize_q5_k(const uint8_t* b, int64_t n, float* y) {  // {d; dmin; scales[12]; qh[32]; qs[128]}
  for (int64_t i = 0; i < n; ++i, b += 176) {
    const float d = half_at(b), min = half_at(b + 2);
    const uint8_t* scales = b + 4;
    const uint8_t* qh = b + 16;
    const uint8_t* ql = b + 48;
    uint8_t u1 = 1, u2 = 2;
    for (int g = 0; g < 8; g += 2, ql += 32, u1 <<= 2, u2 <<= 2) {
      uint8_t sc, m;
      scale_min_k4(g, scales, sc, m);
      const float d1 = d * static_cast<float>(sc), m1 = min * static_cast<float>(m);
      scale_min_k4(g + 1, scales, sc, m);
      const float d2 = d * static_cast<float>(sc), m2 = min * static_cast<float>(m);
      for (int l = 0; l < 32; ++l) *y++ = d1 * static_cast<float>((ql[l] & 0xF) + ((qh[l] & u1) ? 16 : 0)) - m1;
      for (int l = 0; l < 32; ++l) *y++ = d2 * static_cast<float>((ql[l] >> 4) + ((qh[l] & u2) ? 16 : 0)) - m2;
    }
  }
}

// {ql[128]; qh[64]; int8 scales[16]; d}: 6-bit quants minus 32, a signed
// 8-bit scale per 16 values; y = d * scale * q, left to right.
void dequantize_q6_k(const uint8_t* b, int64_t n, float* y) {
  for (int64_t i = 0; i < n; ++i, b += 210) {
    const uint8_t* ql = b;
    const uint8_t* qh = b + 128;
    const int8_t* sc = reinterpret_cast<const int8_t*>(b + 192);
    const float d = half_at(b + 208);
    for (int half = 0; half < 2; ++half, y += 128, ql += 64, qh += 32, sc += 8)
      for (int l = 0; l < 32; ++l) {
        const int is = l / 16;
        const int q1 = ((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
        const int q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
        const int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
        const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
        y[l] = d * static_cast<float>(sc[is]) * static_cast<float>(q1);
        y[l + 32] = d * static_cast<float>(sc[is + 2]) * static_cast<float>(q2);
        y[l + 64] = d * static_cast<float>(sc[is + 4]) * static_cast<float>(q3);
        y[l + 96] = d * static_cast<float>(sc[is + 6]) * static_cast<float>(q4);
      }
  }
}

constexpr GgmlBlockType kTypes[] = {
    {DType::Q4_0, 2, "Q4_0", 32, 18, dequantize_symmetric<to_int8_q4_0, 18>, to_int8_q4_0, to_u4_q4_0},
    {DType::Q4_1, 3, "Q4_1", 32, 20, dequantize_q4_1, nullptr, to_u4_q4_1},
    {DType::Q5_0, 6, "Q5_0", 32, 22, dequantize_symmetric<to_int8_q5_0, 22>, to_int8_q5_0, nullptr},
    {DType::Q5_1, 7, "Q5_1", 32, 24, dequantize_q5_1, nullptr, nullptr},
    {DType::Q8_0, 8, "Q8_0", kQ8_0BlockSize, kQ8_0BlockBytes, dequantize_symmetric<to_int8_q8_0, kQ8_0BlockBytes>, to_int8_q8_0, nullptr},
    {DType::Q2_K, 10, "Q2_K", kQK_K, 84, dequantize_q2_k, nullptr, nullptr},
    {DType::Q3_K, 11, "Q3_K", kQK_K, 110, dequantize_q3_k, nullptr, nullptr},
    {DType::Q4_K, 12, "Q4_K", kQK_K, 144, dequantize_q4_k, nullptr, to_u4_q4_k},
    {DType::Q5_K, 13, "Q5_K", kQK_K, 176, dequantize_q5_k, nullptr, nullptr},
    {DType::Q6_K, 14, "Q6_K", kQK_K, 210, dequantize_q6_k, nullptr, nullptr},
};

}  // namespace

const GgmlBlockType* ggml_block_type(DType t) {
  for (const GgmlBlockType& b : kTypes)
    if (b.dtype == t) return &b;
  return nullptr;
}

const GgmlBlockType* ggml_block_type_by_number(uint32_t ggml_type) {
  for (const GgmlBlockType& b : kTypes)
    if (b.ggml_type == ggml_type) return &b;
  return nullptr;
}

bool dtype_of_ggml(uint32_t ggml_type, DType& out) {
  switch (ggml_type) {  // ggml's numbers for its float types
    case 0: out = DType::F32; return true;
    case 1: out = DType::F16; return true;
    case 30: out = DType::BF16; return true;
  }
  const GgmlBlockType* b = ggml_block_type_by_number(ggml_type);
  if (b) out = b->dtype;
  return b != nullptr;
}

const char* ggml_block_type_names() { return "Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K"; }

}  // namespace neoserve
