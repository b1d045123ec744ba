// AVX2 + FMA + F16C kernels, the fallback for CPUs without AVX-512. Same
// structure and invariance argument as matmul_avx512.cpp with 8 lanes: one
// 8-lane accumulator per output element, K in steps of 8 (a zero-padded copy
// for the tail), a fixed horizontal sum; int8 one 32-block per step with
// vpmaddubsw on |x| and sign-moved w, then vpmaddwd by ones.
#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "core/model/half.h"
#include "matmul.h"

namespace neoserve::cpu {

// A 256-bit register holds exactly one int8 block: the loads below index blocks by it.
static_assert(kQuantBlock == 32);
namespace {

inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

struct LoadF32 {
  static __m256 full(const uint8_t* p) { return _mm256_loadu_ps(reinterpret_cast<const float*>(p)); }
  static constexpr int kBytes = 4;
};
struct LoadF16 {
  static __m256 full(const uint8_t* p) { return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))); }
  static constexpr int kBytes = 2;
};
struct LoadBF16 {
  static __m256 full(const uint8_t* p) {
    const __m256i w = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
    return _mm256_castsi256_ps(_mm256_slli_epi32(w, 16));
  }
  static constexpr int kBytes = 2;
};

template <class L, int R, int C>
inline void tile_float(const uint8_t* w, size_t ws, const float* x, int64_t K, float* out, int64_t ldo) {
  __m256 acc[R][C];
  for (int r = 0; r < R; ++r)
    for (int c = 0; c < C; ++c) acc[r][c] = _mm256_setzero_ps();
  int64_t k = 0;
  for (; k + 8 <= K; k += 8) {
    __m256 wv[R];
    for (int r = 0; r < R; ++r) wv[r] = L::full(w + r * ws + k * L::kBytes);
    for (int c = 0; c < C; ++c) {
      const __m256 xv = _mm256_loadu_ps(x + c * K + k);
      for (int r = 0; r < R; ++r) acc[r][c] = _mm256_fmadd_ps(wv[r], xv, acc[r][c]);
    }
  }
  if (k < K) {  // tail through zero-padded copies
    const int64_t n = K - k;
    alignas(32) uint8_t wt[R][32] = {};
    alignas(32) float xt[C][8] = {};
    for (int r = 0; r < R; ++r) std::memcpy(wt[r], w + r * ws + k * L::kBytes, n * L::kBytes);
    for (int c = 0; c < C; ++c) std::memcpy(xt[c], x + c * K + k, n * 4);
    for (int r = 0; r < R; ++r) {
      const __m256 wv = L::full(wt[r]);
      for (int c = 0; c < C; ++c) acc[r][c] = _mm256_fmadd_ps(wv, _mm256_load_ps(xt[c]), acc[r][c]);
    }
  }
  for (int r = 0; r < R; ++r)
    for (int c = 0; c < C; ++c) out[c * ldo + r] = hsum(acc[r][c]);
}

constexpr int kFR = 4, kFC = 2;

template <class L, int R>
inline void tile_float_c(int c, const uint8_t* w, size_t ws, const float* x, int64_t K, float* out, int64_t ldo) {
  if (c == 2) tile_float<L, R, 2>(w, ws, x, K, out, ldo);
  else tile_float<L, R, 1>(w, ws, x, K, out, ldo);
}

template <class L>
void matmul_float_t(const WMat& w, const float* x, int64_t T, int64_t r0, int64_t r1, float* out, int64_t ldo) {
  const int64_t K = w.cols;
  const size_t ws = w.row_bytes();
  const int64_t tb = std::max<int64_t>(kFC, (128 * 1024 / (K * 4)) / kFC * kFC);
  for (int64_t t0 = 0; t0 < T; t0 += tb) {
    const int64_t t1 = std::min(T, t0 + tb);
    for (int64_t r = r0; r < r1; r += kFR) {
      const int64_t nr = std::min<int64_t>(kFR, r1 - r);
      for (int64_t t = t0; t < t1; t += kFC) {
        const int c = static_cast<int>(std::min<int64_t>(kFC, t1 - t));
        const uint8_t* wr = w.data + r * ws;
        if (nr == kFR) tile_float_c<L, kFR>(c, wr, ws, x + t * K, K, out + t * ldo + r, ldo);
        else
          for (int64_t i = 0; i < nr; ++i) tile_float_c<L, 1>(c, wr + i * ws, ws, x + t * K, K, out + t * ldo + r + i, ldo);
      }
    }
  }
}

