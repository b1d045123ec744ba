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

double predict_service_ms(const ServiceInputs& in, const WaitLimits& limits, const StepTimeModel& steps) {
  const auto cost = [&](double tokens, double attended) { return std::max(0.0, steps.predict(tokens, attended)); };
  double ms = 0;
  if (in.pending > 0) {
    const int32_t per_step = std::max(1, limits.max_batch_tokens - in.running);
    const int32_t n_steps = (in.pending + per_step - 1) / per_step;
    const int32_t chunk = (in.pending + n_steps - 1) / n_steps;
    for (int32_t i = 0, pos = in.position; i < n_steps; ++i, pos += chunk) {
      const int32_t n = std::min(chunk, in.pending - (pos - in.position));
      ms += cost(in.running + n, in.running_attended + StepTimeModel::attended_of(pos, n));
    }
  }
  // Its decodes: the batch plus itself, attending a little further each step (the mean context over them).
  const int32_t batch = std::min(limits.max_batch_size, in.running + 1);
  const double mean_context = in.position + in.pending + in.tokens_left / 2.0;
  const double attended = in.running_attended + in.running * (in.tokens_left / 2.0) + mean_context;
  const double decode = cost(batch, attended);
  const double steps_left = in.tokens_left - 1;
  // The batch's own prefill still to come shares those steps: its tokens' cost falls on everyone in them.
  ms += steps_left * decode + std::max(0.0, steps.b()) * static_cast<double>(in.running_pending);
  return ms;
}

}  // namespace neoserve
