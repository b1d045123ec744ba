#include "logprobs.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace neoserve {

namespace {
float finite_or_floor(float x) { return std::isnan(x) ? -std::numeric_limits<float>::infinity() : x; }
}  // namespace

TokenLogprobs token_logprobs(std::span<const float> logits, int32_t token, int32_t top) {
  float max = -std::numeric_limits<float>::infinity();
  for (float x : logits) max = std::max(max, finite_or_floor(x));
  double sum = 0.0;  // in double: a 150k-entry row loses no small terms
  for (float x : logits) sum += std::exp(static_cast<double>(finite_or_floor(x)) - max);
  const double log_z = static_cast<double>(max) + std::log(sum);
  auto logprob = [&](int32_t id) { return static_cast<float>(static_cast<double>(finite_or_floor(logits[id])) - log_z); };

  TokenLogprobs out;
  out.logprob = logprob(token);
  const int32_t k = std::min<int32_t>(top, static_cast<int32_t>(logits.size()));
  if (k <= 0) return out;
  // A min-heap of the k best so far: one pass, O(vocab log k).
  auto better = [&](int32_t a, int32_t b) {
    const float la = finite_or_floor(logits[a]), lb = finite_or_floor(logits[b]);
    return la > lb || (la == lb && a < b);
  };
  std::vector<int32_t> heap;
  heap.reserve(static_cast<size_t>(k) + 1);
  for (int32_t id = 0; id < static_cast<int32_t>(logits.size()); ++id) {
    if (static_cast<int32_t>(heap.size()) < k) {
      heap.push_back(id);
      std::push_heap(heap.begin(), heap.end(), better);
    } else if (better(id, heap.front())) {
      std::pop_heap(heap.begin(), heap.end(), better);
      heap.back() = id;
      std::push_heap(heap.begin(), heap.end(), better);
    }
  }
  std::sort(heap.begin(), heap.end(), better);
  out.top_ids = heap;
  for (int32_t id : heap) out.top_logprobs.push_back(logprob(id));
  return out;
}

}  // namespace neoserve
