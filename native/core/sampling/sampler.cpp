#include "sampler.h"

#include <algorithm>
#include <cmath>
#include <iterator>
#include <limits>
#include <sstream>
#include <string>

#include "../error.h"
#include "rng.h"

namespace neoserve {

namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

template <typename T>
std::string show(T v) {
  std::ostringstream os;
  os << v;
  return os.str();
}

// Index of the largest value, NaN counted as -inf, lowest index on ties.
// Returns 0 when every value is -inf or NaN. Two passes that both vectorise
// (lane-wise maxima, then a scan for the first match) instead of one loop whose
// index bookkeeping does not: greedy decoding runs this over the whole
// vocabulary for every token.
int32_t argmax(std::span<const float> values) {
  constexpr size_t kLanes = 16;
  float lanes[kLanes];
  std::fill(std::begin(lanes), std::end(lanes), kNegInf);
  const size_t n = values.size();
  size_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (size_t l = 0; l < kLanes; ++l) {
      const float v = values[i + l];
      lanes[l] = v > lanes[l] ? v : lanes[l];  // false for NaN
    }
  float best = kNegInf;
  for (float v : lanes) best = v > best ? v : best;
  for (; i < n; ++i) best = values[i] > best ? values[i] : best;
  if (!(best > kNegInf)) return 0;
  for (size_t j = 0; j < n; ++j)
    if (values[j] == best) return static_cast<int32_t>(j);
  return 0;
}

}  // namespace

void SamplingParams::validate(int32_t vocab_size) const {
  if (!(std::isfinite(temperature) && temperature >= 0.0f))
    throw_invalid("temperature must be a finite number >= 0 (got " + show(temperature) + ")");
  if (top_k < 0) throw_invalid("top_k must be >= 0 (0 disables it; got " + show(top_k) + ")");
  if (!(top_p > 0.0f && top_p <= 1.0f))
    throw_invalid("top_p must be in (0, 1] (1 disables it; got " + show(top_p) + ")");
  if (!(min_p >= 0.0f && min_p <= 1.0f))
    throw_invalid("min_p must be in [0, 1] (0 disables it; got " + show(min_p) + ")");
  if (!(std::isfinite(repetition_penalty) && repetition_penalty > 0.0f))
    throw_invalid("repetition_penalty must be a finite number > 0 (1 disables it; got " +
                  show(repetition_penalty) + ")");
  if (!std::isfinite(frequency_penalty))
    throw_invalid("frequency_penalty must be a finite number (got " + show(frequency_penalty) + ")");
  if (!std::isfinite(presence_penalty))
    throw_invalid("presence_penalty must be a finite number (got " + show(presence_penalty) + ")");
  for (int32_t id : stop_token_ids) {
    if (id < 0 || id >= vocab_size)
      throw_invalid("stop_token_ids must be token ids in [0, " + show(vocab_size) + ") (got " + show(id) + ")");
  }
}

Sampler::Sampler(SamplingParams params) : params_(std::move(params)) {}

bool Sampler::is_stop(int32_t token) const {
  return std::find(params_.stop_token_ids.begin(), params_.stop_token_ids.end(), token) !=
         params_.stop_token_ids.end();
}

void Sampler::apply_penalties(std::span<const int32_t> context, int32_t num_prompt) {
  const size_t vocab = scratch_.size();
  auto valid = [vocab](int32_t t) { return t >= 0 && static_cast<size_t>(t) < vocab; };

  const float r = params_.repetition_penalty;
  if (r != 1.0f) {
    seen_.resize(vocab, 0);  // all zero between calls: only touched entries are reset below
    for (int32_t t : context) {
      if (!valid(t) || seen_[t]) continue;
      seen_[t] = 1;
      float& l = scratch_[t];
      l = l > 0.0f ? l / r : l * r;
    }
    for (int32_t t : context)
      if (valid(t)) seen_[t] = 0;
  }

  const double f = params_.frequency_penalty, p = params_.presence_penalty;
  if (f != 0.0 || p != 0.0) {
    const size_t np = std::clamp<int64_t>(num_prompt, 0, static_cast<int64_t>(context.size()));
    const std::span<const int32_t> generated = context.subspan(np);
    counts_.resize(vocab, 0);
    for (int32_t t : generated)
      if (valid(t)) ++counts_[t];
    for (int32_t t : generated) {
      if (!valid(t) || counts_[t] == 0) continue;
      float& l = scratch_[t];
      l = static_cast<float>(static_cast<double>(l) - f * counts_[t] - p);
      if (std::isnan(l)) l = kNegInf;
      counts_[t] = 0;  // once per distinct token; also leaves counts_ all zero for the next call
    }
  }
}

