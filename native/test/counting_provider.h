// A provider for scheduler tests: no model, just bookkeeping. Its logits make
// greedy decoding deterministic and checkable: after token t at position p
// the argmax is (t + p) % vocab. It checks every block table it is given.
#pragma once
#include <atomic>
#include <chrono>
#include <thread>

#include "core/error.h"
#include "core/provider.h"

namespace neoserve::test {

class CountingProvider : public Provider {
 public:
  CountingProvider(int32_t vocab, int32_t max_context, int32_t num_blocks, int32_t block_size)
      : vocab_(vocab), max_context_(max_context), num_blocks_(num_blocks), block_size_(block_size) {}

  ProviderInfo info() const override { return {"counting", "test", "f32", vocab_, max_context_}; }
  KvGeometry kv() const override { return {block_size_, 64, num_blocks_}; }

  void step(std::span<const SeqStep> batch, LogitsOut& out) override {
    if (step_delay.count() > 0) std::this_thread::sleep_for(step_delay);
    out.vocab = vocab_;
    out.rows = 0;
    out.data.clear();
    int32_t tokens = 0;
    for (const SeqStep& s : batch) {
      tokens += static_cast<int32_t>(s.tokens.size());
      const int64_t end = s.pos + static_cast<int64_t>(s.tokens.size());
      if (static_cast<int64_t>(s.kv_blocks.size()) * block_size_ < end)
        throw Error(ErrorCode::InvalidRequest, "block table too short");
      for (int32_t b : s.kv_blocks)
        if (b < 0 || b >= num_blocks_) throw Error(ErrorCode::InvalidRequest, "block out of range");
      if (!s.want_logits) continue;
      out.data.resize(out.data.size() + vocab_, 0.0f);
      const int32_t next = static_cast<int32_t>((s.tokens.back() + end - 1) % vocab_);
      out.data[out.data.size() - vocab_ + next] = 10.0f;
      ++out.rows;
    }
    max_tokens_seen = std::max(max_tokens_seen.load(), tokens);
    max_seqs_seen = std::max(max_seqs_seen.load(), static_cast<int32_t>(batch.size()));
    steps.fetch_add(1);
  }

  std::chrono::milliseconds step_delay{0};
  std::atomic<int32_t> max_tokens_seen{0};
  std::atomic<int32_t> max_seqs_seen{0};
  std::atomic<int32_t> steps{0};

 private:
  int32_t vocab_, max_context_, num_blocks_, block_size_;
};

}  // namespace neoserve::test
