#include "request.h"

#include <algorithm>
#include <random>
#include <string>

#include "../error.h"

namespace neoserve {

int32_t RequestLimits::max_positions(const GenerationRequest& r) const {
  return static_cast<int32_t>(std::min<int64_t>(static_cast<int64_t>(r.prompt.size()) + r.max_tokens, max_context));
}

void validate_request(const GenerationRequest& request, const RequestLimits& limits) {
  if (limits.kv_block_size < 1) throw Error(ErrorCode::Internal, "request limits without a KV block size");
  const auto prompt_len = static_cast<int64_t>(request.prompt.size());
  if (prompt_len == 0) throw_invalid("the prompt has no tokens");
  if (prompt_len >= limits.max_context)
    throw_invalid("the prompt has " + std::to_string(prompt_len) + " tokens; the model's context is " +
                  std::to_string(limits.max_context));
  for (int32_t t : request.prompt)
    if (t < 0 || t >= limits.vocab_size)
      throw_invalid("prompt token " + std::to_string(t) + " is outside the vocabulary [0, " +
                    std::to_string(limits.vocab_size) + ")");
  if (request.max_tokens < 1) throw_invalid("maxTokens must be at least 1, got " + std::to_string(request.max_tokens));
  if (!(request.deadline_ms >= 0)) throw_invalid("deadlineMs must not be negative");
  if (request.logprobs < -1 || request.logprobs > kMaxTopLogprobs)
    throw_invalid("logprobs must be in [0, " + std::to_string(kMaxTopLogprobs) + "] (absent: off), got " + std::to_string(request.logprobs));
  request.sampling.validate(limits.vocab_size);
  const int64_t blocks = (limits.max_positions(request) + limits.kv_block_size - 1) / limits.kv_block_size;
  if (blocks > limits.kv_blocks)
    throw_invalid("the request needs " + std::to_string(blocks) + " KV blocks; the cache has " +
                  std::to_string(limits.kv_blocks));
}

uint64_t fresh_seed() {
  static thread_local std::mt19937_64 engine{std::random_device{}()};
  return engine() >> 11;
}

}  // namespace neoserve
