// AVX-512 kernels (F/BW/VL/DQ + VNNI). Compiled with AVX-512 flags because of
// the file name; reached only through kernels_avx512() after a CPUID check.
//
// Float weights: an R x C tile (weight rows x tokens) keeps one 16-lane
// accumulator per output element; each step loads 16 weights per row once and
// applies them to all C tokens. The element's chain is always: fma over K in
// steps of 16 (masked tail), then _mm512_reduce_add_ps — whatever R, C, T.
//
// Int8 weights run in 16-row panels (I8P16, see "int8 panels" below); the row
// layouts (I8, Q8_0) go to the AVX2 kernels, which every AVX-512 CPU runs.
// GCC 12's casts from 256 to 512 bits start from _mm512_undefined_*, which its
// own -Wuninitialized then flags; the upper halves are always overwritten or zeroed.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "matmul.h"
#include "core/model/half.h"

namespace neoserve::cpu {

const KernelSet* kernels_avx2_table();

// A panel block is 8 groups of 4 K: the int8 loads below index blocks by it.
static_assert(kQuantBlock == 32);
namespace {

template <int R, int C>
inline void zero_tile(__m512 (&acc)[R][C]) {
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 8
    for (int c = 0; c < C; ++c) acc[r][c] = _mm512_setzero_ps();
}

// A panel tile's outputs: token c's 16 rows of panel r at out + c*ldo + 16r, only the rows `keep` marks.
template <int R, int C>
inline void store_panel_tile(const __m512 (&acc)[R][C], float* out, int64_t ldo, const __mmask16 (&keep)[R]) {
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 8
    for (int c = 0; c < C; ++c) _mm512_mask_storeu_ps(out + c * ldo + r * kPanelRows, keep[r], acc[r][c]);
}

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
  zero_tile(acc);
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

// --- fp32 weights in 16-row panels --------------------------------------------------
//
// R panels x C tokens: per k, one load of the 16 rows' weights per panel and
// one broadcast of each token's x[k], R x C fmas into one lane per row: no
// horizontal sums. Each output's chain: fma over k in order from 0, whatever
// R, C, T — matmul_f32_panels_portable's, bit for bit.

template <int R, int C>
inline void f32_panel_tile(const float* w, int64_t K, const float* x, float* out, int64_t ldo, const __mmask16 (&keep)[R]) {
  const int64_t pstride = K * kPanelRows;
  __m512 acc[R][C];
  zero_tile(acc);
  for (int64_t k = 0; k < K; ++k) {
    __m512 wv[R];
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) wv[r] = _mm512_loadu_ps(w + r * pstride + k * kPanelRows);
#pragma GCC unroll 8
    for (int c = 0; c < C; ++c) {
      const __m512 xb = _mm512_set1_ps(x[c * K + k]);
#pragma GCC unroll 8
      for (int r = 0; r < R; ++r) acc[r][c] = _mm512_fmadd_ps(wv[r], xb, acc[r][c]);
    }
  }
  store_panel_tile(acc, out, ldo, keep);
}

template <int R>
inline void f32_panel_tile_c(int c, const float* w, int64_t K, const float* x, float* out, int64_t ldo, const __mmask16 (&keep)[R]) {
  switch (c) {
    case 6: if constexpr (R <= 4) { f32_panel_tile<R, 6>(w, K, x, out, ldo, keep); break; } [[fallthrough]];
    case 5: if constexpr (R <= 4) { f32_panel_tile<R, 5>(w, K, x, out, ldo, keep); break; } [[fallthrough]];
    case 4: if constexpr (R <= 4) { f32_panel_tile<R, 4>(w, K, x, out, ldo, keep); break; } [[fallthrough]];
    case 3: if constexpr (R <= 4) { f32_panel_tile<R, 3>(w, K, x, out, ldo, keep); break; } [[fallthrough]];
    case 2: f32_panel_tile<R, 2>(w, K, x, out, ldo, keep); break;
    default: f32_panel_tile<R, 1>(w, K, x, out, ldo, keep); break;
  }
}

// The 16-row store masks of panel p for rows [r0, r1).
inline __mmask16 panel_keep(int64_t p, int64_t r0, int64_t r1) {
  const int64_t lo = std::max<int64_t>(0, r0 - p * kPanelRows), hi = std::min<int64_t>(kPanelRows, r1 - p * kPanelRows);
  return static_cast<__mmask16>(((1u << hi) - 1) & ~((1u << lo) - 1));
}

// Rows [r0, r1) in groups of R panels (the last ones alone) by tokens [t0, t1)
// in tiles of C: tile.template operator()<RR>(p, t, c, keep) computes panels
// [p, p + RR) for tokens [t, t + c), storing only the range's rows.
template <int R, int C, class Tile>
inline void for_panel_tiles(int64_t r0, int64_t r1, int64_t t0, int64_t t1, Tile&& tile) {
  const int64_t p0 = r0 / kPanelRows, p1 = panels_of(r1);
  for (int64_t p = p0; p < p1; p += R)
    for (int64_t t = t0; t < t1; t += C) {
      const int c = static_cast<int>(std::min<int64_t>(C, t1 - t));
      if (p + R <= p1) {
        __mmask16 keep[R];
        for (int r = 0; r < R; ++r) keep[r] = panel_keep(p + r, r0, r1);
        tile.template operator()<R>(p, t, c, keep);
      } else {
        for (int64_t i = p; i < p1; ++i) {
          const __mmask16 keep[1] = {panel_keep(i, r0, r1)};
          tile.template operator()<1>(i, t, c, keep);
        }
      }
    }
}

template <int R, int C>
void matmul_f32_panels_rc(const WMat& w, const float* x, int64_t T, int64_t r0, int64_t r1, float* out, int64_t ldo) {
  static_assert(R <= 4 || C <= 2, "f32_panel_tile_c has no wider tiles: 32 zmm registers");
  const int64_t K = w.cols;
  const float* f = reinterpret_cast<const float*>(w.data);
  // Tokens in blocks whose activations stay in L2 while the panels pass over them.
  const int64_t tb = std::max<int64_t>(C, (128 * 1024 / (K * 4)) / C * C);
  for (int64_t t0 = 0; t0 < T; t0 += tb)
    for_panel_tiles<R, C>(r0, r1, t0, std::min(T, t0 + tb), [&]<int RR>(int64_t p, int64_t t, int c, const __mmask16 (&keep)[RR]) {
      f32_panel_tile_c<RR>(c, f + p * K * kPanelRows, K, x + t * K, out + t * ldo + p * kPanelRows, ldo, keep);
    });
}

void matmul_f32_panels(const WMat& w, const float* x, int64_t T, int64_t r0, int64_t r1, float* out, int64_t ldo) {
  // Few tokens: more panels per tile (more loads in flight); many: more tokens per loaded weight.
  if (T <= 2) matmul_f32_panels_rc<8, 2>(w, x, T, r0, r1, out, ldo);
  else matmul_f32_panels_rc<4, 6>(w, x, T, r0, r1, out, ldo);
}

void matmul_float(const WMat& w, const float* x, int64_t T, int64_t r0, int64_t r1, float* out, int64_t ldo) {
  switch (w.format) {
    case WFormat::F32P16: matmul_f32_panels(w, x, T, r0, r1, out, ldo); break;
    case WFormat::BF16P16: matmul_bf16_panels_portable(w, x, T, r0, r1, out, ldo); break;  // needs AVX512_BF16: correct, not fast
    case WFormat::F32: matmul_float_t<LoadF32>(w, x, T, r0, r1, out, ldo); break;
    case WFormat::F16: matmul_float_t<LoadF16>(w, x, T, r0, r1, out, ldo); break;
    case WFormat::BF16: matmul_float_t<LoadBF16>(w, x, T, r0, r1, out, ldo); break;
    default: break;
  }
}

// --- bf16 weights in 16-row panels (CPUs with AVX512_BF16) -----------------------------
//
// As llama.cpp and PyTorch run bf16 weights: the activations rounded to bf16
// (RNE) and vdpbf16ps, 32 multiply-adds per instruction, twice the fp32 fma
// rate that bounds prefill. As the fp32 panels, with pairs: a 512-bit load
// holds 2 K of 16 rows, and one vdpbf16ps with the token's bf16 pair broadcast
// adds both into the 16 rows' lanes. Each output's chain: vdpbf16ps over the
// pairs in order, no horizontal sums — whatever R, C, T.

// Tokens [t0, t1) of x as bf16, rows of kp (K rounded up to 32, zero-padded).
void to_bf16(const float* x, int64_t K, int64_t kp, int64_t t0, int64_t t1, uint16_t* xb) {
  for (int64_t t = t0; t < t1; ++t) {
    const float* src = x + t * K;
    uint16_t* dst = xb + (t - t0) * kp;
    for (int64_t k = 0; k < kp; k += 32) {
      const int64_t n = std::max<int64_t>(0, std::min<int64_t>(32, K - k));
      const __mmask16 lo = static_cast<__mmask16>(n >= 16 ? 0xffff : (1u << n) - 1);
      const __mmask16 hi = static_cast<__mmask16>(n >= 32 ? 0xffff : n > 16 ? (1u << (n - 16)) - 1 : 0);
      const __m512bh v = _mm512_cvtne2ps_pbh(_mm512_maskz_loadu_ps(hi, src + k + 16), _mm512_maskz_loadu_ps(lo, src + k));
      _mm512_storeu_si512(dst + k, reinterpret_cast<const __m512i&>(v));
    }
  }
}

template <int R, int C>
inline void bf16_panel_tile(const uint16_t* w, int64_t ke, const uint16_t* xb, int64_t kp, float* out, int64_t ldo,
                            const __mmask16 (&keep)[R]) {
  const int64_t pstride = ke * kPanelRows;
  __m512 acc[R][C];
  zero_tile(acc);
  for (int64_t k = 0; k < ke; k += 2) {
    __m512i wv[R];
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) wv[r] = _mm512_loadu_si512(w + r * pstride + k * kPanelRows);
#pragma GCC unroll 8
    for (int c = 0; c < C; ++c) {
      int32_t pair;
      std::memcpy(&pair, xb + c * kp + k, 4);
      const __m512i xv = _mm512_set1_epi32(pair);
#pragma GCC unroll 8
      for (int r = 0; r < R; ++r)
        acc[r][c] = _mm512_dpbf16_ps(acc[r][c], reinterpret_cast<const __m512bh&>(wv[r]), reinterpret_cast<const __m512bh&>(xv));
    }
  }
  store_panel_tile(acc, out, ldo, keep);
}

