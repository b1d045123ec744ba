// The CPU provider's kernels: every instruction set this machine runs against
// a naive double-precision reference, and batch invariance (bit-identical
// outputs whatever the token count, row split or thread count).
#include <atomic>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <stdexcept>
#include <vector>

#include "core/model/half.h"
#include "harness.h"
#include "providers/cpu/kernels/matmul.h"
#include "providers/cpu/thread_pool.h"

using namespace neoserve;
using namespace neoserve::cpu;

namespace {

std::vector<const KernelSet*> all_sets() {
  std::vector<const KernelSet*> v{&kernels_portable()};
  if (kernels_avx2()) v.push_back(kernels_avx2());
  if (kernels_avx512(false)) v.push_back(kernels_avx512(false));
  if (kernels_avx512(true)) v.push_back(kernels_avx512(true));
  return v;
}

std::vector<float> random_floats(size_t n, uint64_t seed, float spread = 1.0f) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> u(-spread, spread);
  std::vector<float> v(n);
  for (float& x : v) x = u(rng);
  return v;
}

// A weight matrix in `format`, with its storage, built from fp32 values.
struct TestMat {
  WMat w;
  std::vector<uint8_t> bytes;
  std::vector<float> scales;
  TestMat(WFormat f, int64_t n, int64_t k, uint64_t seed) {
    if (f == WFormat::F32P16) {  // the F32 matrix, packed
      const TestMat rows(WFormat::F32, n, k, seed);
      bytes.resize(panels_of(n) * kPanelRows * k * 4);
      for (int64_t p = 0; p < panels_of(n); ++p)
        pack_f32_panel(reinterpret_cast<const float*>(rows.bytes.data()) + p * kPanelRows * k, std::min(kPanelRows, n - p * kPanelRows), k,
                       reinterpret_cast<float*>(bytes.data()) + p * kPanelRows * k);
      w = WMat{f, n, k, bytes.data(), nullptr};
      return;
    }
    if (f == WFormat::BF16P16) {  // the BF16 matrix, packed
      const TestMat rows(WFormat::BF16, n, k, seed);
      bytes.resize(panels_of(n) * kPanelRows * even(k) * 2);
      for (int64_t p = 0; p < panels_of(n); ++p)
        pack_bf16_panel(rows.bytes.data() + p * kPanelRows * k * 2, static_cast<size_t>(k) * 2, std::min(kPanelRows, n - p * kPanelRows), k,
                        reinterpret_cast<uint16_t*>(bytes.data()) + p * kPanelRows * even(k));
      w = WMat{f, n, k, bytes.data(), nullptr};
      return;
    }
    if (f == WFormat::I8P16) {  // the I8 matrix, packed
      const TestMat rows(WFormat::I8, n, k, seed);
      bytes.resize(panels_of(n) * rows.w.kpad() / 32 * kPanelBlockBytes);
      pack_panels(rows.w, 0, panels_of(n), bytes.data());
      w = WMat{f, n, k, bytes.data(), nullptr};
      return;
    }
    const std::vector<float> v = random_floats(n * k, seed);
    w.format = f;
    w.rows = n;
    w.cols = k;
    switch (f) {
      case WFormat::F32:
        bytes.resize(n * k * 4);
        std::memcpy(bytes.data(), v.data(), bytes.size());
        break;
      case WFormat::F16:
      case WFormat::BF16:
        bytes.resize(n * k * 2);
        for (int64_t i = 0; i < n * k; ++i) {
          const uint16_t h = f == WFormat::F16 ? f32_to_fp16(v[i]) : f32_to_bf16(v[i]);
          std::memcpy(bytes.data() + 2 * i, &h, 2);
        }
        break;
      case WFormat::I8:
        bytes.resize(n * w.kpad());
        scales.resize(n * w.kpad() / 32);
        quantize_rows_i8(v.data(), n, k, reinterpret_cast<int8_t*>(bytes.data()), scales.data());
        w.scales = scales.data();
        break;
      case WFormat::Q8_0:
        bytes.resize(n * (k / 32) * 34);
        for (int64_t b = 0; b < n * k / 32; ++b) {
          float amax = 0;
          for (int i = 0; i < 32; ++i) amax = std::max(amax, std::fabs(v[b * 32 + i]));
          const uint16_t dh = f32_to_fp16(amax / 127.0f);
          const float d = fp16_to_f32(dh);
          std::memcpy(bytes.data() + b * 34, &dh, 2);
          for (int i = 0; i < 32; ++i)
            bytes[b * 34 + 2 + i] = static_cast<uint8_t>(static_cast<int8_t>(std::nearbyint(v[b * 32 + i] / d)));
        }
        break;
      case WFormat::I8P16:
      case WFormat::F32P16:
      case WFormat::BF16P16: break;  // above
      case WFormat::Ggml:
      case WFormat::Q4P16:
      case WFormat::Q4SP16: throw std::logic_error("test matrices of ggml block types come from files; 4-bit panels from q4_panels()");
    }
    w.data = bytes.data();
  }
  double at(int64_t r, int64_t k) const {  // the stored value, exactly
    std::vector<float> row(w.cols);
    dequantize_row(w, r, row.data());
    return row[k];
  }
};

