// Micro-benchmark of the int8 matmul on 1B-class shapes (Llama-3.2-1B: hidden
// 2048, FFN 8192): the row layout (I8: on an AVX-512 CPU, the AVX2 row kernel
// runs it) against the panel layout (I8P16) of the same weights, through
// matmul() on the provider's thread pool, at the token
// counts of decode (1), batched decode (4..64) and prefill (256). Reports
// GMAC/s, and for one token the weight bytes read per second. Built on request:
//   cmake -S . -B build-bench -G Ninja -DNEOSERVE_BENCH=ON && cmake --build build-bench --target bench_matmul
//   build-bench/bench_matmul [threads=2]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <vector>

#include "providers/cpu/kernels/matmul.h"
#include "providers/cpu/thread_pool.h"

using namespace neoserve::cpu;
using Clock = std::chrono::steady_clock;

struct Matrix {
  WMat w;
  std::vector<int8_t> q;
  std::vector<float> d;
};

static Matrix make_i8(int64_t n, int64_t k) {
  Matrix m;
  m.w = WMat{WFormat::I8, n, k, nullptr, nullptr};
  std::vector<float> v(static_cast<size_t>(n * k));
  std::mt19937 rng(1);
  std::normal_distribution<float> g(0.0f, 0.02f);
  for (float& x : v) x = g(rng);
  m.q.resize(static_cast<size_t>(n * m.w.kpad()));
  m.d.resize(static_cast<size_t>(n * m.w.kpad() / kQuantBlock));
  quantize_rows_i8(v.data(), n, k, m.q.data(), m.d.data());
  m.w.data = reinterpret_cast<const uint8_t*>(m.q.data());
  m.w.scales = m.d.data();
  return m;
}

static Matrix to_panels(const Matrix& i8) {
  Matrix m;
  const int64_t panels = panels_of(i8.w.rows);
  m.q.resize(static_cast<size_t>(panels * i8.w.kpad() / kQuantBlock * kPanelBlockBytes));
  pack_panels(i8.w, 0, panels, reinterpret_cast<uint8_t*>(m.q.data()));
  m.w = WMat{WFormat::I8P16, i8.w.rows, i8.w.cols, reinterpret_cast<const uint8_t*>(m.q.data()), nullptr};
  return m;
}

// Seconds per matmul: the best of `reps` after one untimed run (the machine is shared).
static double time_matmul(ThreadPool& pool, const KernelSet& ks, const WMat& w, const QActs& xq, std::vector<float>& out, int reps) {
  MatmulJob job{&w, out.data()};
  matmul(pool, ks, nullptr, &xq, xq.tokens, &job, 1);
  double best = 1e9;
  for (int i = 0; i < reps; ++i) {
    const auto t0 = Clock::now();
    matmul(pool, ks, nullptr, &xq, xq.tokens, &job, 1);
    best = std::min(best, std::chrono::duration<double>(Clock::now() - t0).count());
  }
  return best;
}

int main(int argc, char** argv) {
  const int threads = argc > 1 ? std::atoi(argv[1]) : 2;
  ThreadPool pool(threads);
  const KernelSet& ks = best_kernels();
  std::printf("kernels %s, %d threads\n", ks.isa, threads);
  std::printf("%-16s %6s %12s %12s %8s %14s %14s\n", "shape NxK", "tokens", "I8 GMAC/s", "I8P16 GMAC/s", "ratio", "I8 GB/s", "I8P16 GB/s");
  for (auto [n, k] : {std::pair<int64_t, int64_t>{8192, 2048}, {2048, 8192}, {2048, 2048}}) {
    const Matrix rows = make_i8(n, k), panels = to_panels(rows);
    for (int64_t T : {1, 4, 16, 64, 256}) {
      std::vector<float> x(static_cast<size_t>(T * k));
      std::mt19937 rng(2);
      std::normal_distribution<float> g(0.0f, 1.0f);
      for (float& v : x) v = g(rng);
      QActs xq;
      xq.quantize(x.data(), T, k);
      std::vector<float> out(static_cast<size_t>(T * n));
      const int reps = T >= 64 ? 5 : 20;
      const double a = time_matmul(pool, ks, rows.w, xq, out, reps), b = time_matmul(pool, ks, panels.w, xq, out, reps);
      // Bytes of the weights each layout reads: values, and fp32 (rows) or fp16 (panels) block scales.
      const double macs = static_cast<double>(n) * k * T, bytes = static_cast<double>(n) * (k + k / 32 * 4), pbytes = static_cast<double>(n) * (k + k / 32 * 2);
      std::printf("%6lldx%-9lld %6lld %12.1f %12.1f %8.2f %14.1f %14.1f\n", (long long)n, (long long)k, (long long)T, macs / a * 1e-9,
                  macs / b * 1e-9, a / b, bytes / a * 1e-9, pbytes / b * 1e-9);
    }
  }
  return 0;
}
