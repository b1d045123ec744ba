// Dispatch, the work split, load-time quantization and the portable kernels
// (the reference path for CPUs without AVX2, and the tests' ground truth for
// the SIMD ones' structure).
#include "matmul.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <string>

#include "core/model/half.h"
#include "providers/cpu/thread_pool.h"

namespace neoserve::cpu {

const char* wformat_name(WFormat f) {
  switch (f) {
    case WFormat::F32: return "f32";
    case WFormat::F16: return "f16";
    case WFormat::BF16: return "bf16";
    case WFormat::I8: return "int8";
    case WFormat::Q8_0: return "q8_0";
    case WFormat::I8P16: return "int8-panels";
    case WFormat::F32P16: return "f32-panels";
    case WFormat::BF16P16: return "bf16-panels";
    case WFormat::Ggml: return "ggml-blocks";
    case WFormat::Q4P16: return "q4-panels";
    case WFormat::Q4SP16: return "q4s-panels";
  }
  return "?";
}

size_t WMat::row_bytes() const {
  switch (format) {
    case WFormat::F32:
    case WFormat::F32P16: return static_cast<size_t>(cols) * 4;
    case WFormat::F16:
    case WFormat::BF16: return static_cast<size_t>(cols) * 2;
    case WFormat::BF16P16: return static_cast<size_t>(even(cols)) * 2;
    case WFormat::I8: return static_cast<size_t>(kpad());
    case WFormat::I8P16: return static_cast<size_t>(kpad() + kpad() / kQuantBlock * 2);  // values and fp16 scales
    case WFormat::Q8_0: return static_cast<size_t>(cols / kQuantBlock) * kQ8_0BlockBytes;
    case WFormat::Ggml: return dtype_row_bytes(dtype, cols);
    case WFormat::Q4P16:
    case WFormat::Q4SP16:  // values and fp16 scales (and mins)
      return static_cast<size_t>(q4_panel_block_bytes(format == WFormat::Q4P16) / kPanelRows * (kpad() / kQuantBlock));
  }
  return 0;
}

// One 32-block (n values, the rest zero) to symmetric int8 exactly as ggml's
// quantize_row_q8_0 does on x86: q = rne(x * 127/max|x|), so |q| <= 127
// whatever happens to the scale, which is max|x|/127 rounded to fp16. A
// weight's scale is also kept finite (a block beyond fp16's range saturates).
static void quantize_block(const float* x, int n, int8_t* q, float* d, bool finite_scale) {
  float amax = 0.0f;
  for (int i = 0; i < n; ++i) amax = std::max(amax, std::fabs(x[i]));
  const float inv = amax > 0.0f ? 127.0f / amax : 0.0f;
  for (int i = 0; i < n; ++i) q[i] = static_cast<int8_t>(std::nearbyint(x[i] * inv));
  for (int i = n; i < kQuantBlock; ++i) q[i] = 0;
  *d = fp16_round(finite_scale ? std::min(amax / 127.0f, 65504.0f) : amax / 127.0f);
}

// Activations: as llama.cpp quantizes them, so a Q8_0 GGUF runs the same arithmetic here as there.
static void quantize_row(const float* x, int64_t cols, int8_t* q, float* d) {
  for (int64_t b = 0; b * kQuantBlock < cols; ++b)
    quantize_block(x + b * kQuantBlock, static_cast<int>(std::min<int64_t>(kQuantBlock, cols - b * kQuantBlock)), q + b * kQuantBlock,
                   d + b, false);
}

// Weights: as GGUF Q8_0 stores them.
void quantize_rows_i8(const float* src, int64_t rows, int64_t cols, int8_t* q, float* scales) {
  const int64_t kpad = (cols + kQuantBlock - 1) / kQuantBlock * kQuantBlock;
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t b = 0; b * kQuantBlock < cols; ++b)
      quantize_block(src + r * cols + b * kQuantBlock, static_cast<int>(std::min<int64_t>(kQuantBlock, cols - b * kQuantBlock)),
                     q + r * kpad + b * kQuantBlock, scales + r * (kpad / kQuantBlock) + b, true);
}