template <int R>
inline void bf16_panel_tile_c(int c, const uint16_t* w, int64_t ke, const uint16_t* xb, int64_t kp, float* out, int64_t ldo,
                              const __mmask16 (&keep)[R]) {
  switch (c) {
    case 6: if constexpr (R <= 4) { bf16_panel_tile<R, 6>(w, ke, xb, kp, out, ldo, keep); break; } [[fallthrough]];
    case 5: if constexpr (R <= 4) { bf16_panel_tile<R, 5>(w, ke, xb, kp, out, ldo, keep); break; } [[fallthrough]];
    case 4: if constexpr (R <= 4) { bf16_panel_tile<R, 4>(w, ke, xb, kp, out, ldo, keep); break; } [[fallthrough]];
    case 3: if constexpr (R <= 4) { bf16_panel_tile<R, 3>(w, ke, xb, kp, out, ldo, keep); break; } [[fallthrough]];
    case 2: bf16_panel_tile<R, 2>(w, ke, xb, kp, out, ldo, keep); break;
    default: bf16_panel_tile<R, 1>(w, ke, xb, kp, out, ldo, keep); break;
  }
}

template <int R, int C>
void matmul_bf16_panels_rc(const WMat& w, const float* x, int64_t T, int64_t r0, int64_t r1, float* out, int64_t ldo) {
  static_assert(R <= 4 || C <= 2, "bf16_panel_tile_c has no wider tiles: 32 zmm registers");
  const int64_t K = w.cols, ke = even(K), kp = (K + 31) / 32 * 32;
  const uint16_t* h = reinterpret_cast<const uint16_t*>(w.data);
  const int64_t tb = std::max<int64_t>(C, (static_cast<int64_t>(kBf16ActivationBlockBytes) / (kp * 2)) / C * C);
  thread_local std::vector<uint16_t> xb;  // within bf16_activation_bytes(K), which the provider plans
  xb.resize(static_cast<size_t>(tb * kp));
  for (int64_t t0 = 0; t0 < T; t0 += tb) {
    const int64_t t1 = std::min(T, t0 + tb);
    to_bf16(x, K, kp, t0, t1, xb.data());
    for_panel_tiles<R, C>(r0, r1, t0, t1, [&]<int RR>(int64_t p, int64_t t, int c, const __mmask16 (&keep)[RR]) {
      bf16_panel_tile_c<RR>(c, h + p * ke * kPanelRows, ke, xb.data() + (t - t0) * kp, kp, out + t * ldo + p * kPanelRows, ldo, keep);
    });
  }
}

