// AVX-512 kernels (F/BW/VL/DQ + VNNI). Compiled with AVX-512 flags because of
// the file name; reached only through kernels_avx512() after a CPUID check.
//
// Float weights: an R x C tile (weight rows x tokens) keeps one 16-lane
// accumulator per output element; each step loads 16 weights per row once and
// applies them to all C tokens. The element's chain is always: fma over K in
// steps of 16 (masked tail), then _mm512_reduce_add_ps — whatever R, C, T.
//
// Int8 weights: two 32-blocks per 512-bit step; vpdpbusd multiplies |x| (u8)
// by w with x's sign moved onto it (llama.cpp's trick), so lanes 0-7 hold the
// even block's partial sums and lanes 8-15 the odd one's; one multiply by the
// pair's scales (w_d * x_d per half) and one fma into a float accumulator. An
// odd last block runs with a zero upper half. Same chain for every R, C, T.
// GCC 12's casts from 256 to 512 bits start from _mm512_undefined_*, which its
// own -Wuninitialized then flags; the upper halves are always overwritten or zeroed.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "matmul.h"
#include "core/model/half.h"

namespace neoserve::cpu {

// A 256-bit register holds exactly one int8 block: the loads below index blocks by it.
static_assert(kQuantBlock == 32);
namespace {

// --- float-family weights -------------------------------------------------------

struct LoadF32 {
  static __m512 full(const uint8_t* p) { return _mm512_loadu_ps(reinterpret_cast<const float*>(p)); }
  static __m512 tail(const uint8_t* p, __mmask16 m) { return _mm512_maskz_loadu_ps(m, p); }
  static constexpr int kBytes = 4;
};
struct LoadF16 {
  static __m512 full(const uint8_t* p) { return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p))); }
  static __m512 tail(const uint8_t* p, __mmask16 m) { return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, p)); }
  static constexpr int kBytes = 2;
};
struct LoadBF16 {
  static __m512 widen(__m256i h) { return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16)); }
  static __m512 full(const uint8_t* p) { return widen(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p))); }
  static __m512 tail(const uint8_t* p, __mmask16 m) { return widen(_mm256_maskz_loadu_epi16(m, p)); }
  static constexpr int kBytes = 2;
};

template <class L, int R, int C>
inline void tile_float(const uint8_t* w, size_t wstride, const float* x, int64_t K, float* out, int64_t ldo) {
  __m512 acc[R][C];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 8
    for (int c = 0; c < C; ++c) acc[r][c] = _mm512_setzero_ps();
  // The next row tile lies right after this one (rows are contiguous): stream
  // it into cache while this one computes, so decode keeps more misses in flight.
  const uint8_t* next = w + R * wstride;
  int64_t k = 0;
  for (; k + 16 <= K; k += 16) {
    __m512 wv[R];
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      _mm_prefetch(reinterpret_cast<const char*>(next + (k * L::kBytes * R) + r * 64), _MM_HINT_T0);
      wv[r] = L::full(w + r * wstride + k * L::kBytes);
    }
#pragma GCC unroll 8
    for (int c = 0; c < C; ++c) {
      const __m512 xv = _mm512_loadu_ps(x + c * K + k);
#pragma GCC unroll 8
      for (int r = 0; r < R; ++r) acc[r][c] = _mm512_fmadd_ps(wv[r], xv, acc[r][c]);
    }
  }
  if (k < K) {
    const __mmask16 m = static_cast<__mmask16>((1u << (K - k)) - 1);
    __m512 wv[R];
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) wv[r] = L::tail(w + r * wstride + k * L::kBytes, m);
#pragma GCC unroll 8
    for (int c = 0; c < C; ++c) {
      const __m512 xv = _mm512_maskz_loadu_ps(m, x + c * K + k);
#pragma GCC unroll 8
      for (int r = 0; r < R; ++r) acc[r][c] = _mm512_fmadd_ps(wv[r], xv, acc[r][c]);
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 8
    for (int c = 0; c < C; ++c) out[c * ldo + r] = _mm512_reduce_add_ps(acc[r][c]);
}

constexpr int kFR = 4;  // weight rows per float tile
constexpr int kFC = 6;  // tokens per float tile (24 accumulators + 4 weights + 1 x of 32 zmm)

