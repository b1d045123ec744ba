#include "step_time_model.h"

#include <algorithm>
#include <cmath>

namespace neoserve {

StepTimeModel::StepTimeModel() {
  for (int i = 0; i < 3; ++i) {
    theta_[i] = 0;
    for (int j = 0; j < 3; ++j) p_[i][j] = i == j ? 1e4 : 0;
  }
}

void StepTimeModel::observe(double tokens, double attended, double ms) {
  if (!(ms >= 0) || !std::isfinite(ms)) return;
  const double x[3] = {1.0, tokens / kTokenScale, attended / kAttendScale};
  double e = ms - (theta_[0] * x[0] + theta_[1] * x[1] + theta_[2] * x[2]);
  const double abs_e = std::fabs(e);
  if (n_ >= kWarmup) {
    const double clip = std::max(4.0 * err_, 0.05);  // Huber-style: one outlier moves the fit a little
    e = std::clamp(e, -clip, clip);
  }
  err_ = n_ == 0 ? abs_e : 0.95 * err_ + 0.05 * abs_e;

  double px[3];
  for (int i = 0; i < 3; ++i) px[i] = p_[i][0] * x[0] + p_[i][1] * x[1] + p_[i][2] * x[2];
  const double denom = kForget + x[0] * px[0] + x[1] * px[1] + x[2] * px[2];
  double k[3];
  for (int i = 0; i < 3; ++i) k[i] = px[i] / denom;
  for (int i = 0; i < 3; ++i) theta_[i] += k[i] * e;
  // P <- (P - k (P x)^T) / lambda, kept symmetric; no division once P is large (no wind-up).
  double trace = 0;
  for (int i = 0; i < 3; ++i) trace += p_[i][i];
  const double forget = trace > 1e5 ? 1.0 : kForget;
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 3; ++j) p_[i][j] = (p_[i][j] - k[i] * px[j]) / forget;
  for (int i = 0; i < 3; ++i)
    for (int j = i + 1; j < 3; ++j) p_[i][j] = p_[j][i] = 0.5 * (p_[i][j] + p_[j][i]);

  if (n_ == 0 || tokens < min_tokens_) {
    floor_ms_ = ms;
  } else if (tokens == min_tokens_) {
    floor_ms_ = std::min(floor_ms_, ms);
  }
  if (n_ == 0) {
    min_tokens_ = max_tokens_ = tokens;
  } else {
    min_tokens_ = std::min(min_tokens_, tokens);
    max_tokens_ = std::max(max_tokens_, tokens);
  }
  ++n_;
}

double StepTimeModel::predict(double tokens, double attended) const {
  const double fit = theta_[0] + theta_[1] * (tokens / kTokenScale) + theta_[2] * (attended / kAttendScale);
  return n_ > 0 && tokens >= min_tokens_ ? std::max(fit, floor_ms_) : fit;
}

bool StepTimeModel::ready() const {
  return n_ >= kWarmup && max_tokens_ > min_tokens_ && (b() > 0 || c() > 0);
}

double StepTimeModel::chunk_cost(int64_t pos, int32_t n) const {
  return std::max(b(), 0.0) * n + std::max(c(), 0.0) * attended_of(pos, n);
}

int32_t StepTimeModel::max_chunk(int64_t pos, int32_t limit, double budget_ms) const {
  if (limit <= 0 || budget_ms <= 0) return 0;
  if (chunk_cost(pos, limit) <= budget_ms) return limit;
  int32_t lo = 0, hi = limit;  // cost(lo) fits, cost(hi) does not; cost is increasing in n
  while (hi - lo > 1) {
    const int32_t mid = lo + (hi - lo) / 2;
    if (chunk_cost(pos, mid) <= budget_ms) lo = mid; else hi = mid;
  }
  return lo;
}

}  // namespace neoserve
