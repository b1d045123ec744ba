// Micro-benchmark of the CPU provider on a SmolLM2-135M-shaped random model
// (hidden 576, 30 layers, 9 heads, 3 KV heads, ffn 1536, vocab 50257, tied):
// single-token decode steps and one 512-token prefill. Built on request (the
// .cc suffix keeps it out of the library glob):
//   cmake -S . -B build-bench -G Ninja -DNEOSERVE_BENCH=ON && cmake --build build-bench --target bench_cpu
//   build-bench/bench_cpu [threads=2] [decode_steps=64]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <vector>

#include "providers/cpu/cpu_provider.h"
#include "random_model.h"

using namespace neoserve;
using Clock = std::chrono::steady_clock;

static double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// CPU seconds used by the process: on a shared machine, with one thread, a
// steadier measure than wall time (it does not count time spent preempted).
static double cpu_seconds() {
  timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void bench(const char* label, std::shared_ptr<ModelWeights> model, const char* precision, int threads, int steps) {
  cpu::CpuProviderOptions opt;
  opt.threads = threads;
  opt.precision = precision;
  opt.kv_memory_bytes = size_t{256} << 20;
  cpu::CpuProvider p(model, opt);
  const int bs = p.kv().block_size;
  std::vector<int32_t> table(1024 / bs);
  for (size_t i = 0; i < table.size(); ++i) table[i] = static_cast<int32_t>(i);
  std::vector<int32_t> prompt(512);
  for (int i = 0; i < 512; ++i) prompt[i] = (i * 7919) % model->config.vocab_size;
  LogitsOut out;

  // Prefill: best of 2 (the machine is shared).
  double prefill = 1e9, prefill_cpu = 1e9;
  for (int rep = 0; rep < 2; ++rep) {
    SeqStep s{1, prompt, 0, table, true};
    const auto t0 = Clock::now();
    const double c0 = cpu_seconds();
    p.step(std::span<const SeqStep>(&s, 1), out);
    prefill = std::min(prefill, seconds_since(t0));
    prefill_cpu = std::min(prefill_cpu, cpu_seconds() - c0);
  }
  // Decode after a 16-token prompt (short context, as a tok/s benchmark's first tokens).
  std::vector<int32_t> tok(1, 1);
  {
    SeqStep s{1, std::span<const int32_t>(prompt.data(), 16), 0, table, true};
    p.step(std::span<const SeqStep>(&s, 1), out);
  }
  std::vector<double> times, cpu;
  for (int i = 0; i < steps; ++i) {
    tok[0] = (i * 31) % model->config.vocab_size;
    SeqStep s{1, tok, 16 + i, table, true};
    const auto t0 = Clock::now();
    const double c0 = cpu_seconds();
    p.step(std::span<const SeqStep>(&s, 1), out);
    times.push_back(seconds_since(t0));
    cpu.push_back(cpu_seconds() - c0);
  }
  std::sort(cpu.begin(), cpu.end());
  std::sort(times.begin(), times.end());
  const double median = times[times.size() / 2];
  std::printf("%-5s %-5s %-30s prefill512 %6.1f tok/s (%.3f s wall, %.3f s cpu)  decode %6.1f tok/s "
              "(median %.2f ms, best %.2f ms wall; median %.2f ms cpu)\n",
              label, p.info().precision.c_str(), p.info().device.c_str(), 512 / prefill, prefill, prefill_cpu,
              1.0 / median, median * 1e3, times.front() * 1e3, cpu[cpu.size() / 2] * 1e3);
}

int main(int argc, char** argv) {
  const int threads = argc > 1 ? std::atoi(argv[1]) : 2;
  const int steps = argc > 2 ? std::atoi(argv[2]) : 64;
  test::RandomModelSpec spec;
  spec.hidden = 576;
  spec.ffn = 1536;
  spec.layers = 30;
  spec.heads = 9;
  spec.kv_heads = 3;
  spec.vocab = 50257;
  spec.tied = true;
  spec.max_pos = 8192;
  spec.dtype = DType::F32;
  auto f32 = test::make_random_model(spec);
  bench("f32", f32, "auto", threads, steps);
  bench("int8", f32, "int8", threads, steps);
  f32.reset();
  spec.dtype = DType::Q8_0;
  bench("q8_0", test::make_random_model(spec), "auto", threads, steps);
  return 0;
}