template <class L, int R>
inline void tile_float_c(int c, const uint8_t* w, size_t ws, const float* x, int64_t K, float* out, int64_t ldo) {
  switch (c) {
    case 6: tile_float<L, R, 6>(w, ws, x, K, out, ldo); break;
    case 5: tile_float<L, R, 5>(w, ws, x, K, out, ldo); break;
    case 4: tile_float<L, R, 4>(w, ws, x, K, out, ldo); break;
    case 3: tile_float<L, R, 3>(w, ws, x, K, out, ldo); break;
    case 2: tile_float<L, R, 2>(w, ws, x, K, out, ldo); break;
    default: tile_float<L, R, 1>(w, ws, x, K, out, ldo); break;
  }
}

template <class L>
void matmul_float_t(const WMat& w, const float* x, int64_t T, int64_t r0, int64_t r1, float* out, int64_t ldo) {
  const int64_t K = w.cols;
  const size_t ws = w.row_bytes();
  // Tokens in blocks whose activations stay in L2 while the rows pass over them.
  const int64_t tb = std::max<int64_t>(kFC, (128 * 1024 / (K * 4)) / kFC * kFC);
  for (int64_t t0 = 0; t0 < T; t0 += tb) {
    const int64_t t1 = std::min(T, t0 + tb);
    for (int64_t r = r0; r < r1; r += kFR) {
      const int64_t nr = std::min<int64_t>(kFR, r1 - r);
      for (int64_t t = t0; t < t1; t += kFC) {
        const int c = static_cast<int>(std::min<int64_t>(kFC, t1 - t));
        const float* xt = x + t * K;
        float* o = out + t * ldo + r;
        const uint8_t* wr = w.data + r * ws;
        if (nr == kFR) {
          tile_float_c<L, kFR>(c, wr, ws, xt, K, o, ldo);
        } else {
          for (int64_t i = 0; i < nr; ++i) tile_float_c<L, 1>(c, wr + i * ws, ws, xt, K, o + i, ldo);
        }
      }
    }
  }
}

void matmul_float(const WMat& w, const float* x, int64_t T, int64_t r0, int64_t r1, float* out, int64_t ldo) {
  switch (w.format) {
    case WFormat::F32: matmul_float_t<LoadF32>(w, x, T, r0, r1, out, ldo); break;
    case WFormat::F16: matmul_float_t<LoadF16>(w, x, T, r0, r1, out, ldo); break;
    case WFormat::BF16: matmul_float_t<LoadBF16>(w, x, T, r0, r1, out, ldo); break;
    default: break;
  }
}

// --- int8 weights -----------------------------------------------------------------

inline __m512 pair_scale(float a, float b) {
  return _mm512_insertf32x8(_mm512_set1_ps(a), _mm256_set1_ps(b), 1);
}

// Two consecutive scales as one vector: s[0] in lanes 0-7, s[1] in lanes 8-15.
inline __m512 pair_scales(const float* s) {
  const __m512i idx = _mm512_set_epi32(1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0);
  const __m128 two = _mm_castsi128_ps(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(s)));  // unaligned 8 bytes
  return _mm512_permutexvar_ps(idx, _mm512_castps128_ps512(two));
}

// One step of an R x C int8 tile over blocks [b, b+2) (kPair) or [b, b+1).
// wq/wd: the rows' int8 data and scales; xq/xd: the tokens'.
template <int R, int C, bool kPair>
inline void int8_step(const int8_t* const (&wq)[R], const float* const (&wd)[R], const int8_t* const (&xq)[C],
                      const float* const (&xd)[C], int64_t b, __m512 (&acc)[R][C]) {
  __m512i w[R];
  __m512 ws[R];
#pragma GCC unroll 8
  for (int i = 0; i < R; ++i) {
    w[i] = kPair ? _mm512_loadu_si512(wq[i] + b * 32)
                 : _mm512_zextsi256_si512(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(wq[i] + b * 32)));
    ws[i] = kPair ? pair_scales(wd[i] + b) : pair_scale(wd[i][b], 0.0f);
  }
#pragma GCC unroll 8
  for (int c = 0; c < C; ++c) {
    const __m512i x = kPair ? _mm512_loadu_si512(xq[c] + b * 32)
                            : _mm512_zextsi256_si512(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(xq[c] + b * 32)));
    const __m512 xs = kPair ? pair_scales(xd[c] + b) : pair_scale(xd[c][b], 0.0f);
    const __m512i ax = _mm512_abs_epi8(x);
    const __mmask64 neg = _mm512_movepi8_mask(x);
