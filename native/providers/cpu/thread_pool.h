// A persistent pool of worker threads for the CPU provider's kernels.
// Threads are created once; each parallel_for wakes them (a short spin, then a
// condition variable) and the calling thread takes a share of the work too, so
// a pool of N threads runs on N cores with no thread created per operation.
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <mutex>
#include <thread>
#include <type_traits>
#include <vector>

namespace neoserve::cpu {

// Physical cores of this machine (SMT siblings counted once), at least 1.
int physical_cores();

class ThreadPool {
 public:
  explicit ThreadPool(int threads = 0);  // 0 = physical_cores()
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return nthreads_; }

  // Calls fn(begin, end) over [0, n) in chunks of `grain` items (0: n split
  // evenly over the threads). Threads, the caller first among them, take
  // chunks until none are left, so a worker that the OS has not scheduled
  // yet holds nobody up: the caller takes its chunks. Which thread runs an
  // item never changes what it computes, so results do not depend on the
  // split. Returns when every item is done; rethrows the first exception.
  template <class F>
  void parallel_for(int64_t n, F&& fn, int64_t grain = 0) {
    if (n <= 0) return;
    using Fn = std::remove_reference_t<F>;
    auto call = [](void* ctx, int64_t b, int64_t e) { (*static_cast<Fn*>(ctx))(b, e); };
    run(n, grain, call, const_cast<void*>(static_cast<const void*>(&fn)));
  }

 private:
  using Call = void (*)(void*, int64_t, int64_t);
  void run(int64_t n, int64_t grain, Call call, void* ctx);
  void take_chunks();  // runs chunks of the current job until none are left
  void worker_main(int index);

  int nthreads_;
  std::vector<std::thread> workers_;

  // The current job: written by the caller, then published by storing its
  // generation in open_; open_ = 0 once every chunk has been handed out.
  Call call_ = nullptr;
  void* ctx_ = nullptr;
  int64_t n_ = 0;
  int64_t grain_ = 0;
  std::atomic<int64_t> next_{0};       // start of the next chunk to hand out
  std::atomic<uint64_t> open_{0};      // generation of the job workers may join, or 0
  std::atomic<int> active_{0};         // workers inside the current job
  std::atomic<uint64_t> generation_{0};
  std::atomic<bool> stop_{false};
  std::atomic<int> sleepers_{0};
  std::mutex mutex_;
  std::condition_variable wake_;
  std::mutex error_mutex_;
  std::exception_ptr error_;
};

}  // namespace neoserve::cpu
