// Turns one row of logits into the next token. Deterministic: the random draw
// depends only on (seed, step index), never on what else shares the batch.
#pragma once
#include <cstdint>
#include <span>
#include <vector>

namespace neoserve {

struct SamplingParams {
  float temperature = 1.0f;  // 0 = greedy (argmax, lowest id wins ties)
  int32_t top_k = 0;         // 0 = off
  float top_p = 1.0f;        // 1 = off
  float min_p = 0.0f;        // 0 = off; keeps tokens with p >= min_p * p_max
  float repetition_penalty = 1.0f;  // HF/CTRL style over prompt + generated tokens: logit>0 ? l/r : l*r
  float frequency_penalty = 0.0f;   // OpenAI style over generated tokens: l -= f * count
  float presence_penalty = 0.0f;    // l -= p if count > 0
  uint64_t seed = 0;
  std::vector<int32_t> stop_token_ids;

  // Throws InvalidRequest naming the parameter if out of range.
  void validate(int32_t vocab_size) const;
};

// A chain of stages, in this order: penalties, temperature (the tokens of
// weight 0 dropped when top-k is off), top-k, softmax, top-p, min-p, draw (see candidates.h). Greedy (temperature 0) is the argmax
// of the penalised row.
class Sampler {
 public:
  explicit Sampler(SamplingParams params);
  // `context` = prompt + generated so far; `num_prompt` of them are the prompt.
  // `step` is the index of the token being drawn (0 for the first generated token).
  int32_t sample(std::span<const float> logits, std::span<const int32_t> context, int32_t num_prompt,
                 uint64_t step) const;
  bool is_stop(int32_t token) const;
  const SamplingParams& params() const { return params_; }

 private:
  SamplingParams params_;

  // Vocabulary-sized buffers, one set per thread that samples (the scheduler's
  // and the provider's): reused across calls and requests, so neither a token
  // nor a new request allocates and zeroes them.
  struct Scratch {
    std::vector<float> row;       // the row being sampled: NaN as -inf, penalties applied
    std::vector<int32_t> order;   // candidate ids
    std::vector<double> probs;    // unnormalised probabilities, indexed like order
    std::vector<int32_t> counts;  // generated-token counts, all zero between calls
    std::vector<uint8_t> seen;    // distinct-token marks for the repetition penalty, all zero between calls
  };
  static Scratch& scratch();

  void load(std::span<const float> logits, Scratch& s) const;
  void apply_penalties(std::span<const int32_t> context, int32_t num_prompt, Scratch& s) const;
  bool penalized() const {
    return params_.repetition_penalty != 1.0f || params_.frequency_penalty != 0.0f || params_.presence_penalty != 0.0f;
  }
};

}  // namespace neoserve