#pragma GCC unroll 8
    for (int i = 0; i < R; ++i) {
      const __m512i sw = _mm512_mask_sub_epi8(w[i], neg, _mm512_setzero_si512(), w[i]);
      const __m512i dot = _mm512_dpbusd_epi32(_mm512_setzero_si512(), ax, sw);
      acc[i][c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), _mm512_mul_ps(ws[i], xs), acc[i][c]);
    }
  }
}

template <int R, int C>
inline void tile_int8(const int8_t* wq0, const float* wd0, int64_t r, const QActs& x, int64_t t, float* out, int64_t ldo) {
  const int64_t kpad = x.kpad, nb = kpad / 32;
  const int8_t* wq[R];
  const float* wd[R];
  const int8_t* xq[C];
  const float* xd[C];
  for (int i = 0; i < R; ++i) {
    wq[i] = wq0 + (r + i) * kpad;
    wd[i] = wd0 + (r + i) * nb;
  }
  for (int c = 0; c < C; ++c) {
    xq[c] = x.q.data() + (t + c) * kpad;
    xd[c] = x.d.data() + (t + c) * nb;
  }
  __m512 acc[R][C];
#pragma GCC unroll 8
  for (int i = 0; i < R; ++i)
#pragma GCC unroll 8
    for (int c = 0; c < C; ++c) acc[i][c] = _mm512_setzero_ps();
  // Stream the next row tile (contiguous after this one) into cache meanwhile.
  const int8_t* next = wq0 + (r + R) * kpad;
  int64_t b = 0;
  for (; b + 2 <= nb; b += 2) {
#pragma GCC unroll 8
    for (int i = 0; i < R; ++i) _mm_prefetch(reinterpret_cast<const char*>(next + b * 32 * R + i * 64), _MM_HINT_T0);
    int8_step<R, C, true>(wq, wd, xq, xd, b, acc);
  }
  if (b < nb) int8_step<R, C, false>(wq, wd, xq, xd, b, acc);
#pragma GCC unroll 8
  for (int i = 0; i < R; ++i)
#pragma GCC unroll 8
    for (int c = 0; c < C; ++c) out[(t + c) * ldo + r + i] = _mm512_reduce_add_ps(acc[i][c]);
}

constexpr int kIR = 4;  // rows per int8 tile
constexpr int kIC = 4;  // tokens per int8 tile

template <int R>
inline void tile_int8_c(int c, const int8_t* q, const float* d, int64_t r, const QActs& x, int64_t t, float* out, int64_t ldo) {
  switch (c) {
    case 4: tile_int8<R, 4>(q, d, r, x, t, out, ldo); break;
    case 3: tile_int8<R, 3>(q, d, r, x, t, out, ldo); break;
    case 2: tile_int8<R, 2>(q, d, r, x, t, out, ldo); break;
    default: tile_int8<R, 1>(q, d, r, x, t, out, ldo); break;
  }
}

// Rows in the I8 layout (the provider repacks GGUF Q8_0 into it at load).
void matmul_i8(const WMat& w, const QActs& x, int64_t r0, int64_t r1, float* out, int64_t ldo) {
  const int8_t* q = reinterpret_cast<const int8_t*>(w.data);
  const int64_t T = x.tokens;
  const int64_t tb = std::max<int64_t>(kIC, (128 * 1024 / x.kpad) / kIC * kIC);
  for (int64_t t0 = 0; t0 < T; t0 += tb) {
    const int64_t t1 = std::min(T, t0 + tb);
    for (int64_t r = r0; r < r1; r += kIR) {
      const int64_t nr = std::min<int64_t>(kIR, r1 - r);
      for (int64_t t = t0; t < t1; t += kIC) {
        const int c = static_cast<int>(std::min<int64_t>(kIC, t1 - t));
        if (nr == kIR) {
          tile_int8_c<kIR>(c, q, w.scales, r, x, t, out, ldo);
        } else {
          for (int64_t i = 0; i < nr; ++i) tile_int8_c<1>(c, q, w.scales, r + i, x, t, out, ldo);
        }
      }
    }
  }
}