// Panel p's block b: 8 groups of 4 K, each 16 rows x 4 bytes (lane = row within the panel), then 16 fp16 scales.
static size_t panel_offset(int64_t p, int64_t nb, int64_t lane, int64_t k) {
  return static_cast<size_t>((p * nb + k / kQuantBlock) * kPanelBlockBytes + (k % kQuantBlock) / 4 * 64 + lane * 4 + k % 4);
}
static size_t panel_scale_offset(int64_t p, int64_t nb, int64_t lane, int64_t b) {
  return static_cast<size_t>((p * nb + b) * kPanelBlockBytes + kPanelValueBytes + lane * 2);
}
static float panel_scale(const uint8_t* panels, int64_t p, int64_t nb, int64_t lane, int64_t b) {
  uint16_t h;
  std::memcpy(&h, panels + panel_scale_offset(p, nb, lane, b), 2);
  return fp16_to_f32(h);
}

// Block by block, 4 bytes at a time (panel_offset's order: group of 4 K, then lane).
void pack_panels(const WMat& i8, int64_t p0, int64_t p1, uint8_t* dst) {
  const int64_t kpad = i8.kpad(), nb = kpad / kQuantBlock;
  const uint8_t* src = i8.data;
  for (int64_t p = p0; p < p1; ++p)
    for (int64_t b = 0; b < nb; ++b) {
      uint8_t* block = dst + static_cast<size_t>(p * nb + b) * kPanelBlockBytes;
      for (int64_t lane = 0; lane < kPanelRows; ++lane) {
        const int64_t r = p * kPanelRows + lane;
        for (int64_t g = 0; g < kQuantBlock / 4; ++g) {
          if (r < i8.rows) std::memcpy(block + g * 64 + lane * 4, src + r * kpad + b * kQuantBlock + g * 4, 4);
          else std::memset(block + g * 64 + lane * 4, 0, 4);
        }
        const uint16_t h = f32_to_fp16(r < i8.rows ? i8.scales[r * nb + b] : 0.0f);
        std::memcpy(block + kPanelValueBytes + lane * 2, &h, 2);
      }
    }
}

// Where value k of a panel's row `lane` sits in a 4-bit panel of blocks of `bb` bytes (its byte; high nibble or low).
static size_t q4_offset(int64_t nb, int64_t bb, int64_t p, int64_t lane, int64_t k, bool& high) {
  const int64_t j = k % 8;
  high = j >= 4;
  return static_cast<size_t>((p * nb + k / kQuantBlock) * bb + (k % kQuantBlock) / 8 * 64 + lane * 4 + j % 4);
}
static size_t q4_scale_offset(int64_t nb, int64_t bb, int64_t p, int64_t lane, int64_t b, bool min) {
  return static_cast<size_t>((p * nb + b) * bb + kQ4PanelValueBytes + (min ? kPanelRows * 2 : 0) + lane * 2);
}
static float q4_scale(const uint8_t* panels, int64_t nb, int64_t bb, int64_t p, int64_t lane, int64_t b, bool min) {
  uint16_t h;
  std::memcpy(&h, panels + q4_scale_offset(nb, bb, p, lane, b, min), 2);
  return fp16_to_f32(h);
}
static uint8_t q4_value(const uint8_t* panels, int64_t nb, int64_t bb, int64_t p, int64_t lane, int64_t k) {
  bool high;
  const uint8_t byte = panels[q4_offset(nb, bb, p, lane, k, high)];
  return high ? byte >> 4 : byte & 0x0F;
}

