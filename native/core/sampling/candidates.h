// The tokens still in the running for one draw, and the stages that narrow
// them, applied in a chain as llama.cpp's sampler chain reads: gather,
// temperature, top-k, (nucleus order), softmax, top-p, min-p, draw. A view over
// buffers the Sampler owns and reuses, so a draw allocates nothing.
//
// Every stage keeps the exact floating-point operations, and their order, that
// seeded sampling has always used: a change here changes users' tokens.
#pragma once
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <span>

namespace neoserve {

class Candidates {
 public:
  // `logits`: the working row (penalties applied; NaN counts as -inf). `ids` and
  // `probs` must be at least as long as the row.
  Candidates(std::span<const float> logits, std::span<int32_t> ids, std::span<double> probs)
      : logits_(logits.data()), vocab_(logits.size()), ids_(ids.data()), probs_(probs.data()) {}

  // Every token whose logit is above -inf, in id order, weighed at temperature
  // t (> 0). Unless `keep_negligible`, without those whose softmax weight is
  // exactly 0 (below e^-60 of the max's): they add nothing to any sum and are
  // never drawn, so the stages give the same token from the few that remain —
  // except top-k, whose order a shorter list can change. Returns how many.
  size_t gather(float t, bool keep_negligible);
  void top_k(int32_t k);  // 0 = off
  // Top-p needs the candidates best first only as far as the nucleus reaches:
  // sorts that far (no-op when already sorted or top_p is 1).
  void sort_nucleus(float top_p);
  void softmax();         // unnormalised: the max-logit token weighs 1
  void top_p(float p);    // 1 = off
  void min_p(float p);    // 0 = off
  // u = U[0,1) from (seed, step) alone, over the renormalised weights.
  int32_t draw(uint64_t seed, uint64_t step) const;

  size_t size() const { return n_; }
  std::span<const int32_t> ids() const { return {ids_, n_}; }
  std::span<const double> probs() const { return {probs_, n_}; }  // after softmax()
  bool sorted() const { return sorted_; }

 private:
  // Deterministic total order: higher logit (= higher probability) first, lower id on ties.
  bool before(int32_t a, int32_t b) const {
    return logits_[a] > logits_[b] || (logits_[a] == logits_[b] && a < b);
  }
  // Softmax weight of logit / temperature in FP64, max subtracted. +inf logits
  // share all the mass equally. A weight below e^-60 (~1e-26) is lost against
  // the max's weight of 1 in any double sum over a vocabulary, so its exp is
  // not worth computing.
  double weight(float l) const {
    if (negligible(l)) return 0.0;
    return inf_max_ ? 1.0 : std::exp((static_cast<double>(l) - static_cast<double>(max_logit_)) * inv_t_);
  }
  bool negligible(float l) const {
    if (inf_max_) return l != max_logit_;
    return (static_cast<double>(l) - static_cast<double>(max_logit_)) * inv_t_ < -60.0;
  }

  const float* logits_;
  size_t vocab_;
  int32_t* ids_;
  double* probs_;
  size_t n_ = 0;                // ids_[0, n_) are the candidates
  float max_logit_ = 0;         // over the whole row, set by gather()
  bool inf_max_ = false;
  double inv_t_ = 1.0;
  bool sorted_ = false;         // ids_[0, n_) best first; otherwise in id order, which is just as deterministic
  double nucleus_mass_ = 0.0;   // top_p of the whole mass, when sort_nucleus() measured it
  double total_ = 0.0;          // softmax()'s sum of the weights
};

}  // namespace neoserve
