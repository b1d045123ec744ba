// The machine's read bandwidth, the roofline of single-stream decode: each of
// `threads` threads sums its share of a buffer far larger than the caches,
// with 256-bit loads; best of several passes. Prints one JSON line.
//   build-bench/bench_bandwidth [threads=2] [MiB=1024]
#include <immintrin.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>

__attribute__((target("avx2"))) static uint64_t sum_range(const uint8_t* p, size_t n) {
  __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
  for (size_t i = 0; i + 128 <= n; i += 128) {
    a0 = _mm256_add_epi64(a0, _mm256_load_si256(reinterpret_cast<const __m256i*>(p + i)));
    a1 = _mm256_add_epi64(a1, _mm256_load_si256(reinterpret_cast<const __m256i*>(p + i + 32)));
    a2 = _mm256_add_epi64(a2, _mm256_load_si256(reinterpret_cast<const __m256i*>(p + i + 64)));
    a3 = _mm256_add_epi64(a3, _mm256_load_si256(reinterpret_cast<const __m256i*>(p + i + 96)));
  }
  alignas(32) uint64_t lanes[4];
  _mm256_store_si256(reinterpret_cast<__m256i*>(lanes), _mm256_add_epi64(_mm256_add_epi64(a0, a1), _mm256_add_epi64(a2, a3)));
  return lanes[0] + lanes[1] + lanes[2] + lanes[3];
}

int main(int argc, char** argv) {
  const int threads = argc > 1 ? std::atoi(argv[1]) : 2;
  const size_t bytes = (argc > 2 ? std::strtoull(argv[2], nullptr, 10) : 1024) << 20;
  if (!__builtin_cpu_supports("avx2") || threads < 1) return 2;
  auto* buf = static_cast<uint8_t*>(std::aligned_alloc(4096, bytes));
  if (!buf) return 3;
  std::memset(buf, 1, bytes);  // touch every page first
  double best = 0;
  uint64_t check = 0;
  for (int pass = 0; pass < 5; ++pass) {
    std::vector<std::thread> pool;
    std::vector<uint64_t> sums(threads);
    const size_t share = bytes / threads / 128 * 128;
    const auto t0 = std::chrono::steady_clock::now();
    for (int t = 0; t < threads; ++t) pool.emplace_back([&, t] { sums[t] = sum_range(buf + t * share, share); });
    for (auto& th : pool) th.join();
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    best = std::max(best, static_cast<double>(share) * threads / s);
    for (uint64_t v : sums) check += v;
  }
  std::printf("{\"threads\":%d,\"bytes\":%zu,\"readGBs\":%.2f,\"check\":%llu}\n", threads, bytes, best * 1e-9,
              static_cast<unsigned long long>(check & 0xff));
  std::free(buf);
  return 0;
}
