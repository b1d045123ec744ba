// A background thread that reads a TelemetrySnapshot every period_ms and keeps
// the last `capacity` of them. It sleeps on a condition variable between
// samples, so stop() (and the destructor) returns at once.
#pragma once
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "core/telemetry/telemetry.h"

namespace neoserve::telemetry {

struct SamplerOptions {
  uint32_t period_ms = 1000;  // 0 is treated as 1
  size_t capacity = 60;       // samples kept; 0 is treated as 1
  // Called on the sampler thread after each sample is stored (outside the lock).
  std::function<void(const TelemetrySnapshot&)> on_sample;
  // Asked before each sample for ProcessTelemetry::engine_bytes (optional).
  std::function<uint64_t()> engine_bytes;
};

class TelemetrySampler {
 public:
  using ReadFn = std::function<TelemetrySnapshot()>;

  // Samples `nvml` (may be null or unavailable: snapshots then carry the
  // reason and process telemetry only). `nvml` must outlive the sampler.
  // The first sample is taken at once, then one every period_ms.
  TelemetrySampler(NvmlLibrary* nvml, SamplerOptions options);
  // Samples with a custom reader (tests, or other sources).
  TelemetrySampler(ReadFn read, SamplerOptions options);
  ~TelemetrySampler();  // stop() + join
  TelemetrySampler(const TelemetrySampler&) = delete;
  TelemetrySampler& operator=(const TelemetrySampler&) = delete;

  // Stops and joins the thread; idempotent. Samples stay readable.
  void stop();
  bool running() const;

  std::optional<TelemetrySnapshot> latest() const;
  std::vector<TelemetrySnapshot> recent() const;  // oldest first, at most capacity
  uint64_t samples_taken() const;                 // total since start (not capped)
  uint32_t period_ms() const { return period_ms_; }

 private:
  void start(ReadFn read, SamplerOptions options);
  void run();

  ReadFn read_;
  std::function<void(const TelemetrySnapshot&)> on_sample_;
  uint32_t period_ms_ = 1000;
  size_t capacity_ = 60;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::deque<TelemetrySnapshot> ring_;
  uint64_t taken_ = 0;
  std::thread thread_;
};

}  // namespace neoserve::telemetry
