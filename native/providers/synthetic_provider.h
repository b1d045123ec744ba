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

  ProviderInfo info() const override;
  KvGeometry kv() const override;
  void step(std::span<const SeqStep> batch, LogitsOut& out) override;
};

// The configuration a synthetic model reports (no tensors).
std::shared_ptr<const ModelWeights> synthetic_model_weights();

}  // namespace neoserve