// Block by block, 4 bytes at a time (q4_offset's order: group of 8 K, then lane, low nibbles K 0..3, high 4..7).
void pack_q4_panel(const uint8_t* q, const float* d, const float* m, int64_t n, int64_t kpad, bool mins, uint8_t* panel) {
  const int64_t nb = kpad / kQuantBlock, bb = q4_panel_block_bytes(mins);
  for (int64_t b = 0; b < nb; ++b) {
    uint8_t* block = panel + b * bb;
    for (int64_t lane = 0; lane < kPanelRows; ++lane) {
      uint16_t hd = 0, hm = 0;
      if (lane < n) {
        const uint8_t* src = q + lane * kpad + b * kQuantBlock;
        for (int64_t g = 0; g < kQuantBlock / 8; ++g)
          for (int64_t j = 0; j < 4; ++j)
            block[g * 64 + lane * 4 + j] = static_cast<uint8_t>((src[g * 8 + j] & 0x0F) | (src[g * 8 + 4 + j] & 0x0F) << 4);
        hd = f32_to_fp16(d[lane * nb + b]);
        if (mins) hm = f32_to_fp16(m[lane * nb + b]);
      } else {
        for (int64_t g = 0; g < kQuantBlock / 8; ++g) std::memset(block + g * 64 + lane * 4, 0, 4);
      }
      std::memcpy(block + kQ4PanelValueBytes + lane * 2, &hd, 2);
      if (mins) std::memcpy(block + kQ4PanelValueBytes + kPanelRows * 2 + lane * 2, &hm, 2);
    }
  }
}

bool pack_q8_0_panel(const uint8_t* rows, size_t row_bytes, int64_t n, int64_t nb, uint8_t* panel) {
  uint16_t bad = 0;
  for (int64_t b = 0; b < nb; ++b) {
    uint8_t* block = panel + b * kPanelBlockBytes;
    for (int64_t lane = 0; lane < kPanelRows; ++lane) {
      if (lane >= n) {
        for (int64_t g = 0; g < kQuantBlock / 4; ++g) std::memset(block + g * 64 + lane * 4, 0, 4);
        std::memset(block + kPanelValueBytes + lane * 2, 0, 2);
        continue;
      }
      const uint8_t* src = rows + lane * row_bytes + b * kQ8_0BlockBytes;
      for (int64_t g = 0; g < kQuantBlock / 4; ++g) std::memcpy(block + g * 64 + lane * 4, src + kQ8_0ScaleBytes + g * 4, 4);
      uint16_t h;
      std::memcpy(&h, src, 2);
      std::memcpy(block + kPanelValueBytes + lane * 2, &h, 2);
      bad |= static_cast<uint16_t>((h & 0x7C00) == 0x7C00);  // fp16 inf or NaN
    }
  }
  return bad == 0;
}

void pack_f32_panel(const float* rows, int64_t n, int64_t cols, float* panel) {
  for (int64_t k = 0; k < cols; ++k)
    for (int64_t lane = 0; lane < kPanelRows; ++lane) panel[k * kPanelRows + lane] = lane < n ? rows[lane * cols + k] : 0.0f;
}

void pack_bf16_panel(const uint8_t* rows, size_t row_bytes, int64_t n, int64_t cols, uint16_t* panel) {
  for (int64_t k = 0; k < even(cols); ++k)
    for (int64_t lane = 0; lane < kPanelRows; ++lane) {
      uint16_t h = 0;
      if (lane < n && k < cols) std::memcpy(&h, rows + lane * row_bytes + 2 * k, 2);
      panel[(k / 2) * 2 * kPanelRows + lane * 2 + k % 2] = h;
    }
}

void QActs::resize(int64_t t, int64_t c) {
  tokens = t;
  cols = c;
  kpad = (cols + kQuantBlock - 1) / kQuantBlock * kQuantBlock;
  const size_t nb = static_cast<size_t>(t * kpad / kQuantBlock);
  if (q.size() < static_cast<size_t>(t * kpad)) q.resize(t * kpad);
  if (d.size() < nb) d.resize(nb);
  if (sums.size() < nb) sums.resize(nb);
}

