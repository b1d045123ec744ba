#include "step_plan.h"

namespace neoserve {

namespace {

const char* plural(int64_t n, const char* one, const char* many) { return n == 1 ? one : many; }

}  // namespace

std::string describe(const StepPlan& plan) {
  const auto n = static_cast<int64_t>(plan.steps.size());
  std::string s = std::to_string(n) + plural(n, " seq, ", " seqs, ") + std::to_string(plan.tokens) +
                  plural(plan.tokens, " token", " tokens");
  for (int64_t i = 0; i < n; ++i) {
    const SeqStep& step = plan.steps[i];
    s += i == 0 ? ": " : ", ";
    if (i < plan.decodes) {
      s += "decode #" + std::to_string(step.id) + "@pos " + std::to_string(step.pos);
    } else {
      const int64_t end = step.pos + static_cast<int64_t>(step.tokens.size());
      s += "prefill #" + std::to_string(step.id) + " [" + std::to_string(step.pos) + "," + std::to_string(end) + ")";
    }
  }
  return s;
}

}  // namespace neoserve
