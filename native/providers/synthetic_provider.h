// A provider that does no model work: its logits are a fixed function of the
// last token and position. It measures what the scheduler, sampling and the
// binding cost on their own (backend "synthetic"), and needs no weights.
#pragma once
#include <memory>

#include "core/model/model_weights.h"
#include "core/provider.h"

namespace neoserve {

class SyntheticProvider : public Provider {
 public:
  static constexpr int32_t kVocab = 256;  // byte tokens: ids 0..255 in byte-level BPE vocabularies
  static constexpr int32_t kContext = 1 << 16;
  explicit SyntheticProvider(int32_t kv_block_size = kDefaultKvBlockSize) : block_size_(kv_block_size) {}

  ProviderInfo info() const override;
  KvGeometry kv() const override;
  void step(std::span<const SeqStep> batch, LogitsOut& out) override;

 private:
  int32_t block_size_;
};

// The configuration a synthetic model reports (no tensors).
std::shared_ptr<const ModelWeights> synthetic_model_weights();

}  // namespace neoserve