void matmul_float_bf16(const WMat& w, const float* x, int64_t T, int64_t r0, int64_t r1, float* out, int64_t ldo) {
  if (w.format == WFormat::BF16P16) {
    if (T <= 2) matmul_bf16_panels_rc<8, 2>(w, x, T, r0, r1, out, ldo);
    else matmul_bf16_panels_rc<4, 6>(w, x, T, r0, r1, out, ldo);
  } else {
    matmul_float(w, x, T, r0, r1, out, ldo);
  }
}

// --- int8 panels ---------------------------------------------------------------------
//
// R panels (16 rows each) x C tokens. Per block: the integer dot products of
// 16 rows in one register per (panel, token), 8 vpdpbusd with the token's 4
// bytes broadcast; weights enter as u8 (w + 128: the sign bit flipped) and the
// accumulator starts at -128 * sum(x) of the block, so it ends at exactly
// sum(w * x). Then one fma per (panel, token) into fp32: float(dot) * (w_d * x_d).

// A tile's C tokens from t: each one's quantized activations, block scales and block sums.
template <int C>
struct TileTokens {
  const int8_t* q[C];
  const float* d[C];
  const int32_t* sums[C];
  TileTokens(const QActs& x, int64_t t, int64_t nb) {
    for (int c = 0; c < C; ++c) {
      q[c] = x.q.data() + (t + c) * x.kpad;
      d[c] = x.d.data() + (t + c) * nb;
      sums[c] = x.sums.data() + (t + c) * nb;
    }
  }
};