// Reference: sum over k in double of the given operand values; also sum |w x| for the bound.
void reference(const TestMat& m, const std::vector<double>& x, int64_t T, std::vector<double>& out, std::vector<double>& mag) {
  const int64_t N = m.w.rows, K = m.w.cols;
  out.assign(T * N, 0.0);
  mag.assign(T * N, 0.0);
  std::vector<float> row(K);
  for (int64_t n = 0; n < N; ++n) {
    dequantize_row(m.w, n, row.data());
    for (int64_t t = 0; t < T; ++t)
      for (int64_t k = 0; k < K; ++k) {
        out[t * N + n] += static_cast<double>(row[k]) * x[t * K + k];
        mag[t * N + n] += std::fabs(static_cast<double>(row[k]) * x[t * K + k]);
      }
  }
}

const int64_t kShapesK[] = {1, 15, 16, 17, 31, 72, 100, 576};
const int64_t kShapesT[] = {1, 2, 5, 7, 13};

}  // namespace

TEST("kernels.float_formats_match_double_reference") {
  for (const KernelSet* ks : all_sets())
    for (WFormat f : {WFormat::F32, WFormat::F16, WFormat::BF16, WFormat::F32P16, WFormat::BF16P16})
      for (int64_t K : kShapesK)
        for (int64_t T : kShapesT) {
          const int64_t N = 37;
          TestMat m(f, N, K, 11 + K);
          const std::vector<float> x = random_floats(T * K, 7 + T);
          std::vector<float> out(T * N, -1.0f);
          ks->matmul_float(m.w, x.data(), T, 0, N, out.data(), N);
          // bf16 panels are bf16 dot products, activations rounded to bf16: so is their reference.
          const bool bf16_dots = f == WFormat::BF16P16;
          std::vector<double> xr(x.begin(), x.end());
          if (bf16_dots)
            for (double& v : xr) v = bf16_to_f32(f32_to_bf16(static_cast<float>(v)));
          std::vector<double> ref, mag, ref_f, mag_f;
          reference(m, xr, T, ref, mag);
          reference(m, std::vector<double>(x.begin(), x.end()), T, ref_f, mag_f);
          for (int64_t i = 0; i < T * N; ++i) {
            // fp32 accumulation of K products: error well under K * 2^-24 * sum|w x|;
            // against the unrounded activations, bf16's half step (2^-8 of a value) more.
            const double tol = 1e-6 * static_cast<double>(K) * mag[i] + 1e-30;
            if (std::fabs(out[i] - ref[i]) > tol || std::fabs(out[i] - ref_f[i]) > tol + 0x1p-8 * mag_f[i]) {
              CHECK_NEAR(out[i], ref[i], tol);
              CHECK_NEAR(out[i], ref_f[i], tol + 0x1p-8 * mag_f[i]);
              std::fprintf(stderr, "  isa %s format %s K=%lld T=%lld\n", ks->isa, wformat_name(f), (long long)K, (long long)T);
              return;
            }
          }
        }
}

