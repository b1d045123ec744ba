#include "core/telemetry/sampler.h"

#include "core/thread_name.h"

#include <chrono>
#include <utility>

namespace neoserve::telemetry {

TelemetrySampler::TelemetrySampler(NvmlLibrary* nvml, SamplerOptions options) {
  std::function<uint64_t()> engine = options.engine_bytes;
  start([nvml, engine]() { return read_snapshot(nvml, engine ? engine() : 0); }, std::move(options));
}

TelemetrySampler::TelemetrySampler(ReadFn read, SamplerOptions options) { start(std::move(read), std::move(options)); }

void TelemetrySampler::start(ReadFn read, SamplerOptions options) {
  read_ = std::move(read);
  on_sample_ = std::move(options.on_sample);
  period_ms_ = options.period_ms == 0 ? 1 : options.period_ms;
  capacity_ = options.capacity == 0 ? 1 : options.capacity;
  thread_ = std::thread([this] {
    name_this_thread("ns-telemetry");
    run();
  });
}

TelemetrySampler::~TelemetrySampler() { stop(); }

void TelemetrySampler::stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable() && thread_.get_id() != std::this_thread::get_id()) thread_.join();
}

bool TelemetrySampler::running() const {
  std::lock_guard<std::mutex> lock(mu_);
  return !stopping_;
}

void TelemetrySampler::run() {
  using clock = std::chrono::steady_clock;
  const auto period = std::chrono::milliseconds(period_ms_);
  auto next = clock::now();
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      if (cv_.wait_until(lock, next, [this] { return stopping_; })) return;
    }
    TelemetrySnapshot snap = read_();
    {
      std::lock_guard<std::mutex> lock(mu_);
      ring_.push_back(snap);
      while (ring_.size() > capacity_) ring_.pop_front();
      ++taken_;
    }
    if (on_sample_) on_sample_(snap);
    // Fixed schedule; after an overrun (a slow read) start again from now rather than burst.
    next += period;
    const auto now = clock::now();
    if (next < now) next = now + period;
  }
}

std::optional<TelemetrySnapshot> TelemetrySampler::latest() const {
  std::lock_guard<std::mutex> lock(mu_);
  if (ring_.empty()) return std::nullopt;
  return ring_.back();
}

std::vector<TelemetrySnapshot> TelemetrySampler::recent() const {
  std::lock_guard<std::mutex> lock(mu_);
  return {ring_.begin(), ring_.end()};
}

uint64_t TelemetrySampler::samples_taken() const {
  std::lock_guard<std::mutex> lock(mu_);
  return taken_;
}

}  // namespace neoserve::telemetry