void QActs::quantize_token(const KernelSet& k, int64_t t, const float* x) {
  const int64_t nb = kpad / kQuantBlock;
  int8_t* qt = q.data() + t * kpad;
  k.quantize_row(x, cols, qt, d.data() + t * nb);
  for (int64_t b = 0; b < nb; ++b) {
    int32_t s = 0;
    for (int i = 0; i < kQuantBlock; ++i) s += qt[b * kQuantBlock + i];
    sums[t * nb + b] = s;
  }
}

void QActs::quantize(const float* x, int64_t t, int64_t c) {
  resize(t, c);
  for (int64_t i = 0; i < t; ++i) quantize_token(kernels_portable(), i, x + i * c);
}

void dequantize_row(const WMat& w, int64_t r, float* dst) {
  const uint8_t* row = w.data + static_cast<size_t>(r) * w.row_bytes();
  switch (w.format) {
    case WFormat::F32: dtype_to_f32(DType::F32, row, w.cols, dst); break;
    case WFormat::F16: dtype_to_f32(DType::F16, row, w.cols, dst); break;
    case WFormat::BF16: dtype_to_f32(DType::BF16, row, w.cols, dst); break;
    case WFormat::I8: {
      const int8_t* q = reinterpret_cast<const int8_t*>(row);
      const float* d = w.scales + r * (w.kpad() / kQuantBlock);
      for (int64_t k = 0; k < w.cols; ++k) dst[k] = d[k / kQuantBlock] * q[k];
      break;
    }
    case WFormat::BF16P16: {
      const uint16_t* h = reinterpret_cast<const uint16_t*>(w.data) + (r / kPanelRows) * even(w.cols) * kPanelRows + (r % kPanelRows) * 2;
      for (int64_t k = 0; k < w.cols; ++k) dst[k] = bf16_to_f32(h[(k / 2) * 2 * kPanelRows + k % 2]);
      break;
    }
    case WFormat::F32P16: {
      const float* f = reinterpret_cast<const float*>(w.data) + (r / kPanelRows) * w.cols * kPanelRows + r % kPanelRows;
      for (int64_t k = 0; k < w.cols; ++k) dst[k] = f[k * kPanelRows];
      break;
    }
    case WFormat::I8P16: {
      const int64_t nb = w.kpad() / kQuantBlock, p = r / kPanelRows, lane = r % kPanelRows;
      for (int64_t k = 0; k < w.cols; ++k)
        dst[k] = panel_scale(w.data, p, nb, lane, k / kQuantBlock) * static_cast<int8_t>(w.data[panel_offset(p, nb, lane, k)]);
      break;
    }
    case WFormat::Q4P16:
    case WFormat::Q4SP16: {
      const bool mins = w.format == WFormat::Q4P16;
      const int64_t nb = w.kpad() / kQuantBlock, bb = q4_panel_block_bytes(mins), p = r / kPanelRows, lane = r % kPanelRows;
      for (int64_t b = 0; b * kQuantBlock < w.cols; ++b) {  // embedding lookups read rows: scales once per block
        const float d = q4_scale(w.data, nb, bb, p, lane, b, false), m = mins ? q4_scale(w.data, nb, bb, p, lane, b, true) : 0.0f;
        for (int64_t k = b * kQuantBlock; k < std::min(w.cols, (b + 1) * kQuantBlock); ++k) {
          const int q = q4_value(w.data, nb, bb, p, lane, k);
          dst[k] = mins ? d * static_cast<float>(q) - m : d * static_cast<float>(q - 8);
        }
      }
      break;
    }
    case WFormat::Q8_0: dtype_to_f32(DType::Q8_0, row, w.cols, dst); break;
    case WFormat::Ggml: dtype_to_f32(w.dtype, row, w.cols, dst); break;
  }
}

// --- portable kernels --------------------------------------------------------

static float dot_portable(const float* a, const float* b, int64_t n) {
  float s[4] = {0, 0, 0, 0};  // four lanes, reduced in a fixed order
  int64_t k = 0;
  for (; k + 4 <= n; k += 4)
    for (int l = 0; l < 4; ++l) s[l] += a[k + l] * b[k + l];
  for (int l = 0; k < n; ++k, ++l) s[l] += a[k] * b[k];
  return (s[0] + s[1]) + (s[2] + s[3]);
}

