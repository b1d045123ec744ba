#include "sampler.h"

#include <algorithm>
#include <cmath>
#include <iterator>
#include <limits>
#include <sstream>
#include <string>

#include "../error.h"
#include "candidates.h"

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
  if (top_k < 0) throw_invalid("topK (top_k) must be >= 0 (0 disables it; got " + show(top_k) + ")");
  if (!(top_p > 0.0f && top_p <= 1.0f))
    throw_invalid("topP (top_p) must be in (0, 1] (1 disables it; got " + show(top_p) + ")");
  if (!(min_p >= 0.0f && min_p <= 1.0f))
    throw_invalid("minP (min_p) must be in [0, 1] (0 disables it; got " + show(min_p) + ")");
  if (!(std::isfinite(repetition_penalty) && repetition_penalty > 0.0f))
    throw_invalid("repetitionPenalty (repetition_penalty) must be a finite number > 0 (1 disables it; got " +
                  show(repetition_penalty) + ")");
  if (!std::isfinite(frequency_penalty))
    throw_invalid("frequencyPenalty (frequency_penalty) must be a finite number (got " + show(frequency_penalty) + ")");
  if (!std::isfinite(presence_penalty))
    throw_invalid("presencePenalty (presence_penalty) must be a finite number (got " + show(presence_penalty) + ")");
  for (int32_t id : stop_token_ids) {
    if (id < 0 || id >= vocab_size)
      throw_invalid("stopTokenIds (stop_token_ids) must be token ids in [0, " + show(vocab_size) + ") (got " + show(id) + ")");
  }
}

Sampler::Sampler(SamplingParams params) : params_(std::move(params)) {}

bool Sampler::is_stop(int32_t token) const {
  return std::find(params_.stop_token_ids.begin(), params_.stop_token_ids.end(), token) !=
         params_.stop_token_ids.end();
}

Sampler::Scratch& Sampler::scratch() {
  thread_local Scratch s;
  return s;
}

void Sampler::apply_penalties(std::span<const int32_t> context, int32_t num_prompt, Scratch& s) const {
  const size_t vocab = s.row.size();
  auto valid = [vocab](int32_t t) { return t >= 0 && static_cast<size_t>(t) < vocab; };

  const float r = params_.repetition_penalty;
  if (r != 1.0f) {
    s.seen.resize(vocab, 0);  // all zero between calls: only touched entries are reset below
    for (int32_t t : context) {
      if (!valid(t) || s.seen[t]) continue;
      s.seen[t] = 1;
      float& l = s.row[t];
      l = l > 0.0f ? l / r : l * r;
    }
    for (int32_t t : context)
      if (valid(t)) s.seen[t] = 0;
  }

  const double f = params_.frequency_penalty, p = params_.presence_penalty;
  if (f != 0.0 || p != 0.0) {
    const size_t np = std::clamp<int64_t>(num_prompt, 0, static_cast<int64_t>(context.size()));
    const std::span<const int32_t> generated = context.subspan(np);
    s.counts.resize(vocab, 0);
    for (int32_t t : generated)
      if (valid(t)) ++s.counts[t];
    for (int32_t t : generated) {
      if (!valid(t) || s.counts[t] == 0) continue;
      float& l = s.row[t];
      l = static_cast<float>(static_cast<double>(l) - f * s.counts[t] - p);
      if (std::isnan(l)) l = kNegInf;
      s.counts[t] = 0;  // once per distinct token; also leaves counts all zero for the next call
    }
  }
}

void Sampler::load(std::span<const float> logits, Scratch& s) const {
  // resize() keeps capacity: after the first call of a given vocab nothing allocates.
  s.row.resize(logits.size());
  for (size_t i = 0; i < logits.size(); ++i) s.row[i] = std::isnan(logits[i]) ? kNegInf : logits[i];
}

int32_t Sampler::sample(std::span<const float> logits, std::span<const int32_t> context, int32_t num_prompt,
                        uint64_t step) const {
  const size_t vocab = logits.size();
  if (vocab == 0) throw Error(ErrorCode::Internal, "sampler: empty logits row");
  if (vocab > static_cast<size_t>(std::numeric_limits<int32_t>::max()))
    throw Error(ErrorCode::Internal, "sampler: logits row too long");

  // Plain greedy reads the row in place: no copy of the vocabulary per token.
  if (params_.temperature == 0.0f && !penalized()) return argmax(logits);

  // The stages read the row in place unless penalties change it (they skip NaN as they skip -inf).
  Scratch& s = scratch();
  std::span<const float> row = logits;
  if (penalized()) {
    load(logits, s);
    apply_penalties(context, num_prompt, s);
    if (params_.temperature == 0.0f) return argmax(s.row);
    row = s.row;
  }

  s.order.resize(vocab);
  s.probs.resize(vocab);
  Candidates c(row, s.order, s.probs);
  if (c.gather(params_.temperature, params_.top_k > 0) == 0) return argmax(logits);  // no token has a chance: the raw row's
  c.top_k(params_.top_k);
  c.sort_nucleus(params_.top_p);
  c.softmax();
  c.top_p(params_.top_p);
  c.min_p(params_.min_p);
  return c.draw(params_.seed, step);
}

}  // namespace neoserve
