// Predicts how long one provider step takes, fitted online from measured steps:
//   t_ms ≈ a + b·tokens + c·attended
// where `tokens` are the tokens fed in the step (decodes + prefill chunks) and
// `attended` is the sum, over those tokens, of the context length each one
// attends to (a decode at position p attends p+1; a chunk of n tokens starting
// at p attends n·p + n(n+1)/2).
//
// Fit: exponentially weighted recursive least squares (forgetting factor
// 0.98, ~50-step memory) on scaled features, with residuals clipped to a few
// times the running error once warmed up (one descheduled step on a loaded
// machine does not wreck the fit) and the covariance capped (no wind-up while
// the batch shape does not change). Directions the recent steps do not excite
// keep their older estimate. Until it is ready (a few steps seen, with at least
// two different token counts, and a positive cost per token) callers should be
// conservative. Plain value type: no allocation, copyable as a snapshot.
#pragma once
#include <cstdint>

namespace neoserve {

class StepTimeModel {
 public:
  StepTimeModel();

  void observe(double tokens, double attended, double ms);
  // The fit, and never below the fastest of the smallest steps seen when the
  // step is at least that large: the linear fit's intercept, pulled by big
  // prefills and noise, can fall below what a decode step really costs.
  double predict(double tokens, double attended) const;
  bool ready() const;

  // Coefficients in ms, ms/token, ms/attended-position (as fitted; may be negative).
  double a() const { return theta_[0]; }
  double b() const { return theta_[1] / kTokenScale; }
  double c() const { return theta_[2] / kAttendScale; }
  // Running mean absolute prediction error (a priori, ms) over recent steps.
  double error_ms() const { return err_; }
  // The fastest step seen among those of the fewest tokens (min_tokens()), ms.
  double floor_ms() const { return floor_ms_; }
  double min_tokens() const { return min_tokens_; }
  uint64_t observations() const { return n_; }

  // Attended positions of a chunk of `n` tokens starting at position `pos`.
  static double attended_of(int64_t pos, int64_t n) {
    return static_cast<double>(n) * static_cast<double>(pos) + static_cast<double>(n) * (n + 1) / 2.0;
  }

  // The largest chunk (<= limit) of a prompt whose next position is `pos` whose
  // predicted extra cost (b·n + c·attended, with negative slopes taken as 0)
  // stays within `budget_ms`. Requires ready().
  int32_t max_chunk(int64_t pos, int32_t limit, double budget_ms) const;
  double chunk_cost(int64_t pos, int32_t n) const;

 private:
  static constexpr double kTokenScale = 256.0;
  static constexpr double kAttendScale = 65536.0;
  static constexpr double kForget = 0.98;
  static constexpr uint64_t kWarmup = 8;

  double theta_[3];
  double p_[3][3];
  double err_ = 0;
  uint64_t n_ = 0;
  double min_tokens_ = 0, max_tokens_ = 0;
  double floor_ms_ = 0;
};

}  // namespace neoserve