void matmul_float(const WMat& w, const float* x, int64_t T, int64_t r0, int64_t r1, float* out, int64_t ldo) {
  switch (w.format) {
    case WFormat::F32: matmul_float_t<LoadF32>(w, x, T, r0, r1, out, ldo); break;
    case WFormat::F16: matmul_float_t<LoadF16>(w, x, T, r0, r1, out, ldo); break;
    case WFormat::BF16: matmul_float_t<LoadBF16>(w, x, T, r0, r1, out, ldo); break;
    case WFormat::F32P16: matmul_f32_panels_portable(w, x, T, r0, r1, out, ldo); break;  // not this set's layouts: correct, not fast
    case WFormat::BF16P16: matmul_bf16_panels_portable(w, x, T, r0, r1, out, ldo); break;
    default: break;
  }
}

// --- int8 -------------------------------------------------------------------------

// Block b of row r: its 32 int8 weights and scale.
struct RowsI8 {
  const int8_t* q;
  const float* d;
  int64_t kpad, nb;
  __m256i qb(int64_t r, int64_t b) const { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q + r * kpad + b * 32)); }
  float db(int64_t r, int64_t b) const { return d[r * nb + b]; }
};
struct RowsQ8_0 {
  const uint8_t* data;
  size_t row_bytes;
  __m256i qb(int64_t r, int64_t b) const {
    return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(data + r * row_bytes + b * kQ8_0BlockBytes + kQ8_0ScaleBytes));
  }
  float db(int64_t r, int64_t b) const {
    uint16_t h;
    std::memcpy(&h, data + r * row_bytes + b * kQ8_0BlockBytes, kQ8_0ScaleBytes);
    return _cvtsh_ss(h);
  }
};

template <class W, int R, int C>
inline void tile_int8(const W& w, int64_t r, const QActs& x, int64_t t, float* out, int64_t ldo) {
  const int64_t nb = x.kpad / 32;
  const __m256i ones = _mm256_set1_epi16(1);
  __m256 acc[R][C];
  for (int i = 0; i < R; ++i)
    for (int c = 0; c < C; ++c) acc[i][c] = _mm256_setzero_ps();
  for (int64_t b = 0; b < nb; ++b) {
    __m256i wq[R];
    float wd[R];
    for (int i = 0; i < R; ++i) {
      wq[i] = w.qb(r + i, b);
      wd[i] = w.db(r + i, b);
    }
    for (int c = 0; c < C; ++c) {
      const __m256i xq = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x.q.data() + (t + c) * x.kpad + b * 32));
      const float xd = x.d[(t + c) * nb + b];
      const __m256i ax = _mm256_sign_epi8(xq, xq);
      for (int i = 0; i < R; ++i) {
        const __m256i p16 = _mm256_maddubs_epi16(ax, _mm256_sign_epi8(wq[i], xq));
        const __m256 s = _mm256_cvtepi32_ps(_mm256_madd_epi16(p16, ones));
        acc[i][c] = _mm256_fmadd_ps(s, _mm256_set1_ps(wd[i] * xd), acc[i][c]);
      }
    }
  }
  for (int i = 0; i < R; ++i)
    for (int c = 0; c < C; ++c) out[(t + c) * ldo + r + i] = hsum(acc[i][c]);
}

constexpr int kIR = 4, kIC = 2;

template <class W, int R>
inline void tile_int8_c(int c, const W& w, int64_t r, const QActs& x, int64_t t, float* out, int64_t ldo) {
  if (c == 2) tile_int8<W, R, 2>(w, r, x, t, out, ldo);
  else tile_int8<W, R, 1>(w, r, x, t, out, ldo);
}

