// How long a request submitted now would wait before its prefill starts, and
// how long one admitted now would take to finish, predicted from the
// scheduler's live state and its fitted step-time model.
// A router compares engines by it (plus the request's own prefill), so it
// must react to load at once: it is recomputed on every stats() call from the
// queue as it stands, not averaged.
#pragma once
#include <cstdint>

#include "step_time_model.h"

namespace neoserve {

struct WaitInputs {
  int32_t running = 0;            // sequences in the batch now
  double running_attended = 0;    // sum of their positions (what one decode step attends)
  int32_t fewest_remaining = 0;   // tokens left of the running sequence closest to its end
  int32_t waiting = 0;            // requests queued ahead
  int64_t waiting_tokens = 0;     // their pending prompt positions
};

struct WaitLimits {
  int32_t max_batch_size = 16;
  int32_t max_batch_tokens = 512;
};

// Milliseconds until a new request's first step, or -1 while the step-time
// model has not seen enough steps to tell (an idle engine is 0 regardless).
double predict_wait_ms(const WaitInputs& in, const WaitLimits& limits, const StepTimeModel& steps);

// A request about to be admitted, and the batch it would join.
struct ServiceInputs {
  int32_t running = 0;          // sequences already in the batch
  double running_attended = 0;  // the sum of their positions
  int32_t pending = 0;          // its prompt positions still to compute
  int32_t position = 0;         // where its pending positions start
  int32_t tokens_left = 1;      // tokens it may still generate (max_tokens, within the context)
  int64_t running_pending = 0;  // prompt positions the batch has still to prefill: steps it shares carry them too
};

// Milliseconds from admission to its last token if it generates all it may:
// its prefill in chunks beside the batch's decodes, then one decode step per
// token in the batch it joins, plus the cost of the prompts the batch has
// still to prefill (they share its steps). Requires a ready step-time model.
double predict_service_ms(const ServiceInputs& in, const WaitLimits& limits, const StepTimeModel& steps);

}  // namespace neoserve