// GGUF Q8_0 rows read in place: 34-byte blocks {fp16 d, int8 q[32]}, one
// 256-bit block per step. Its own chain order (one block at a time), so a
// matrix must always be run in one layout — which the provider ensures.
void matmul_q8_0(const WMat& w, const QActs& x, int64_t r0, int64_t r1, float* out, int64_t ldo) {
  const int64_t nb = x.kpad / 32;
  const size_t rb = w.row_bytes();
  for (int64_t r = r0; r < r1; ++r)
    for (int64_t t = 0; t < x.tokens; ++t) {
      const int8_t* xq = x.q.data() + t * x.kpad;
      const float* xd = x.d.data() + t * nb;
      __m256 acc = _mm256_setzero_ps();
      for (int64_t b = 0; b < nb; ++b) {
        const uint8_t* blk = w.data + r * rb + b * 34;
        uint16_t h;
        std::memcpy(&h, blk, 2);
        const __m256i wv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 2));
        const __m256i xv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xq + b * 32));
        const __m256i sw = _mm256_mask_sub_epi8(wv, _mm256_movepi8_mask(xv), _mm256_setzero_si256(), wv);
        const __m256i dot = _mm256_dpbusd_epi32(_mm256_setzero_si256(), _mm256_abs_epi8(xv), sw);
        acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot), _mm256_set1_ps(_cvtsh_ss(h) * xd[b]), acc);
      }
      __m128 s4 = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps(acc, 1));
      s4 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
      s4 = _mm_add_ss(s4, _mm_movehdup_ps(s4));
      out[t * ldo + r] = _mm_cvtss_f32(s4);
    }
}

void matmul_int8(const WMat& w, const QActs& x, int64_t r0, int64_t r1, float* out, int64_t ldo) {
  if (w.format == WFormat::Q8_0) matmul_q8_0(w, x, r0, r1, out, ldo);
  else matmul_i8(w, x, r0, r1, out, ldo);
}

// --- vectors (attention) -----------------------------------------------------------

float dot(const float* a, const float* b, int64_t n) {
  __m512 acc = _mm512_setzero_ps();
  int64_t k = 0;
  for (; k + 16 <= n; k += 16) acc = _mm512_fmadd_ps(_mm512_loadu_ps(a + k), _mm512_loadu_ps(b + k), acc);
  if (k < n) {
    const __mmask16 m = static_cast<__mmask16>((1u << (n - k)) - 1);
    acc = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, a + k), _mm512_maskz_loadu_ps(m, b + k), acc);
  }
  return _mm512_reduce_add_ps(acc);
}

void axpy(float* y, float a, const float* x, int64_t n) {
  const __m512 av = _mm512_set1_ps(a);
  int64_t k = 0;
  for (; k + 16 <= n; k += 16)
    _mm512_storeu_ps(y + k, _mm512_fmadd_ps(av, _mm512_loadu_ps(x + k), _mm512_loadu_ps(y + k)));
  if (k < n) {
    const __mmask16 m = static_cast<__mmask16>((1u << (n - k)) - 1);
    _mm512_mask_storeu_ps(y + k, m, _mm512_fmadd_ps(av, _mm512_maskz_loadu_ps(m, x + k), _mm512_maskz_loadu_ps(m, y + k)));
  }
}

// out += sum_j p[j] * v[j] for up to 4 heads and 64 columns at a time, kept
// in registers across j (each v row loaded once for all heads); each element
// sees the same fma sequence as repeated axpy() calls.
template <int M>
inline void axpy_rows_m(float* out, const float* p, int64_t ldp, const float* v, int64_t n, int64_t d) {
  for (int64_t c = 0; c < d; c += 64) {
    const int64_t w = std::min<int64_t>(64, d - c);
    __mmask16 m[4];
    __m512 acc[M][4];
    for (int i = 0; i < 4; ++i) {
      const int64_t left = std::max<int64_t>(0, std::min<int64_t>(16, w - 16 * i));
      m[i] = static_cast<__mmask16>((1u << left) - 1);
      for (int h = 0; h < M; ++h) acc[h][i] = _mm512_maskz_loadu_ps(m[i], out + h * d + c + 16 * i);
    }
    for (int64_t j = 0; j < n; ++j) {
      const float* vj = v + j * d + c;
      __m512 vv[4];
      for (int i = 0; i < 4; ++i) vv[i] = _mm512_maskz_loadu_ps(m[i], vj + 16 * i);
      for (int h = 0; h < M; ++h) {
        const __m512 ph = _mm512_set1_ps(p[h * ldp + j]);
        for (int i = 0; i < 4; ++i) acc[h][i] = _mm512_fmadd_ps(ph, vv[i], acc[h][i]);
      }
    }
    for (int i = 0; i < 4; ++i)
      for (int h = 0; h < M; ++h) _mm512_mask_storeu_ps(out + h * d + c + 16 * i, m[i], acc[h][i]);
  }
}