template <int R, int C>
inline void panel_tile(const uint8_t* q, int64_t nb, const QActs& x, int64_t t, float* out, int64_t ldo, const __mmask16 (&keep)[R]) {
  const int64_t qstride = nb * kPanelBlockBytes;
  const TileTokens<C> tokens(x, t, nb);
  const auto& [xq, xd, xs] = tokens;
  const __m512i flip = _mm512_set1_epi8(static_cast<char>(0x80));
  __m512 acc[R][C];
  zero_tile(acc);
  for (int64_t b = 0; b < nb; ++b) {
    __m512i dot[R][C];
#pragma GCC unroll 8
    for (int c = 0; c < C; ++c) {
      const __m512i start = _mm512_set1_epi32(-128 * xs[c][b]);
#pragma GCC unroll 8
      for (int r = 0; r < R; ++r) dot[r][c] = start;
    }
#pragma GCC unroll 8
    for (int g = 0; g < 8; ++g) {
      __m512i w[R];
#pragma GCC unroll 8
      for (int r = 0; r < R; ++r)
        w[r] = _mm512_xor_si512(_mm512_loadu_si512(q + r * qstride + b * kPanelBlockBytes + g * 64), flip);
#pragma GCC unroll 8
      for (int c = 0; c < C; ++c) {
        int32_t four;
        std::memcpy(&four, xq[c] + b * 32 + g * 4, 4);
        const __m512i xb = _mm512_set1_epi32(four);
#pragma GCC unroll 8
        for (int r = 0; r < R; ++r) dot[r][c] = _mm512_dpbusd_epi32(dot[r][c], w[r], xb);
      }
    }
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      const __m512 ws = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(q + r * qstride + b * kPanelBlockBytes + kPanelValueBytes)));
#pragma GCC unroll 8
      for (int c = 0; c < C; ++c)
        acc[r][c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot[r][c]), _mm512_mul_ps(ws, _mm512_set1_ps(xd[c][b])), acc[r][c]);
    }
  }
  store_panel_tile(acc, out + t * ldo, ldo, keep);
}

template <int R>
inline void panel_tile_c(int c, const uint8_t* q, int64_t nb, const QActs& x, int64_t t, float* out, int64_t ldo,
                         const __mmask16 (&keep)[R]) {
  switch (c) {
    case 6: if constexpr (R <= 2) { panel_tile<R, 6>(q, nb, x, t, out, ldo, keep); break; } [[fallthrough]];
    case 5: if constexpr (R <= 2) { panel_tile<R, 5>(q, nb, x, t, out, ldo, keep); break; } [[fallthrough]];
    case 4: if constexpr (R <= 2) { panel_tile<R, 4>(q, nb, x, t, out, ldo, keep); break; } [[fallthrough]];
    case 3: panel_tile<R, 3>(q, nb, x, t, out, ldo, keep); break;
    case 2: panel_tile<R, 2>(q, nb, x, t, out, ldo, keep); break;
    default: panel_tile<R, 1>(q, nb, x, t, out, ldo, keep); break;
  }
}

