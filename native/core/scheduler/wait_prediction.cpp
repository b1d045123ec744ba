#include "wait_prediction.h"

#include <algorithm>
#include <cmath>

namespace neoserve {

double predict_wait_ms(const WaitInputs& in, const WaitLimits& limits, const StepTimeModel& steps) {
  if (in.running == 0 && in.waiting == 0) return 0;
  if (!steps.ready()) return -1;
  const auto cost = [&](double tokens, double attended) { return std::max(0.0, steps.predict(tokens, attended)); };
  const double decode_ms = in.running > 0 ? cost(in.running, in.running_attended) : 0;
  // The step under way finishes first.
  double wait = decode_ms;
  // No free batch slot for it (those queued ahead take the free ones): it waits
  // for the running sequence nearest its end; the queue is prefilled meanwhile.
  if (in.running + in.waiting >= limits.max_batch_size) wait += std::max(0, in.fewest_remaining) * decode_ms;
  // The queue's prompts go first, beside the running decodes, in steps of max_batch_tokens.
  if (in.waiting_tokens > 0) {
    const double per_step = std::max(1, limits.max_batch_tokens - in.running);
    const double n_steps = std::ceil(static_cast<double>(in.waiting_tokens) / per_step);
    const double step_tokens = std::min<double>(limits.max_batch_tokens, in.running + static_cast<double>(in.waiting_tokens));
    wait += n_steps * cost(step_tokens, in.running_attended);
  }
  return wait;
}

}  // namespace neoserve