TEST("kernels.int8_formats_match_dequantized_reference") {
  // The integer kernels compute exactly sum_b w_d*x_d*sum_i(w_q*x_q), up to fp32
  // rounding of the per-block products and their sum: compared with the
  // double product of the dequantized operands, |err| <= 1e-5 * sum|w x|.
  // Against the unquantized fp32 activations the quantization error of x
  // (at most half a step, max|x|/254 per block) adds: checked <= 2% of sum|w x|.
  for (const KernelSet* ks : all_sets())
    for (WFormat f : {WFormat::I8, WFormat::Q8_0, WFormat::I8P16})
      for (int64_t K : kShapesK) {
        if (f == WFormat::Q8_0 && K % 32 != 0) continue;
        for (int64_t T : kShapesT) {
          const int64_t N = 37;
          TestMat m(f, N, K, 21 + K);
          const std::vector<float> x = random_floats(T * K, 3 + T);
          QActs xq;
          xq.quantize(x.data(), T, K);
          std::vector<double> xdq(T * K);
          for (int64_t t = 0; t < T; ++t)
            for (int64_t k = 0; k < K; ++k)
              xdq[t * K + k] = static_cast<double>(xq.d[t * (xq.kpad / 32) + k / 32]) * xq.q[t * xq.kpad + k];
          std::vector<float> out(T * N, -1.0f);
          ks->matmul_int8(m.w, xq, 0, N, out.data(), N);
          std::vector<double> ref, mag, ref_f, mag_f;
          reference(m, xdq, T, ref, mag);
          reference(m, std::vector<double>(x.begin(), x.end()), T, ref_f, mag_f);
          for (int64_t i = 0; i < T * N; ++i) {
            if (std::fabs(out[i] - ref[i]) > 1e-5 * mag[i] + 1e-30 || std::fabs(out[i] - ref_f[i]) > 0.02 * mag_f[i]) {
              CHECK_NEAR(out[i], ref[i], 1e-5 * mag[i]);
              CHECK_NEAR(out[i], ref_f[i], 0.02 * mag_f[i]);
              std::fprintf(stderr, "  isa %s format %s K=%lld T=%lld\n", ks->isa, wformat_name(f), (long long)K, (long long)T);
              return;
            }
          }
        }
      }
}

TEST("kernels.batch_invariance_tokens_rows_threads") {
  // out[t][n] must have the same bits for any T, any row range and any thread
  // count: compare a 29-token run (all tile remainders occur) against each
  // token alone, rows computed in odd pieces, and matmul() on pools of 1 and 2.
  ThreadPool pool1(1), pool2(2);
  for (const KernelSet* ks : all_sets())
    for (WFormat f : {WFormat::F32, WFormat::F16, WFormat::BF16, WFormat::I8, WFormat::Q8_0, WFormat::I8P16, WFormat::F32P16, WFormat::BF16P16})
      for (int64_t K : {int64_t{72}, int64_t{100}, int64_t{576}}) {
        if (f == WFormat::Q8_0 && K % 32 != 0) continue;
        const int64_t N = 53, T = 29;
        TestMat m(f, N, K, 5 + K);
        const std::vector<float> x = random_floats(T * K, 9);
        QActs xq_all;
        xq_all.quantize(x.data(), T, K);
        auto run_rows = [&](const float* xs, const QActs& q, int64_t tokens, int64_t r0, int64_t r1, float* out) {
          if (m.w.integer()) ks->matmul_int8(m.w, q, r0, r1, out, N);
          else ks->matmul_float(m.w, xs, tokens, r0, r1, out, N);
        };
        std::vector<float> all(T * N);
        run_rows(x.data(), xq_all, T, 0, N, all.data());
        bool same = true;
        for (int64_t t = 0; t < T; ++t) {  // each token alone, rows in pieces of 1, 3, 5, rest
          QActs q1;
          q1.quantize(x.data() + t * K, 1, K);
          std::vector<float> one(N);
          int64_t r = 0;
          for (int64_t piece : {1, 3, 5, 53}) {
            const int64_t e = std::min(N, r + piece);
            run_rows(x.data() + t * K, q1, 1, r, e, one.data());
            r = e;
          }
          same &= std::memcmp(one.data(), all.data() + t * N, N * 4) == 0;
        }
        for (ThreadPool* pool : {&pool1, &pool2}) {
          std::vector<float> viapool(T * N);
          MatmulJob job{&m.w, viapool.data()};
          matmul(*pool, *ks, x.data(), &xq_all, T, &job, 1);
          same &= std::memcmp(viapool.data(), all.data(), T * N * 4) == 0;
        }
        if (!same) {
          CHECK(same);
          std::fprintf(stderr, "  isa %s format %s K=%lld\n", ks->isa, wformat_name(f), (long long)K);
        }
      }
}