int32_t Sampler::sample(std::span<const float> logits, std::span<const int32_t> context, int32_t num_prompt,
                        uint64_t step) {
  const size_t vocab = logits.size();
  if (vocab == 0) throw Error(ErrorCode::Internal, "sampler: empty logits row");
  if (vocab > static_cast<size_t>(std::numeric_limits<int32_t>::max()))
    throw Error(ErrorCode::Internal, "sampler: logits row too long");

  // Plain greedy reads the row in place: no copy of the vocabulary per token.
  if (params_.temperature == 0.0f && !penalized()) return argmax(logits);

  // resize() keeps capacity: after the first call of a given vocab nothing allocates.
  scratch_.resize(vocab);
  for (size_t i = 0; i < vocab; ++i) scratch_[i] = std::isnan(logits[i]) ? kNegInf : logits[i];
  apply_penalties(context, num_prompt);

  if (params_.temperature == 0.0f) return argmax(scratch_);

  // Candidates: every token that still has a chance.
  order_.resize(vocab);
  probs_.resize(vocab);
  size_t n = 0;
  float max_logit = kNegInf;
  for (size_t i = 0; i < vocab; ++i) {
    const float l = scratch_[i];
    if (l > kNegInf) {
      order_[n++] = static_cast<int32_t>(i);
      max_logit = std::max(max_logit, l);
    }
  }
  if (n == 0) return argmax(logits);

  // Deterministic total order: higher logit (= higher probability) first, lower id on ties.
  const float* s = scratch_.data();
  auto before = [s](int32_t a, int32_t b) { return s[a] > s[b] || (s[a] == s[b] && a < b); };
  bool sorted = false;  // otherwise order_ is in id order, which is just as deterministic

  const size_t k = static_cast<size_t>(std::max<int32_t>(params_.top_k, 0));
  if (k > 0 && k < n) {
    std::nth_element(order_.begin(), order_.begin() + k, order_.begin() + n, before);
    n = k;
    std::sort(order_.begin(), order_.begin() + n, before);
    sorted = true;
  }
  // Softmax of logit / temperature in FP64, max subtracted (unnormalised: the max weighs 1).
  const double inv_t = 1.0 / static_cast<double>(params_.temperature);
  const bool inf_max = std::isinf(max_logit);  // +inf logits share all the mass equally
  // A weight below e^-60 (~1e-26) is lost against the max's weight of 1 in any
  // double sum over a vocabulary, so its exp is not worth computing.
  auto weight = [&](float l) {
    if (inf_max) return l == max_logit ? 1.0 : 0.0;
    const double z = (static_cast<double>(l) - static_cast<double>(max_logit)) * inv_t;
    return z < -60.0 ? 0.0 : std::exp(z);
  };

  // Top-p needs the candidates in order only as far as the nucleus reaches, and
  // the nucleus of a real distribution is small: select the best k, sort them,
  // and widen k until they hold top_p of the mass. The sorted prefix is the
  // same as a full sort's, so the result is too — at O(n) instead of O(n log n).
  double nucleus_mass = 0.0;
  if (params_.top_p < 1.0f && !sorted) {
    double all = 0.0;
    for (size_t j = 0; j < n; ++j) all += weight(s[order_[j]]);
    nucleus_mass = static_cast<double>(params_.top_p) * all;
    for (size_t k = std::min<size_t>(n, 64);; k = std::min(n, k * 4)) {
      if (k < n) std::nth_element(order_.begin(), order_.begin() + k, order_.begin() + n, before);
      std::sort(order_.begin(), order_.begin() + k, before);
      double held = 0.0;
      for (size_t j = 0; j < k; ++j) held += weight(s[order_[j]]);
      if (held >= nucleus_mass || k == n) {
        n = k;
        break;
      }
    }
    sorted = true;
  }

  double total = 0.0;
  for (size_t j = 0; j < n; ++j) {
    probs_[j] = weight(s[order_[j]]);
    total += probs_[j];
  }

  // Top-p: the smallest prefix of the sorted candidates holding >= top_p of the mass.
  if (params_.top_p < 1.0f) {
    const double threshold = nucleus_mass > 0.0 ? nucleus_mass : static_cast<double>(params_.top_p) * total;
    double cum = 0.0;
    for (size_t j = 0; j < n; ++j) {
      cum += probs_[j];
      if (cum >= threshold) {
        n = j + 1;
        break;
      }
    }
  }

  // Min-p: keep p >= min_p * p_max (p_max is the max-logit token's weight, 1, which always stays).
  if (params_.min_p > 0.0f) {
    double p_max = 0.0;
    for (size_t j = 0; j < n; ++j) p_max = std::max(p_max, probs_[j]);
    const double floor_p = static_cast<double>(params_.min_p) * p_max;
    size_t kept = 0;
    for (size_t j = 0; j < n; ++j) {
      if (probs_[j] >= floor_p) {
        order_[kept] = order_[j];
        probs_[kept] = probs_[j];
        ++kept;
      }
    }
    n = kept;
  }

  // Renormalise and draw with u = U[0,1) from (seed, step) alone.
  total = 0.0;
  for (size_t j = 0; j < n; ++j) total += probs_[j];
  const double u = counter_uniform(params_.seed, step) * total;
  double cum = 0.0;
  size_t last_positive = 0;
  for (size_t j = 0; j < n; ++j) {
    if (probs_[j] <= 0.0) continue;
    cum += probs_[j];
    last_positive = j;
    if (u < cum) return order_[j];
  }
  return order_[last_positive];  // rounding: u landed at the very top of the range
}

}  // namespace neoserve
