// Small Llama models with random weights, built in memory for the CPU
// provider's tests and benchmarks (no files): every tensor a Llama forward
// needs, in the dtype asked for, owned by the returned ModelWeights.
#pragma once
#include <cstdint>
#include <memory>

#include "core/model/model_weights.h"

namespace neoserve::test {

struct RandomModelSpec {
  int32_t hidden = 64;
  int32_t ffn = 96;
  int32_t layers = 2;
  int32_t heads = 4;
  int32_t kv_heads = 2;
  int32_t head_dim = 0;  // 0 = hidden / heads
  int32_t vocab = 97;
  int32_t max_pos = 256;
  bool tied = false;
  bool llama3_rope = false;  // llama3 scaling with a short original context, so all three bands occur
  float rope_theta = 10000.0f;
  DType dtype = DType::F32;  // linear weights and embeddings; Q8_0 needs hidden, ffn, heads*head_dim % 32 == 0
  uint64_t seed = 1;
};

std::shared_ptr<ModelWeights> make_random_model(const RandomModelSpec& spec);

}  // namespace neoserve::test