TEST("kernels.int8_panels_match_the_portable_chain_bit_for_bit") {
  // The panel kernel's integer dots are exact and its fp32 chain is fixed
  // (one fma per block), so every set gives the portable reference's bits:
  // rows not a whole panel, K not whole blocks, every token-tile remainder,
  // activations at the int8 extremes (-127 and 127 against weights of -128).
  for (const KernelSet* ks : all_sets())
    for (int64_t K : {int64_t{1}, int64_t{31}, int64_t{100}, int64_t{576}, int64_t{2048}})
      for (int64_t N : {int64_t{5}, int64_t{16}, int64_t{53}})
        for (int64_t T : {int64_t{1}, int64_t{2}, int64_t{3}, int64_t{7}, int64_t{13}}) {
          TestMat m(WFormat::I8P16, N, K, 31 + K + N);
          if (K == 100) {  // weights of -128 (GGUF Q8_0 may hold them) in the first panel's first block
            int8_t* q = reinterpret_cast<int8_t*>(m.bytes.data());
            for (int i = 0; i < 64; i += 3) q[i] = -128;
          }
          std::vector<float> x = random_floats(T * K, 17 + T, 4.0f);
          if (K >= 32) x[0] = 4.0f, x[1] = -4.0f;  // the block's max and min: q = 127 and -127
          QActs xq;
          xq.quantize(x.data(), T, K);
          std::vector<float> ref(T * N, -1.0f), out(T * N, -2.0f);
          matmul_panels_portable(m.w, xq, 0, N, ref.data(), N);
          ks->matmul_int8(m.w, xq, 0, N, out.data(), N);
          if (std::memcmp(ref.data(), out.data(), ref.size() * 4) != 0) {
            CHECK(ref == out);
            std::fprintf(stderr, "  isa %s K=%lld N=%lld T=%lld\n", ks->isa, (long long)K, (long long)N, (long long)T);
            return;
          }
          // A range that starts and ends inside panels writes its rows and no others.
          const int64_t r0 = std::min<int64_t>(3, N - 1), r1 = std::max(r0 + 1, N - 2);
          std::vector<float> part(T * N, -7.0f);
          ks->matmul_int8(m.w, xq, r0, r1, part.data(), N);
          for (int64_t t = 0; t < T; ++t)
            for (int64_t n = 0; n < N; ++n) {
              const float want = n >= r0 && n < r1 ? ref[t * N + n] : -7.0f;
              if (std::memcmp(&part[t * N + n], &want, 4) != 0) {
                CHECK_EQ(part[t * N + n], want);
                std::fprintf(stderr, "  isa %s rows [%lld, %lld) of %lld: row %lld\n", ks->isa, (long long)r0, (long long)r1, (long long)N, (long long)n);
                return;
              }
            }
        }
}

