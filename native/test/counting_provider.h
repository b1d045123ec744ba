// A provider for scheduler tests: no model, just bookkeeping. Its logits make
// greedy decoding deterministic and checkable: after token t at position p
// the argmax is (t + p) % vocab. It checks every block table it is given.
//
// Test knobs: `step_delay` sleeps per step; `busy_base_us` + `busy_per_token_us`
// busy-wait a known linear function of the step's tokens (and record each
// step's nominal cost); `spread_logits` gives every vocab entry a deterministic
// pseudo-random logit (a function of last token and position only) so that
// temperature sampling draws varied tokens; `on_step` sees every batch (it may
// call the scheduler's cancel: no scheduler lock is held during a step).
#pragma once
#include <atomic>
#include <chrono>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "core/error.h"
#include "core/provider.h"

namespace neoserve::test {

class CountingProvider : public Provider {
 public:
  CountingProvider(int32_t vocab, int32_t max_context, int32_t num_blocks, int32_t block_size)
      : vocab_(vocab), max_context_(max_context), num_blocks_(num_blocks), block_size_(block_size) {}

  ProviderInfo info() const override { return {"counting", "test", "f32", vocab_, max_context_, {}, {}}; }
  KvGeometry kv() const override { return {block_size_, 64, num_blocks_}; }

  void step(std::span<const SeqStep> batch, LogitsOut& out) override {
    if (on_step) on_step(batch);
    if (step_delay.count() > 0) std::this_thread::sleep_for(step_delay);
    out.vocab = vocab_;
    out.rows = 0;
    out.data.clear();
    int32_t tokens = 0;
    bool has_decode = false;
    for (const SeqStep& s : batch) {
      tokens += static_cast<int32_t>(s.tokens.size());
      if (s.tokens.size() == 1 && s.pos >= decode_pos_from) has_decode = true;
      const int64_t end = s.pos + static_cast<int64_t>(s.tokens.size());
      if (static_cast<int64_t>(s.kv_blocks.size()) * block_size_ < end)
        throw Error(ErrorCode::InvalidRequest, "block table too short");
      for (int32_t b : s.kv_blocks)
        if (b < 0 || b >= num_blocks_) throw Error(ErrorCode::InvalidRequest, "block out of range");
      if (!s.want_logits) continue;
      out.data.resize(out.data.size() + vocab_, 0.0f);
      float* row = out.data.data() + out.data.size() - vocab_;
      const int32_t last = s.tokens.back();
      const int32_t next = static_cast<int32_t>((last + end - 1) % vocab_);
      if (spread_logits) {
        for (int32_t v = 0; v < vocab_; ++v) {
          uint64_t h = (static_cast<uint64_t>(last) * 1000003u + static_cast<uint64_t>(end) * 7919u + v) *
                       0x9E3779B97F4A7C15ull;
          h ^= h >> 29;
          row[v] = static_cast<float>(h % 1000) / 250.0f;  // [0, 4)
        }
      }
      row[next] = spread_logits ? 4.5f : 10.0f;
      ++out.rows;
    }
    if (busy_per_token_us > 0 || busy_base_us > 0) {
      const double nominal_us = busy_base_us + busy_per_token_us * tokens;
      const auto until = std::chrono::steady_clock::now() + std::chrono::duration<double, std::micro>(nominal_us);
      while (std::chrono::steady_clock::now() < until) {
      }
      std::lock_guard lock(log_mutex);
      step_log.push_back({tokens, has_decode, nominal_us / 1000.0});
    }
    max_tokens_seen = std::max(max_tokens_seen.load(), tokens);
    max_seqs_seen = std::max(max_seqs_seen.load(), static_cast<int32_t>(batch.size()));
    steps.fetch_add(1);
  }

  struct StepRecord {
    int32_t tokens;
    bool has_decode;   // a 1-token step at pos >= decode_pos_from
    double nominal_ms;
  };

  std::chrono::milliseconds step_delay{0};
  double busy_base_us = 0, busy_per_token_us = 0;
  int32_t decode_pos_from = 1;
  bool spread_logits = false;
  std::function<void(std::span<const SeqStep>)> on_step;
  std::mutex log_mutex;
  std::vector<StepRecord> step_log;
  std::atomic<int32_t> max_tokens_seen{0};
  std::atomic<int32_t> max_seqs_seen{0};
  std::atomic<int32_t> steps{0};

 private:
  int32_t vocab_, max_context_, num_blocks_, block_size_;
};

}  // namespace neoserve::test