static void axpy_portable(float* y, float a, const float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += a * x[i];
}

static void axpy_rows_portable(float* out, const float* p, int64_t ldp, int64_t m, const float* v, int64_t n, int64_t d) {
  for (int64_t h = 0; h < m; ++h)
    for (int64_t j = 0; j < n; ++j) axpy_portable(out + h * d, p[h * ldp + j], v + j * d, d);
}

static float exp_shift_sum_portable(float* x, int64_t n, float shift) {
  float sum = 0.0f;
  for (int64_t i = 0; i < n; ++i) sum += (x[i] = std::exp(x[i] - shift));
  return sum;
}

static void widen_f16_portable(const uint16_t* h, float* f, int64_t n) {
  for (int64_t i = 0; i < n; ++i) f[i] = fp16_to_f32(h[i]);
}

static void narrow_f16_portable(const float* f, uint16_t* h, int64_t n) {
  for (int64_t i = 0; i < n; ++i) h[i] = f32_to_fp16(std::clamp(f[i], -65504.0f, 65504.0f));  // NaN passes clamp unchanged
}

static void silu_mul_portable(float* g, const float* u, int64_t n) {
  for (int64_t i = 0; i < n; ++i) g[i] = g[i] / (1.0f + std::exp(-g[i])) * u[i];
}

void matmul_f32_panels_portable(const WMat& w, const float* x, int64_t T, int64_t r0, int64_t r1, float* out, int64_t ldo) {
  const float* f = reinterpret_cast<const float*>(w.data);
  for (int64_t r = r0; r < r1; ++r) {
    const float* wr = f + (r / kPanelRows) * w.cols * kPanelRows + r % kPanelRows;
    for (int64_t t = 0; t < T; ++t) {
      float acc = 0.0f;
      for (int64_t k = 0; k < w.cols; ++k) acc = std::fma(wr[k * kPanelRows], x[t * w.cols + k], acc);
      out[t * ldo + r] = acc;
    }
  }
}

void matmul_bf16_panels_portable(const WMat& w, const float* x, int64_t T, int64_t r0, int64_t r1, float* out, int64_t ldo) {
  const uint16_t* h = reinterpret_cast<const uint16_t*>(w.data);
  const int64_t ke = even(w.cols);
  for (int64_t r = r0; r < r1; ++r) {
    const uint16_t* wr = h + (r / kPanelRows) * ke * kPanelRows + (r % kPanelRows) * 2;
    for (int64_t t = 0; t < T; ++t) {
      float acc = 0.0f;
      for (int64_t k = 0; k < w.cols; ++k) {
        const float xk = bf16_to_f32(f32_to_bf16(x[t * w.cols + k]));
        acc = std::fma(bf16_to_f32(wr[(k / 2) * 2 * kPanelRows + k % 2]), xk, acc);
      }
      out[t * ldo + r] = acc;
    }
  }
}

static void matmul_float_portable(const WMat& w, const float* x, int64_t T, int64_t r0, int64_t r1, float* out,
                                  int64_t ldo) {
  if (w.format == WFormat::F32P16) return matmul_f32_panels_portable(w, x, T, r0, r1, out, ldo);
  if (w.format == WFormat::BF16P16) return matmul_bf16_panels_portable(w, x, T, r0, r1, out, ldo);
  thread_local std::vector<float> row;
  row.resize(w.cols);
  for (int64_t r = r0; r < r1; ++r) {
    const float* wr = reinterpret_cast<const float*>(w.data + static_cast<size_t>(r) * w.row_bytes());
    if (w.format != WFormat::F32) {
      dequantize_row(w, r, row.data());
      wr = row.data();
    }
    for (int64_t t = 0; t < T; ++t) out[t * ldo + r] = dot_portable(wr, x + t * w.cols, w.cols);
  }
}