// A 4-bit panel matrix of random values, scales and (with mins) mins.
static std::vector<uint8_t> q4_panels(int64_t N, int64_t K, bool mins, uint32_t seed) {
  const int64_t nb = K / 32, bb = q4_panel_block_bytes(mins);
  std::vector<uint8_t> panels(static_cast<size_t>(panels_of(N) * nb * bb));
  const std::vector<float> u = random_floats(N * K + 2 * N * nb, seed, 1.0f);
  std::vector<uint8_t> q(static_cast<size_t>(kPanelRows * K));
  std::vector<float> d(static_cast<size_t>(kPanelRows * nb)), m(d.size());
  for (int64_t p = 0; p < panels_of(N); ++p) {
    const int64_t n = std::min(kPanelRows, N - p * kPanelRows);
    for (int64_t i = 0; i < n * K; ++i) q[i] = static_cast<uint8_t>(std::min(15.0f, std::fabs(u[p * kPanelRows * K + i]) * 16.0f));
    for (int64_t i = 0; i < n * nb; ++i) {
      d[i] = 0.05f * u[N * K + p * kPanelRows * nb + i];
      m[i] = 0.4f * u[N * K + N * nb + p * kPanelRows * nb + i];
    }
    if (p == 0) q[0] = 15, q[1] = 0;  // the extremes
    pack_q4_panel(q.data(), d.data(), m.data(), n, K, mins, panels.data() + p * nb * bb);
  }
  return panels;
}

TEST("kernels.q4_panels_match_the_portable_chain_bit_for_bit") {
  // Exact integer dots (Q4_0's offset of 8 folded in exactly), then a fixed
  // fp32 chain per block: every set gives the portable reference's bits, and
  // the reference is the dequantized weights' dot with the int8 activations.
  for (const bool mins : {true, false})
    for (const KernelSet* ks : all_sets())
      for (int64_t K : {int64_t{32}, int64_t{96}, int64_t{576}, int64_t{2048}})
        for (int64_t N : {int64_t{5}, int64_t{16}, int64_t{53}})
          for (int64_t T : {int64_t{1}, int64_t{2}, int64_t{3}, int64_t{5}, int64_t{13}}) {
            const std::vector<uint8_t> panels = q4_panels(N, K, mins, static_cast<uint32_t>(7 + K + N));
            const WMat w{mins ? WFormat::Q4P16 : WFormat::Q4SP16, N, K, panels.data(), nullptr};
            std::vector<float> x = random_floats(T * K, 23 + T, 4.0f);
            x[0] = 4.0f, x[1] = -4.0f;  // the block's max and min: q = 127 and -127
            QActs xq;
            xq.quantize(x.data(), T, K);
            std::vector<float> ref(T * N, -1.0f), out(T * N, -2.0f);
            matmul_q4_panels_portable(w, xq, 0, N, ref.data(), N);
            ks->matmul_int8(w, xq, 0, N, out.data(), N);
            if (std::memcmp(ref.data(), out.data(), ref.size() * 4) != 0) {
              CHECK(ref == out);
              std::fprintf(stderr, "  isa %s mins %d K=%lld N=%lld T=%lld\n", ks->isa, mins, (long long)K, (long long)N, (long long)T);
              return;
            }
            if (ks != all_sets().front()) continue;
            // The chain against double sums of dequantized weights times dequantized activations.
            std::vector<float> row(K);
            for (int64_t n = 0; n < N; ++n) {
              dequantize_row(w, n, row.data());
              for (int64_t t = 0; t < T; ++t) {
                double want = 0, mag = 0;
                for (int64_t k = 0; k < K; ++k) {
                  const double a = static_cast<double>(xq.q[t * xq.kpad + k]) * xq.d[t * (xq.kpad / 32) + k / 32];
                  want += static_cast<double>(row[k]) * a;
                  mag += std::fabs(static_cast<double>(row[k]) * a);
                }
                if (std::fabs(ref[t * N + n] - want) > 1e-5 * mag + 1e-6) {
                  CHECK_NEAR(ref[t * N + n], want, 1e-5 * mag + 1e-6);
                  std::fprintf(stderr, "  mins %d K=%lld N=%lld T=%lld row %lld token %lld\n", mins, (long long)K, (long long)N, (long long)T,
                               (long long)n, (long long)t);
                  return;
                }
              }
            }
            // A range that starts and ends inside panels writes its rows and no others.
            const int64_t r0 = std::min<int64_t>(3, N - 1), r1 = std::max(r0 + 1, N - 2);
            std::vector<float> part(T * N, -7.0f);
            ks->matmul_int8(w, xq, r0, r1, part.data(), N);
            for (int64_t t = 0; t < T; ++t)
              for (int64_t n = 0; n < N; ++n) {
                const float want = n >= r0 && n < r1 ? ref[t * N + n] : -7.0f;
                if (std::memcmp(&part[t * N + n], &want, 4) != 0) {
                  CHECK_EQ(part[t * N + n], want);
                  return;
                }
              }
          }
}

