// Log probabilities of a sampled token and of the most likely alternatives,
// from the model's raw logits row (log-softmax before any sampling parameter,
// as vLLM reports them by default): computed here so a request asking for
// them gets a few numbers per token, never the whole row.
#pragma once
#include <cstdint>
#include <span>
#include <vector>

namespace neoserve {

// Alternatives a request may ask for per token (OpenAI's top_logprobs bound).
inline constexpr int32_t kMaxTopLogprobs = 20;

struct TokenLogprobs {
  float logprob = 0.0f;               // of the sampled token
  std::vector<int32_t> top_ids;       // the `top` most likely tokens, most likely first (lower id first on ties)
  std::vector<float> top_logprobs;    // their log probabilities
};

// log_softmax(logits)[token] and the `top` largest entries. NaN logits count as -inf.
TokenLogprobs token_logprobs(std::span<const float> logits, int32_t token, int32_t top);

}  // namespace neoserve
