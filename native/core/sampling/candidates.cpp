#include "candidates.h"

#include <algorithm>
#include <iterator>
#include <limits>

#include "rng.h"

namespace neoserve {

namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

}  // namespace

size_t Candidates::gather(float t, bool keep_negligible) {
  // Two passes: the max first, so the second can weigh each token as it goes.
  // Lane-wise maxima, which vectorise (a single running max does not: its order matters to NaN).
  constexpr size_t kRun = 16;
  float lanes[kRun];
  std::fill(std::begin(lanes), std::end(lanes), kNegInf);
  size_t i = 0;
  for (; i + kRun <= vocab_; i += kRun)
    for (size_t j = 0; j < kRun; ++j) lanes[j] = logits_[i + j] > lanes[j] ? logits_[i + j] : lanes[j];  // false for NaN
  float max = kNegInf;
  for (float v : lanes) max = v > max ? v : max;
  for (; i < vocab_; ++i) max = logits_[i] > max ? logits_[i] : max;
  max_logit_ = max;
  inf_max_ = std::isinf(max_logit_);
  inv_t_ = 1.0 / static_cast<double>(t);
  sorted_ = false;
  nucleus_mass_ = 0.0;
  n_ = 0;
  // A float bound a temperature below the exact one (rounding), so the loop's
  // test is a float compare that is almost always false.
  const double bound = static_cast<double>(max) - 61.0 * t;  // below float's range for a huge t: then no bound
  const float floor = keep_negligible || inf_max_ || bound < -std::numeric_limits<float>::max() ? kNegInf : static_cast<float>(bound);
  auto take = [&](size_t i) {
    const float l = logits_[i];
    if (l > kNegInf && l >= floor && (keep_negligible || !negligible(l))) ids_[n_++] = static_cast<int32_t>(i);
  };
  // Runs of 16 with none at the floor are skipped by one test that vectorises: most of a vocabulary.
  for (i = 0; i + kRun <= vocab_; i += kRun) {
    int hits = 0;
    for (size_t j = 0; j < kRun; ++j) hits += logits_[i + j] >= floor;
    if (hits > 0)
      for (size_t j = 0; j < kRun; ++j) take(i + j);
  }
  for (; i < vocab_; ++i) take(i);
  return n_;
}

void Candidates::top_k(int32_t k_param) {
  const size_t k = static_cast<size_t>(std::max<int32_t>(k_param, 0));
  if (k == 0 || k >= n_) return;
  auto before = [this](int32_t a, int32_t b) { return this->before(a, b); };
  std::nth_element(ids_, ids_ + k, ids_ + n_, before);
  n_ = k;
  std::sort(ids_, ids_ + n_, before);
  sorted_ = true;
}

// Sorts the candidates best first as far as they hold top_p of the mass. The
// sorted prefix is the same as a full sort's, so the result is too — at O(n)
// instead of O(n log n), since the nucleus of a real distribution is small.
// While it sums the mass it bins it by z (kBinsPerUnit bins per unit below the
// max); the bins that hold the nucleus, and one more for rounding, bound the
// candidates to sort. Should their sum still fall short, it selects the best k
// and widens k until they hold it.
void Candidates::sort_nucleus(float top_p) {
  if (!(top_p < 1.0f) || sorted_) return;
  auto before = [this](int32_t a, int32_t b) { return this->before(a, b); };
  constexpr int kBinsPerUnit = 4, kBins = 60 * kBinsPerUnit + 1;
  auto bin = [this](float l) {
    if (inf_max_) return 0;
    const double z = (static_cast<double>(max_logit_) - static_cast<double>(l)) * inv_t_;
    return static_cast<int>(std::min<double>(z * kBinsPerUnit, kBins - 1));
  };
  double mass[kBins] = {};
  double all = 0.0;
  for (size_t j = 0; j < n_; ++j) {
    const double w = weight(logits_[ids_[j]]);
    all += w;
    mass[bin(logits_[ids_[j]])] += w;
  }
  nucleus_mass_ = static_cast<double>(top_p) * all;
  double reached = 0.0;
  int last = 0;
  while (last < kBins - 1 && reached < nucleus_mass_) reached += mass[last++];
  const int bound = std::min(kBins - 1, last + 1);
  size_t m = 0;
  for (size_t j = 0; j < n_; ++j)
    if (bin(logits_[ids_[j]]) <= bound) std::swap(ids_[m++], ids_[j]);
  std::sort(ids_, ids_ + m, before);
  double held = 0.0;
  for (size_t j = 0; j < m; ++j) held += weight(logits_[ids_[j]]);
  if (held >= nucleus_mass_) {
    n_ = m;
    sorted_ = true;
    return;
  }
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