TEST("kernels.f32_panels_match_the_portable_chain_bit_for_bit") {
  // One fma chain over k per output in every set: the portable reference's bits,
  // for rows not a whole panel, every token-tile remainder, and a range that
  // starts and ends inside panels (its rows written, no others).
  for (const KernelSet* ks : all_sets())
    for (int64_t K : {int64_t{1}, int64_t{17}, int64_t{576}})
      for (int64_t N : {int64_t{5}, int64_t{16}, int64_t{53}, int64_t{150}})
        for (int64_t T : {int64_t{1}, int64_t{2}, int64_t{3}, int64_t{7}, int64_t{13}}) {
          const TestMat m(WFormat::F32P16, N, K, 41 + K + N);
          const std::vector<float> x = random_floats(T * K, 19 + T);
          std::vector<float> ref(T * N, -1.0f), out(T * N, -2.0f), part(T * N, -7.0f);
          matmul_f32_panels_portable(m.w, x.data(), T, 0, N, ref.data(), N);
          ks->matmul_float(m.w, x.data(), T, 0, N, out.data(), N);
          const int64_t r0 = std::min<int64_t>(3, N - 1), r1 = std::max(r0 + 1, N - 2);
          ks->matmul_float(m.w, x.data(), T, r0, r1, part.data(), N);
          bool ok = std::memcmp(ref.data(), out.data(), ref.size() * 4) == 0;
          for (int64_t t = 0; t < T; ++t)
            for (int64_t n = 0; n < N; ++n) {
              const float want = n >= r0 && n < r1 ? ref[t * N + n] : -7.0f;
              ok &= std::memcmp(&part[t * N + n], &want, 4) == 0;
            }
          if (!ok) {
            CHECK(ok);
            std::fprintf(stderr, "  isa %s K=%lld N=%lld T=%lld\n", ks->isa, (long long)K, (long long)N, (long long)T);
            return;
          }
        }
}

TEST("kernels.dot_and_axpy_match_reference") {
  for (const KernelSet* ks : all_sets())
    for (int64_t n : {1, 7, 16, 33, 64, 128}) {
      const std::vector<float> a = random_floats(n, 1), b = random_floats(n, 2);
      double ref = 0, mag = 0;
      for (int64_t i = 0; i < n; ++i) ref += double(a[i]) * b[i], mag += std::fabs(double(a[i]) * b[i]);
      CHECK_NEAR(ks->dot(a.data(), b.data(), n), ref, 1e-6 * n * mag);
      std::vector<float> y = b;
      ks->axpy(y.data(), 0.75f, a.data(), n);
      for (int64_t i = 0; i < n; ++i) CHECK_NEAR(y[i], b[i] + 0.75 * a[i], 1e-6);
    }
}

TEST("kernels.attention_rows_match_reference") {
  for (const KernelSet* ks : all_sets())
    for (int64_t d : {8, 64, 72, 130})
      for (int64_t m : {1, 3, 5})
        for (int64_t n : {1, 5, 16}) {
          const std::vector<float> v = random_floats(n * d, 2), p = random_floats(m * n, 3);
          std::vector<float> out = random_floats(m * d, 4), start = out;
          ks->axpy_rows(out.data(), p.data(), n, m, v.data(), n, d);
          // bit-identical to one axpy per head and row, as every attention path must be
          std::vector<float> one = start;
          for (int64_t h = 0; h < m; ++h)
            for (int64_t j = 0; j < n; ++j) ks->axpy(one.data() + h * d, p[h * n + j], v.data() + j * d, d);
          CHECK(one == out);
          for (int64_t h = 0; h < m; ++h)
            for (int64_t i = 0; i < d; ++i) {
              double ref = start[h * d + i];
              for (int64_t j = 0; j < n; ++j) ref += double(p[h * n + j]) * v[j * d + i];
              CHECK_NEAR(out[h * d + i], ref, 1e-5 * n);
            }
        }
}

