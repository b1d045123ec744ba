// One request inside the scheduler, from submit to its final event: waiting,
// running, possibly preempted and waiting again. Owned by the scheduler's
// queues; a StepPlan points at the running ones it steps.
#pragma once
#include <cstdint>
#include <limits>
#include <memory>
#include <vector>

#include "../sampling/sampler.h"
#include "request.h"

namespace neoserve {

struct Sequence {
  RequestId id = 0;
  uint64_t order = 0;            // submit order; kept across preemption so a requeued sequence sorts first
  double submit_ms = 0;
  double deadline_at = std::numeric_limits<double>::infinity();  // absolute, on the scheduler clock
  bool started = false;          // admitted at least once (queue timeout no longer applies)
  bool done = false;             // its final event is out; its queue drops it before the next step
  GenerationRequest request;
  std::vector<int32_t> context;  // prompt, then generated tokens
  int32_t computed = 0;          // positions whose KV is in the cache
  int32_t generated = 0;
  int32_t max_positions = 0;     // prompt + max_tokens, clamped to the context
  std::vector<int32_t> blocks;
  std::unique_ptr<Sampler> sampler;  // made at submit: no allocation per token

  int32_t pending() const { return static_cast<int32_t>(context.size()) - computed; }
  // Its one pending position is a sampled token (not the end of a prompt chunk).
  bool decoding() const { return generated > 0 && pending() == 1; }
};

}  // namespace neoserve