// Each output: per block in order, fma(float(exact integer dot), w_d * x_d) — the AVX-512 panel kernel's chain.
void matmul_panels_portable(const WMat& w, const QActs& x, int64_t r0, int64_t r1, float* out, int64_t ldo) {
  const int64_t nb = x.kpad / kQuantBlock;
  const int8_t* q = reinterpret_cast<const int8_t*>(w.data);
  for (int64_t r = r0; r < r1; ++r) {
    const int64_t p = r / kPanelRows, lane = r % kPanelRows;
    for (int64_t t = 0; t < x.tokens; ++t) {
      const int8_t* xq = x.q.data() + t * x.kpad;
      const float* xd = x.d.data() + t * nb;
      float acc = 0.0f;
      for (int64_t b = 0; b < nb; ++b) {
        int32_t s = 0;
        for (int64_t i = 0; i < kQuantBlock; ++i) s += q[panel_offset(p, nb, lane, b * kQuantBlock + i)] * xq[b * kQuantBlock + i];
        acc = std::fma(static_cast<float>(s), panel_scale(w.data, p, nb, lane, b) * xd[b], acc);
      }
      out[t * ldo + r] = acc;
    }
  }
}

// Each output: per block in order, the exact integer dot (less 8 * sum(x) for
// Q4SP16), then fma(float(dot), w_d * x_d, acc) and, for Q4P16, fma(-w_m, x_d * sum(x), acc).
void matmul_q4_panels_portable(const WMat& w, const QActs& x, int64_t r0, int64_t r1, float* out, int64_t ldo) {
  const bool mins = w.format == WFormat::Q4P16;
  const int64_t nb = x.kpad / kQuantBlock, bb = q4_panel_block_bytes(mins);
  for (int64_t r = r0; r < r1; ++r) {
    const int64_t p = r / kPanelRows, lane = r % kPanelRows;
    for (int64_t t = 0; t < x.tokens; ++t) {
      const int8_t* xq = x.q.data() + t * x.kpad;
      const float* xd = x.d.data() + t * nb;
      const int32_t* xs = x.sums.data() + t * nb;
      float acc = 0.0f;
      for (int64_t b = 0; b < nb; ++b) {
        int32_t s = mins ? 0 : -8 * xs[b];
        for (int64_t i = 0; i < kQuantBlock; ++i) s += q4_value(w.data, nb, bb, p, lane, b * kQuantBlock + i) * xq[b * kQuantBlock + i];
        acc = std::fma(static_cast<float>(s), q4_scale(w.data, nb, bb, p, lane, b, false) * xd[b], acc);
        if (mins) acc = std::fma(-q4_scale(w.data, nb, bb, p, lane, b, true), xd[b] * static_cast<float>(xs[b]), acc);
      }
      out[t * ldo + r] = acc;
    }
  }
}

static void matmul_int8_portable(const WMat& w, const QActs& x, int64_t r0, int64_t r1, float* out, int64_t ldo) {
  if (w.format == WFormat::I8P16) return matmul_panels_portable(w, x, r0, r1, out, ldo);
  if (w.format == WFormat::Q4P16 || w.format == WFormat::Q4SP16) return matmul_q4_panels_portable(w, x, r0, r1, out, ldo);
  const int64_t nb = x.kpad / kQuantBlock;
  for (int64_t r = r0; r < r1; ++r) {
    const uint8_t* row = w.data + static_cast<size_t>(r) * w.row_bytes();
    for (int64_t t = 0; t < x.tokens; ++t) {
      const int8_t* xq = x.q.data() + t * x.kpad;
      const float* xd = x.d.data() + t * nb;
      float acc = 0.0f;
      for (int64_t b = 0; b < nb; ++b) {
        const int8_t* q;
        float d;
        if (w.format == WFormat::Q8_0) {
          uint16_t h;
          std::memcpy(&h, row + b * kQ8_0BlockBytes, kQ8_0ScaleBytes);
          d = fp16_to_f32(h);
          q = reinterpret_cast<const int8_t*>(row + b * kQ8_0BlockBytes + kQ8_0ScaleBytes);
        } else {
          q = reinterpret_cast<const int8_t*>(row) + b * kQuantBlock;
          d = w.scales[r * nb + b];
        }
        int32_t s = 0;
        for (int i = 0; i < kQuantBlock; ++i) s += q[i] * xq[b * kQuantBlock + i];
        acc += static_cast<float>(s) * (d * xd[b]);
      }
      out[t * ldo + r] = acc;
    }
  }
}