TEST("kernels.widen_f16_is_exact") {
  std::vector<uint16_t> h(37);
  for (size_t i = 0; i < h.size(); ++i) {
    h[i] = static_cast<uint16_t>(i * 1777 + 1);  // normals, subnormals, both signs
    if ((h[i] & 0x7c00) == 0x7c00) h[i] &= 0xbfff;  // no NaN: its payload's bits are not the point
  }
  h[3] = 0x7c00;  // +inf
  h[4] = 0x8000;  // -0
  for (const KernelSet* ks : all_sets())
    for (int64_t n : {1, 8, 16, 37}) {
      std::vector<float> f(n, -1.0f);
      ks->widen_f16(h.data(), f.data(), n);
      bool same = true;
      for (int64_t i = 0; i < n; ++i) {
        const float want = fp16_to_f32(h[i]);
        same &= std::memcmp(&f[i], &want, 4) == 0;
      }
      CHECK(same);
    }
}

TEST("kernels.narrow_f16_rounds_saturates_and_keeps_nan_as_portable") {
  std::vector<float> f = random_floats(37, 23, 70000.0f);  // some beyond fp16's range
  f[0] = 1e-6f;          // subnormal in fp16
  f[1] = -65520.0f;      // rounds to -inf unsaturated
  f[2] = std::numeric_limits<float>::quiet_NaN();
  f[3] = 0.1f;           // inexact: round to nearest even
  for (const KernelSet* ks : all_sets())
    for (int64_t n : {1, 8, 16, 37}) {
      std::vector<uint16_t> want(n), got(n, 0xdead);
      kernels_portable().narrow_f16(f.data(), want.data(), n);
      ks->narrow_f16(f.data(), got.data(), n);
      for (int64_t i = 0; i < n; ++i) {
        if (i == 2) CHECK(std::isnan(fp16_to_f32(got[i])));
        else CHECK_EQ(got[i], want[i]);
        if (i != 2) CHECK(std::isfinite(fp16_to_f32(got[i])));
      }
    }
  CHECK_EQ(fp16_to_f32([&] { uint16_t h; kernels_portable().narrow_f16(&f[1], &h, 1); return h; }()), -65504.0f);
}

TEST("kernels.exp_and_silu_match_reference") {
  for (const KernelSet* ks : all_sets())
    for (int64_t n : {1, 15, 16, 33}) {
      std::vector<float> x = random_floats(n, 5, 30.0f), g = random_floats(n, 6, 12.0f);
      const std::vector<float> u = random_floats(n, 7), x0 = x, g0 = g;
      x[0] = -200.0f;  // far below the max: exp underflows to 0
      const float sum = ks->exp_shift_sum(x.data(), n, 20.0f);
      double ref_sum = 0;
      for (int64_t i = 0; i < n; ++i) {
        const float arg = (i == 0 ? -200.0f : x0[i]) - 20.0f;  // the argument as fp32 forms it
        const double e = std::exp(double(arg));
        ref_sum += e;
        CHECK_NEAR(x[i], e, 4e-7 * e + 1e-37);  // ~2 ulp; below fp32's normal range, 0 will do
      }
      CHECK_NEAR(sum, ref_sum, 1e-6 * ref_sum + 1e-37);
      ks->silu_mul(g.data(), u.data(), n);
      for (int64_t i = 0; i < n; ++i) {
        const double ref = g0[i] / (1 + std::exp(-double(g0[i]))) * u[i];
        CHECK_NEAR(g[i], ref, 1e-6 * std::fabs(ref) + 1e-30);
      }
    }
}