template <int R, int C>
void matmul_panels_rc(const WMat& w, const QActs& x, int64_t r0, int64_t r1, float* out, int64_t ldo) {
  static_assert(R <= 2 || C <= 3, "panel_tile_c has no wider tiles: 32 zmm registers");
  const int64_t nb = x.kpad / 32, T = x.tokens;
  // Tokens in blocks whose activations stay in L2 while the panels pass over them.
  const int64_t tb = std::max<int64_t>(C, (256 * 1024 / x.kpad) / C * C);
  for (int64_t t0 = 0; t0 < T; t0 += tb)
    for_panel_tiles<R, C>(r0, r1, t0, std::min(T, t0 + tb), [&]<int RR>(int64_t p, int64_t t, int c, const __mmask16 (&keep)[RR]) {
      panel_tile_c<RR>(c, w.data + p * nb * kPanelBlockBytes, nb, x, t, out + p * kPanelRows, ldo, keep);
    });
}

void matmul_panels(const WMat& w, const QActs& x, int64_t r0, int64_t r1, float* out, int64_t ldo) {
  // Few tokens: more panels per tile, so decode keeps more loads in flight; many: more tokens per loaded weight.
  if (x.tokens <= 2) matmul_panels_rc<4, 2>(w, x, r0, r1, out, ldo);
  else matmul_panels_rc<2, 6>(w, x, r0, r1, out, ldo);
}

// --- 4-bit panels ----------------------------------------------------------------------
//
// As the int8 panels, with weights unsigned 0..15 two to a byte: each 64-byte
// load gives, masked, the low nibbles (K 8g..8g+3 of 16 rows) and, shifted,
// the high ones (K 8g+4..8g+7), two vpdpbusd with the token's bytes broadcast.
// Q4SP16's dot starts at -8 * sum(x) (Q4_0's offset, exact); Q4P16's min
// enters after the scale: one more fma by -w_m * (x_d * sum(x)).

template <bool kMins, int R, int C>
inline void q4_panel_tile(const uint8_t* q, int64_t nb, const QActs& x, int64_t t, float* out, int64_t ldo, const __mmask16 (&keep)[R]) {
  const int64_t bb = q4_panel_block_bytes(kMins), qstride = nb * bb;
  const TileTokens<C> tokens(x, t, nb);
  const auto& [xq, xd, xs] = tokens;
  const __m512i nibble = _mm512_set1_epi8(0x0F);
  __m512 acc[R][C];
  zero_tile(acc);
  for (int64_t b = 0; b < nb; ++b) {
    __m512i dot[R][C];
#pragma GCC unroll 8
    for (int c = 0; c < C; ++c) {
      const __m512i start = kMins ? _mm512_setzero_si512() : _mm512_set1_epi32(-8 * xs[c][b]);
#pragma GCC unroll 8
      for (int r = 0; r < R; ++r) dot[r][c] = start;
    }
#pragma GCC unroll 4
    for (int g = 0; g < 4; ++g) {
      __m512i lo[R], hi[R];
#pragma GCC unroll 8
      for (int r = 0; r < R; ++r) {
        const __m512i v = _mm512_loadu_si512(q + r * qstride + b * bb + g * 64);
        lo[r] = _mm512_and_si512(v, nibble);
        hi[r] = _mm512_and_si512(_mm512_srli_epi16(v, 4), nibble);
      }
#pragma GCC unroll 8
      for (int c = 0; c < C; ++c) {
        int32_t four[2];
        std::memcpy(four, xq[c] + b * 32 + g * 8, 8);
        const __m512i xl = _mm512_set1_epi32(four[0]), xh = _mm512_set1_epi32(four[1]);
#pragma GCC unroll 8
        for (int r = 0; r < R; ++r) dot[r][c] = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(dot[r][c], lo[r], xl), hi[r], xh);
      }
    }
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      const uint8_t* scales = q + r * qstride + b * bb + kQ4PanelValueBytes;
      const __m512 wd = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(scales)));
#pragma GCC unroll 8
      for (int c = 0; c < C; ++c) acc[r][c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot[r][c]), _mm512_mul_ps(wd, _mm512_set1_ps(xd[c][b])), acc[r][c]);
      if constexpr (kMins) {
        const __m512 wm = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(scales + kPanelRows * 2)));
#pragma GCC unroll 8
        for (int c = 0; c < C; ++c)
          acc[r][c] = _mm512_fnmadd_ps(wm, _mm512_set1_ps(xd[c][b] * static_cast<float>(xs[c][b])), acc[r][c]);
      }
    }
  }
  store_panel_tile(acc, out + t * ldo, ldo, keep);
}

