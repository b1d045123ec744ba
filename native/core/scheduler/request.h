// What a caller submits, and what the scheduler hands back for it.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "../sampling/logprobs.h"
#include "../sampling/sampler.h"

namespace neoserve {

using RequestId = uint32_t;

enum class FinishReason : uint8_t {
  None = 0,   // a token event: the request goes on
  Stop,       // a stop token
  Length,     // max_tokens reached, or the model's context is full
  Cancelled,  // cancel() or the model was disposed
  Error,      // the engine failed on this request; the message says why
  DeadlineExceeded,  // its deadline_ms (end to end, from submit) passed before it finished
  QueueTimeout,      // it waited longer than max_queue_delay_ms without being started
  DeadlineUnmeetable,  // at admission, its predicted completion (prefill, then max_tokens steps) fell past its deadline: never started
};
inline constexpr int32_t kFinishReasonCount = 8;  // the binding hands JS their names by value
static_assert(static_cast<int32_t>(FinishReason::DeadlineUnmeetable) + 1 == kFinishReasonCount, "one past the last reason");

const char* finish_reason_name(FinishReason r);

// Generated tokens at most, unless the request says (maxTokens).
inline constexpr int32_t kDefaultMaxTokens = 128;

struct GenerationRequest {
  std::vector<int32_t> prompt;
  int32_t max_tokens = kDefaultMaxTokens;
  SamplingParams sampling;  // its stop_token_ids end the request besides the model's EOS ids
  bool ignore_eos = false;  // do not stop at the model's end-of-sequence ids (ProviderInfo::eos_token_ids)
  int32_t priority = 0;      // higher runs first under the priority policy, and is preempted last
  double deadline_ms = 0;    // end-to-end budget from submit; 0 = none (edf orders by it)
  bool capture_logits = false;  // deliver each sampled position's raw logits (research, reference tests)
  int32_t logprobs = -1;        // -1 off; else each token's log probability and this many top alternatives (<= kMaxTopLogprobs)
};

// What a model can take: the bounds validate_request() checks against.
struct RequestLimits {
  int32_t vocab_size = 0;
  int32_t max_context = 0;
  int32_t kv_block_size = 0;
  int32_t kv_blocks = 0;
  // Positions the request can reach: prompt + max_tokens, within the context.
  int32_t max_positions(const GenerationRequest& r) const;
};

// Throws InvalidRequest naming what is wrong: an empty or too long prompt, a
// token outside the vocabulary, a parameter out of its range, or a request
// whose KV cache could never fit. Scheduler::submit runs it; so can a caller
// that holds no scheduler (a pool checking a request before it sends it).
void validate_request(const GenerationRequest& request, const RequestLimits& limits);

// A seed for a request that gave none (53 bits: a JS number holds it exactly).
uint64_t fresh_seed();

// One event per generated token, plus exactly one final event per request
// (which may carry the last token, or token -1 when it ends without one).
struct TokenEvent {
  RequestId id = 0;
  int32_t token = -1;
  FinishReason finish = FinishReason::None;
};

struct EventBatch {
  std::vector<TokenEvent> events;
  std::vector<std::pair<RequestId, std::string>> errors;  // messages of Error finishes
  std::vector<std::pair<RequestId, std::vector<float>>> logits;  // for requests with capture_logits, in token order
  std::vector<std::pair<RequestId, TokenLogprobs>> logprobs;     // for requests with logprobs >= 0, in token order
  std::vector<std::pair<RequestId, double>> admissions;  // requests started this iteration, with their queue wait in ms
  int32_t step_sequences = 0;  // the provider step of this iteration: sequences in it (0: no step)
  int32_t step_tokens = 0;     // and tokens in it
};

// Receives every event of one scheduler iteration at once, on the scheduler thread.
class EventSink {
 public:
  virtual ~EventSink() = default;
  virtual void deliver(EventBatch&& batch) = 0;
};

}  // namespace neoserve