TEST("kernels.activation_quantization_round_trip") {
  const int64_t K = 100, T = 3;
  const std::vector<float> x = random_floats(T * K, 4, 3.0f);
  QActs q;
  q.quantize(x.data(), T, K);
  CHECK_EQ(q.kpad, 128);
  for (int64_t t = 0; t < T; ++t) {
    for (int64_t k = 0; k < K; ++k) {
      const float d = q.d[t * 4 + k / 32];
      // Half a step, plus what rounding the scale to fp16 moves a value of up to 127 steps.
      CHECK(std::fabs(d * q.q[t * 128 + k] - x[t * K + k]) <= d * (0.5f + 127.0f * 0x1p-11f) + 1e-6f);
      CHECK(q.q[t * 128 + k] >= -127);
    }
    for (int64_t k = K; k < 128; ++k) CHECK_EQ(static_cast<int>(q.q[t * 128 + k]), 0);
  }
  // Every instruction set's quantizer gives the portable bits (including the
  // halfway cases: x = max/2 lands on 63.5).
  std::vector<float> y = x;
  for (int i = 0; i < 32; ++i) y[i] = std::min(std::max(y[i], -2.0f), 2.0f);
  y[5] = 2.0f, y[6] = 1.0f, y[7] = -1.0f;  // block 0: max 2, so 1 and -1 are exactly halfway
  for (const KernelSet* ks : all_sets())
    for (int64_t cols : {1, 16, 17, 32, 100}) {
      std::vector<int8_t> qa(128, 9), qb(128, 9);
      std::vector<float> da(4, -1), db(4, -1);
      kernels_portable().quantize_row(y.data(), cols, qa.data(), da.data());
      ks->quantize_row(y.data(), cols, qb.data(), db.data());
      const int64_t kp = (cols + 31) / 32 * 32;
      CHECK(std::memcmp(qa.data(), qb.data(), kp) == 0);
      CHECK(std::memcmp(da.data(), db.data(), kp / 32 * 4) == 0);
    }
}

TEST("kernels.weight_quantization_keeps_q_in_range_and_scales_finite") {
  // Blocks whose scale is an fp16 subnormal (rounded by up to half), below
  // fp16 (scale 0), and beyond it (saturated): q stays in [-127, 127] with the
  // block's sign, and nothing dequantizes to inf or NaN.
  for (float amax : {1e-3f, 9e-4f, 3e-5f, 1e-5f, 6e-6f, 1e-7f, 1.0f, 9e6f, 3e38f}) {
    std::vector<float> x(32);
    for (int i = 0; i < 32; ++i) x[i] = amax * (i % 2 ? -1.0f : 1.0f) * (1.0f - 0.03f * static_cast<float>(i) / 2.0f);
    int8_t q[32];
    float d;
    quantize_rows_i8(x.data(), 1, 32, q, &d);
    CHECK(std::isfinite(d) && d >= 0.0f);
    for (int i = 0; i < 32; ++i) {
      CHECK(q[i] >= -127 && q[i] <= 127);
      if (q[i] != 0) CHECK((q[i] > 0) == (x[i] > 0));
      CHECK(std::isfinite(d * q[i]));
    }
    CHECK_EQ(static_cast<int>(q[0]), 127);  // the block's max
  }
}

TEST("kernels.thread_pool_covers_every_item_once") {
  for (int threads : {1, 2, 3}) {
    ThreadPool pool(threads);
    CHECK_EQ(pool.size(), threads);
    for (int64_t grain : {0, 1, 7}) {
      for (int64_t n : {1, 2, 5, 1000}) {
        std::vector<std::atomic<int>> hits(n);
        for (int rep = 0; rep < 50; ++rep)
          pool.parallel_for(n, [&](int64_t b, int64_t e) {
            for (int64_t i = b; i < e; ++i) hits[i].fetch_add(1);
          }, grain);
        bool ok = true;
        for (auto& h : hits) ok &= h.load() == 50;
        CHECK(ok);
      }
    }
    bool caught = false;
    try {
      pool.parallel_for(100, [&](int64_t b, int64_t) { if (b > 0) throw std::runtime_error("boom"); }, 10);
    } catch (const std::runtime_error&) {
      caught = true;
    }
    CHECK(caught || threads == 1);  // one thread runs [0, 100) as a single call, whose begin is 0
    pool.parallel_for(4, [](int64_t, int64_t) {});  // still usable
  }
  CHECK(physical_cores() >= 1);
}