const KernelSet& kernels_portable() {
  static const KernelSet k{"portable", WFormat::I8, WFormat::F32, WFormat::BF16, matmul_float_portable, matmul_int8_portable, dot_portable, axpy_portable,
                           axpy_rows_portable, quantize_row, exp_shift_sum_portable, silu_mul_portable, widen_f16_portable,
                           narrow_f16_portable};
  return k;
}

// The ISA files only hand out their table; CPUID is checked here, in code
// compiled for plain x86-64, before anything of theirs runs.
const KernelSet* kernels_avx512_table(bool bf16);
const KernelSet* kernels_avx2_table();

const KernelSet* kernels_avx512(bool bf16) {
#if defined(__x86_64__)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
      __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("fma") &&
      __builtin_cpu_supports("f16c")) {
    if (!bf16) return kernels_avx512_table(false);
    if (__builtin_cpu_supports("avx512bf16")) return kernels_avx512_table(true);
  }
#endif
  return nullptr;
}

const KernelSet* kernels_avx2() {
#if defined(__x86_64__)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c"))
    return kernels_avx2_table();
#endif
  return nullptr;
}

const KernelSet& best_kernels() {
  static const KernelSet* chosen = [] {
    const char* env = std::getenv("NEOSERVE_CPU_ISA");
    const std::string want = env ? env : "";
    if (want == "portable") return &kernels_portable();
    const KernelSet* k = want == "avx2" ? nullptr : want == "avx512-vnni" ? kernels_avx512(false) : kernels_avx512(true);
    if (!k && want != "avx2") k = kernels_avx512(false);
    if (!k) k = kernels_avx2();
    return k ? k : &kernels_portable();
  }();
  return *chosen;
}

// --- the work split ------------------------------------------------------------

void matmul(ThreadPool& pool, const KernelSet& k, const float* x, const QActs* xq, int64_t T,
            const MatmulJob* jobs, int njobs) {
  // Units of 16 output rows (a multiple of every kernel's row tile); threads
  // take runs of units. Splitting only along N keeps each output element's
  // whole reduction on one thread.
  constexpr int64_t kRowsPerUnit = 16;
  int64_t first_unit[8];
  if (njobs > 8) std::abort();  // callers pass at most three
  int64_t units = 0;
  for (int j = 0; j < njobs; ++j) {
    first_unit[j] = units;
    units += (jobs[j].w->rows + kRowsPerUnit - 1) / kRowsPerUnit;
  }
  auto body = [&](int64_t ub, int64_t ue) {
    for (int j = 0; j < njobs; ++j) {
      const int64_t end_unit = j + 1 < njobs ? first_unit[j + 1] : units;
      const int64_t b = std::max(ub, first_unit[j]), e = std::min(ue, end_unit);
      if (b >= e) continue;
      const WMat& w = *jobs[j].w;
      const int64_t r0 = (b - first_unit[j]) * kRowsPerUnit;
      const int64_t r1 = std::min(w.rows, (e - first_unit[j]) * kRowsPerUnit);
      if (w.integer())
        k.matmul_int8(w, *xq, r0, r1, jobs[j].out, w.rows);
      else
        k.matmul_float(w, x, T, r0, r1, jobs[j].out, w.rows);
    }
  };
  const int64_t grain = std::max<int64_t>(1, units / (pool.size() * 4));
  pool.parallel_for(units, body, grain);
}

}  // namespace neoserve::cpu