void axpy_rows(float* out, const float* p, int64_t ldp, int64_t m, const float* v, int64_t n, int64_t d) {
  for (int64_t h = 0; h < m; h += 4) {
    float* o = out + h * d;
    const float* ph = p + h * ldp;
    switch (std::min<int64_t>(4, m - h)) {
      case 4: axpy_rows_m<4>(o, ph, ldp, v, n, d); break;
      case 3: axpy_rows_m<3>(o, ph, ldp, v, n, d); break;
      case 2: axpy_rows_m<2>(o, ph, ldp, v, n, d); break;
      default: axpy_rows_m<1>(o, ph, ldp, v, n, d); break;
    }
  }
}

// Same steps as the portable quantizer (q = rne(x * 127/max|x|), d = fp16(max / 127))
// so both give the same bits.
void quantize_row(const float* x, int64_t cols, int8_t* q, float* d) {
  for (int64_t b = 0; b * 32 < cols; ++b) {
    const int64_t n = std::min<int64_t>(32, cols - b * 32);
    const __mmask16 m0 = static_cast<__mmask16>(n >= 16 ? 0xffff : (1u << n) - 1);
    const __mmask16 m1 = static_cast<__mmask16>(n >= 32 ? 0xffff : n > 16 ? (1u << (n - 16)) - 1 : 0);
    const __m512 v0 = _mm512_maskz_loadu_ps(m0, x + b * 32), v1 = _mm512_maskz_loadu_ps(m1, x + b * 32 + 16);
    const float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(v0), _mm512_abs_ps(v1)));
    const __m512 inv = _mm512_set1_ps(amax > 0.0f ? 127.0f / amax : 0.0f);
    const __m128i q0 = _mm512_cvtsepi32_epi8(_mm512_cvtps_epi32(_mm512_mul_ps(v0, inv)));
    const __m128i q1 = _mm512_cvtsepi32_epi8(_mm512_cvtps_epi32(_mm512_mul_ps(v1, inv)));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(q + b * 32), q0);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(q + b * 32 + 16), q1);
    d[b] = fp16_round(amax / 127.0f);
  }
}

// exp(x) for 16 lanes: x = n*ln2 + r with |r| <= ln2/2, e^r by a degree-6
// polynomial, times 2^n with vscalefps (which also flushes huge negative x to
// 0). Within ~2 ulp of expf; lanes are independent, so results do not depend
// on where a row starts.
inline __m512 exp16(__m512 x) {
  x = _mm512_max_ps(_mm512_min_ps(x, _mm512_set1_ps(88.7f)), _mm512_set1_ps(-104.0f));
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
  __m512 p = _mm512_set1_ps(1.9875691500e-4f);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
  p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
  return _mm512_scalef_ps(p, n);
}

float exp_shift_sum(float* x, int64_t n, float shift) {
  const __m512 s = _mm512_set1_ps(shift);
  __m512 acc = _mm512_setzero_ps();
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = static_cast<__mmask16>(n - i >= 16 ? 0xffff : (1u << (n - i)) - 1);
    const __m512 e = exp16(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, x + i), s));
    _mm512_mask_storeu_ps(x + i, m, e);
    acc = _mm512_add_ps(acc, _mm512_maskz_mov_ps(m, e));
  }
  return _mm512_reduce_add_ps(acc);
}

void silu_mul(float* g, const float* u, int64_t n) {
  const __m512 one = _mm512_set1_ps(1.0f);
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = static_cast<__mmask16>(n - i >= 16 ? 0xffff : (1u << (n - i)) - 1);
    const __m512 x = _mm512_maskz_loadu_ps(m, g + i);
    const __m512 sig = _mm512_div_ps(x, _mm512_add_ps(one, exp16(_mm512_sub_ps(_mm512_setzero_ps(), x))));
    _mm512_mask_storeu_ps(g + i, m, _mm512_mul_ps(sig, _mm512_maskz_loadu_ps(m, u + i)));
  }
}

const KernelSet kSet{"avx512-vnni", matmul_float, matmul_int8, dot, axpy, axpy_rows, quantize_row, exp_shift_sum, silu_mul};

}  // namespace

const KernelSet* kernels_avx512_table() { return &kSet; }

}  // namespace neoserve::cpu
