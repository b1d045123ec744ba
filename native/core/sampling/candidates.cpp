#include "candidates.h"

#include <algorithm>
#include <limits>

#include "rng.h"

namespace neoserve {

namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

}  // namespace

size_t Candidates::gather() {
  n_ = 0;
  max_logit_ = kNegInf;
  for (size_t i = 0; i < vocab_; ++i) {
    const float l = logits_[i];
    if (l > kNegInf) {
      ids_[n_++] = static_cast<int32_t>(i);
      max_logit_ = std::max(max_logit_, l);
    }
  }
  inf_max_ = std::isinf(max_logit_);
  sorted_ = false;
  nucleus_mass_ = 0.0;
  return n_;
}

void Candidates::temperature(float t) { inv_t_ = 1.0 / static_cast<double>(t); }

void Candidates::top_k(int32_t k_param) {
  const size_t k = static_cast<size_t>(std::max<int32_t>(k_param, 0));
  if (k == 0 || k >= n_) return;
  auto before = [this](int32_t a, int32_t b) { return this->before(a, b); };
  std::nth_element(ids_, ids_ + k, ids_ + n_, before);
  n_ = k;
  std::sort(ids_, ids_ + n_, before);
  sorted_ = true;
}

// Select the best k, sort them, and widen k until they hold top_p of the mass.
// The sorted prefix is the same as a full sort's, so the result is too — at
// O(n) instead of O(n log n), since the nucleus of a real distribution is small.
void Candidates::sort_nucleus(float top_p) {
  if (!(top_p < 1.0f) || sorted_) return;
  auto before = [this](int32_t a, int32_t b) { return this->before(a, b); };
  double all = 0.0;
  for (size_t j = 0; j < n_; ++j) all += weight(logits_[ids_[j]]);
  nucleus_mass_ = static_cast<double>(top_p) * all;
  for (size_t k = std::min<size_t>(n_, 64);; k = std::min(n_, k * 4)) {
    if (k < n_) std::nth_element(ids_, ids_ + k, ids_ + n_, before);
    std::sort(ids_, ids_ + k, before);
    double held = 0.0;
    for (size_t j = 0; j < k; ++j) held += weight(logits_[ids_[j]]);
    if (held >= nucleus_mass_ || k == n_) {
      n_ = k;
      break;
    }
  }
  sorted_ = true;
}

void Candidates::softmax() {
  total_ = 0.0;
  for (size_t j = 0; j < n_; ++j) {
    probs_[j] = weight(logits_[ids_[j]]);
    total_ += probs_[j];
  }
}

// The smallest prefix of the sorted candidates holding >= p of the mass
// (measured over all candidates when sort_nucleus() ran, else over these).
void Candidates::top_p(float p) {
  if (!(p < 1.0f)) return;
  const double threshold = nucleus_mass_ > 0.0 ? nucleus_mass_ : static_cast<double>(p) * total_;
  double cum = 0.0;
  for (size_t j = 0; j < n_; ++j) {
    cum += probs_[j];
    if (cum >= threshold) {
      n_ = j + 1;
      break;
    }
  }
}

// Keeps weights >= p * p_max, in order; p_max is the max-logit token's weight, 1, which always stays.
void Candidates::min_p(float p) {
  if (!(p > 0.0f)) return;
  double p_max = 0.0;
  for (size_t j = 0; j < n_; ++j) p_max = std::max(p_max, probs_[j]);
  const double floor_p = static_cast<double>(p) * p_max;
  size_t kept = 0;
  for (size_t j = 0; j < n_; ++j) {
    if (probs_[j] >= floor_p) {
      ids_[kept] = ids_[j];
      probs_[kept] = probs_[j];
      ++kept;
    }
  }
  n_ = kept;
}

int32_t Candidates::draw(uint64_t seed, uint64_t step) const {
  double total = 0.0;
  for (size_t j = 0; j < n_; ++j) total += probs_[j];
  const double u = counter_uniform(seed, step) * total;
  double cum = 0.0;
  size_t last_positive = 0;
  for (size_t j = 0; j < n_; ++j) {
    if (probs_[j] <= 0.0) continue;
    cum += probs_[j];
    last_positive = j;
    if (u < cum) return ids_[j];
  }
  return ids_[last_positive];  // rounding: u landed at the very top of the range
}

}  // namespace neoserve
