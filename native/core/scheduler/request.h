// What a caller submits, and what the scheduler hands back for it.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

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
};

const char* finish_reason_name(FinishReason r);

struct GenerationRequest {
  std::vector<int32_t> prompt;
  int32_t max_tokens = 16;
  SamplingParams sampling;
  int32_t priority = 0;      // higher runs first under the priority policy, and is preempted last
  double deadline_ms = 0;    // end-to-end budget from submit; 0 = none (edf orders by it)
  bool capture_logits = false;  // deliver each sampled position's raw logits (research, reference tests)
};

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
