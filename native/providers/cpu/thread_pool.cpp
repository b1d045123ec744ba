#include "thread_pool.h"

#include "core/thread_name.h"

#include <algorithm>
#include <chrono>
#include <fstream>
#include <set>
#include <string>
#include <utility>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define NS_CPU_RELAX() _mm_pause()
#else
#define NS_CPU_RELAX() std::this_thread::yield()
#endif

namespace neoserve::cpu {

int physical_cores() {
  // Count distinct (physical id, core id) pairs so SMT siblings share a core,
  // as llama.cpp does; fall back to the logical count.
  std::ifstream in("/proc/cpuinfo");
  std::set<std::pair<int, int>> cores;
  std::string line;
  int physical = 0;
  while (std::getline(in, line)) {
    auto value = [&]() { return std::atoi(line.substr(line.find(':') + 1).c_str()); };
    if (line.rfind("physical id", 0) == 0) physical = value();
    if (line.rfind("core id", 0) == 0) cores.insert({physical, value()});
  }
  const int logical = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  if (cores.empty()) return logical;
  return std::max(1, std::min(logical, static_cast<int>(cores.size())));
}

ThreadPool::ThreadPool(int threads) : nthreads_(threads > 0 ? threads : physical_cores()) {
  workers_.reserve(nthreads_ - 1);
  for (int i = 1; i < nthreads_; ++i) workers_.emplace_back([this, i] { worker_main(i); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard lock(mutex_);
    stop_.store(true);
    generation_.fetch_add(1);
  }
  wake_.notify_all();
  for (auto& t : workers_) t.join();
}

void ThreadPool::take_chunks() {
  try {
    for (;;) {
      const int64_t b = next_.fetch_add(grain_, std::memory_order_relaxed);
      if (b >= n_) break;
      call_(ctx_, b, std::min(n_, b + grain_));
    }
  } catch (...) {
    std::lock_guard lock(error_mutex_);
    if (!error_) error_ = std::current_exception();
  }
}

void ThreadPool::run(int64_t n, int64_t grain, Call call, void* ctx) {
  if (grain <= 0) grain = (n + nthreads_ - 1) / nthreads_;
  if (nthreads_ == 1 || n <= grain) {
    call(ctx, 0, n);  // one chunk: not worth a wake-up
    return;
  }
  call_ = call;
  ctx_ = ctx;
  n_ = n;
  grain_ = grain;
  next_.store(0, std::memory_order_relaxed);
  const uint64_t gen = generation_.load(std::memory_order_relaxed) + 1;
  open_.store(gen);         // seq_cst: publishes the job fields above
  generation_.store(gen);   // seq_cst: ordered before the sleepers_ load (Dekker with the worker)
  if (sleepers_.load() > 0) {
    std::lock_guard lock(mutex_);  // pairs with the predicate check in worker_main
    wake_.notify_all();
  }
  take_chunks();
  // Every chunk is handed out. Close the job, then wait only for workers that
  // joined it (they are running chunks now, so this is short).
  open_.store(0);
  for (int spins = 0; active_.load() != 0; ++spins) {
    if (spins < 4096) NS_CPU_RELAX(); else std::this_thread::yield();
  }
  if (error_) {
    std::exception_ptr e;
    std::swap(e, error_);
    std::rethrow_exception(e);
  }
}

void ThreadPool::worker_main(int index) {
  name_this_thread(("ns-cpu-" + std::to_string(index)).c_str());
  uint64_t seen = 0;
  for (;;) {
    // Spin a little (steps issue many short jobs back to back), then sleep.
    const auto spin_until = std::chrono::steady_clock::now() + std::chrono::microseconds(200);
    uint64_t gen;
    for (int i = 0;; ++i) {
      gen = generation_.load(std::memory_order_acquire);
      if (gen != seen) break;
      NS_CPU_RELAX();
      if ((i & 255) == 255 && std::chrono::steady_clock::now() > spin_until) {
        std::unique_lock lock(mutex_);
        sleepers_.fetch_add(1);
        wake_.wait(lock, [&] { return generation_.load() != seen; });
        sleepers_.fetch_sub(1);
        gen = generation_.load();
        break;
      }
    }
    seen = gen;
    if (stop_.load()) return;
    // Join only while the job is still open; seq_cst on both sides means the
    // caller either sees us in active_ or we see the job closed.
    active_.fetch_add(1);
    if (open_.load() == gen) take_chunks();
    active_.fetch_sub(1);
  }
}

}  // namespace neoserve::cpu
