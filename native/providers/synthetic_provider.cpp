#include "synthetic_provider.h"

#include <algorithm>

#include "core/error.h"

namespace neoserve {

namespace {
constexpr int32_t kBlocks = 1 << 20;  // bookkeeping only: no memory behind them
}  // namespace

ProviderInfo SyntheticProvider::info() const { return {"synthetic", "none", "none", kVocab, kContext, {}, {}}; }

KvGeometry SyntheticProvider::kv() const { return {block_size_, 0, kBlocks}; }

void SyntheticProvider::step(std::span<const SeqStep> batch, LogitsOut& out) {
  out.vocab = kVocab;
  out.rows = 0;
  size_t rows = 0;
  for (const SeqStep& s : batch) rows += s.want_logits;
  out.data.assign(rows * kVocab, 0.0f);
  for (const SeqStep& s : batch) {
    if (s.tokens.empty()) throw_invalid("a step with no tokens");
    if (!s.want_logits) continue;
    const int64_t pos = s.pos + static_cast<int64_t>(s.tokens.size()) - 1;
    const auto next = static_cast<int32_t>((static_cast<int64_t>(s.tokens.back()) * 31 + pos) % kVocab);
    out.data[static_cast<size_t>(out.rows) * kVocab + next] = 1.0f;
    ++out.rows;
  }
}

std::shared_ptr<const ModelWeights> synthetic_model_weights() {
  auto w = std::make_shared<ModelWeights>();
  w->source = "synthetic";
  LlamaConfig& c = w->config;
  c.vocab_size = SyntheticProvider::kVocab;
  c.max_position_embeddings = SyntheticProvider::kContext;
  c.bos_token_id = -1;
  return w;
}

}  // namespace neoserve