template <class W>
void matmul_int8_t(const W& w, const QActs& x, int64_t r0, int64_t r1, float* out, int64_t ldo) {
  const int64_t T = x.tokens;
  for (int64_t r = r0; r < r1; r += kIR) {
    const int64_t nr = std::min<int64_t>(kIR, r1 - r);
    for (int64_t t = 0; t < T; t += kIC) {
      const int c = static_cast<int>(std::min<int64_t>(kIC, T - t));
      if (nr == kIR) tile_int8_c<W, kIR>(c, w, r, x, t, out, ldo);
      else
        for (int64_t i = 0; i < nr; ++i) tile_int8_c<W, 1>(c, w, r + i, x, t, out, ldo);
    }
  }
}

void matmul_int8(const WMat& w, const QActs& x, int64_t r0, int64_t r1, float* out, int64_t ldo) {
  if (w.format == WFormat::I8P16)  // not this set's layout (int8_layout): correct, not fast
    matmul_panels_portable(w, x, r0, r1, out, ldo);
  else if (w.format == WFormat::Q4P16 || w.format == WFormat::Q4SP16)  // likewise
    matmul_q4_panels_portable(w, x, r0, r1, out, ldo);
  else if (w.format == WFormat::Q8_0)
    matmul_int8_t(RowsQ8_0{w.data, w.row_bytes()}, x, r0, r1, out, ldo);
  else
    matmul_int8_t(RowsI8{reinterpret_cast<const int8_t*>(w.data), w.scales, w.kpad(), w.kpad() / 32}, x, r0, r1, out, ldo);
}

float dot(const float* a, const float* b, int64_t n) {
  __m256 acc = _mm256_setzero_ps();
  int64_t k = 0;
  for (; k + 8 <= n; k += 8) acc = _mm256_fmadd_ps(_mm256_loadu_ps(a + k), _mm256_loadu_ps(b + k), acc);
  float s = hsum(acc);
  for (; k < n; ++k) s += a[k] * b[k];
  return s;
}

void axpy(float* y, float a, const float* x, int64_t n) {
  const __m256 av = _mm256_set1_ps(a);
  int64_t k = 0;
  for (; k + 8 <= n; k += 8) _mm256_storeu_ps(y + k, _mm256_fmadd_ps(av, _mm256_loadu_ps(x + k), _mm256_loadu_ps(y + k)));
  for (; k < n; ++k) y[k] += a * x[k];
}

void axpy_rows(float* out, const float* p, int64_t ldp, int64_t m, const float* v, int64_t n, int64_t d) {
  for (int64_t h = 0; h < m; ++h)
    for (int64_t j = 0; j < n; ++j) axpy(out + h * d, p[h * ldp + j], v + j * d, d);
}

void quantize_row(const float* x, int64_t cols, int8_t* q, float* d) { kernels_portable().quantize_row(x, cols, q, d); }

float exp_shift_sum(float* x, int64_t n, float shift) { return kernels_portable().exp_shift_sum(x, n, shift); }
void silu_mul(float* g, const float* u, int64_t n) { kernels_portable().silu_mul(g, u, n); }

void widen_f16(const uint16_t* h, float* f, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(f + i, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(h + i))));
  kernels_portable().widen_f16(h + i, f + i, n - i);
}

void narrow_f16(const float* f, uint16_t* h, int64_t n) {
  // min/max with the limit first return the value itself when it is NaN.
  const __m256 hi = _mm256_set1_ps(65504.0f), lo = _mm256_set1_ps(-65504.0f);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 v = _mm256_max_ps(lo, _mm256_min_ps(hi, _mm256_loadu_ps(f + i)));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(h + i), _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT));
  }
  kernels_portable().narrow_f16(f + i, h + i, n - i);
}

const KernelSet kSet{"avx2", WFormat::I8, WFormat::F32, WFormat::BF16, matmul_float, matmul_int8, dot, axpy, axpy_rows, quantize_row, exp_shift_sum, silu_mul, widen_f16, narrow_f16};

}  // namespace

const KernelSet* kernels_avx2_table() { return &kSet; }

}  // namespace neoserve::cpu