template <bool kMins, int R>
inline void q4_panel_tile_c(int c, const uint8_t* q, int64_t nb, const QActs& x, int64_t t, float* out, int64_t ldo,
                            const __mmask16 (&keep)[R]) {
  switch (c) {
    case 4: if constexpr (R <= 2) { q4_panel_tile<kMins, R, 4>(q, nb, x, t, out, ldo, keep); break; } [[fallthrough]];
    case 3: if constexpr (R <= 2) { q4_panel_tile<kMins, R, 3>(q, nb, x, t, out, ldo, keep); break; } [[fallthrough]];
    case 2: q4_panel_tile<kMins, R, 2>(q, nb, x, t, out, ldo, keep); break;
    default: q4_panel_tile<kMins, R, 1>(q, nb, x, t, out, ldo, keep); break;
  }
}

template <bool kMins, int R, int C>
void matmul_q4_panels_rc(const WMat& w, const QActs& x, int64_t r0, int64_t r1, float* out, int64_t ldo) {
  static_assert(R <= 2 || C <= 2, "q4_panel_tile_c has no wider tiles: 32 zmm registers");
  const int64_t nb = x.kpad / 32, T = x.tokens, bb = q4_panel_block_bytes(kMins);
  const int64_t tb = std::max<int64_t>(C, (256 * 1024 / x.kpad) / C * C);
  for (int64_t t0 = 0; t0 < T; t0 += tb)
    for_panel_tiles<R, C>(r0, r1, t0, std::min(T, t0 + tb), [&]<int RR>(int64_t p, int64_t t, int c, const __mmask16 (&keep)[RR]) {
      q4_panel_tile_c<kMins, RR>(c, w.data + p * nb * bb, nb, x, t, out + p * kPanelRows, ldo, keep);
    });
}

template <bool kMins>
void matmul_q4_panels(const WMat& w, const QActs& x, int64_t r0, int64_t r1, float* out, int64_t ldo) {
  if (x.tokens <= 2) matmul_q4_panels_rc<kMins, 4, 2>(w, x, r0, r1, out, ldo);
  else matmul_q4_panels_rc<kMins, 2, 4>(w, x, r0, r1, out, ldo);
}

void matmul_int8(const WMat& w, const QActs& x, int64_t r0, int64_t r1, float* out, int64_t ldo) {
  if (w.format == WFormat::I8P16) matmul_panels(w, x, r0, r1, out, ldo);
  else if (w.format == WFormat::Q4P16) matmul_q4_panels<true>(w, x, r0, r1, out, ldo);
  else if (w.format == WFormat::Q4SP16) matmul_q4_panels<false>(w, x, r0, r1, out, ldo);
  else kernels_avx2_table()->matmul_int8(w, x, r0, r1, out, ldo);  // row layouts: not this set's (int8_layout)
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

void widen_f16(const uint16_t* h, float* f, int64_t n) {
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = static_cast<__mmask16>(n - i >= 16 ? 0xffff : (1u << (n - i)) - 1);
    _mm512_mask_storeu_ps(f + i, m, _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, h + i)));
  }
}

void narrow_f16(const float* f, uint16_t* h, int64_t n) {
  // min/max with the limit first return the value itself when it is NaN.
  const __m512 hi = _mm512_set1_ps(65504.0f), lo = _mm512_set1_ps(-65504.0f);
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = static_cast<__mmask16>(n - i >= 16 ? 0xffff : (1u << (n - i)) - 1);
    const __m512 v = _mm512_max_ps(lo, _mm512_min_ps(hi, _mm512_maskz_loadu_ps(m, f + i)));
    _mm256_mask_storeu_epi16(h + i, m, _mm512_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT));
  }
}

const KernelSet kSet{"avx512-vnni", WFormat::I8P16, WFormat::F32P16, WFormat::BF16, matmul_float, matmul_int8, dot, axpy, axpy_rows, quantize_row, exp_shift_sum, silu_mul, widen_f16, narrow_f16};
const KernelSet kSetBf16{"avx512-bf16", WFormat::I8P16, WFormat::F32P16, WFormat::BF16P16, matmul_float_bf16, matmul_int8, dot, axpy, axpy_rows, quantize_row, exp_shift_sum, silu_mul, widen_f16, narrow_f16};

}  // namespace

const KernelSet* kernels_avx512_table(bool bf16) { return bf16 ? &kSetBf16 : &kSet; }

}  // namespace neoserve::cpu
