// The sampler's stages one at a time (candidates.h): which candidates each
// keeps, in what order, for rows whose softmax is worked out by hand here.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <utility>
#include <vector>

#include "core/sampling/candidates.h"
#include "harness.h"

namespace {

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr float kInf = std::numeric_limits<float>::infinity();

// The 8-token row of the sampler's distribution tests.
const std::vector<float> kRow = {1.0f, 2.5f, 0.2f, -1.0f, 2.0f, 0.7f, -3.0f, 1.6f};

}  // namespace

namespace {

// Runs the stages of a chain by hand over `row` and returns the candidate ids left, best first when sorted.
struct Stages {
  std::vector<float> row;
  std::vector<int32_t> ids;
  std::vector<double> probs;
  neoserve::Candidates c;
  explicit Stages(std::vector<float> r)
      : row(std::move(r)), ids(row.size()), probs(row.size()), c(row, ids, probs) {}
  std::vector<int32_t> left() const { return {c.ids().begin(), c.ids().end()}; }
};

}  // namespace

TEST("sampling.stage_gather_drops_nan_and_minus_inf") {
  Stages s({kNaN, 1.0f, -kInf, 2.0f, kInf});
  CHECK_EQ(s.c.gather(), 3u);
  CHECK((s.left() == std::vector<int32_t>{1, 3, 4}));
  CHECK(!s.c.sorted());
}

TEST("sampling.stage_top_k_then_top_p_keeps_the_nucleus_of_the_k_best") {
  // kRow best first: 2.5 (id 1), 2.0 (4), 1.6 (7), 1.0 (0), 0.7 (5) ...; top-4 weights at T = 1,
  // relative to the max: 1, e^-0.5, e^-0.9, e^-1.5 (total 2.236).
  for (auto [top_p, kept] : {std::pair{0.7f, std::vector<int32_t>{1, 4}},       // 1.607 >= 0.7 * 2.236
                             std::pair{0.8f, std::vector<int32_t>{1, 4, 7}},    // 1.607 < 1.789 <= 2.013
                             std::pair{1.0f, std::vector<int32_t>{1, 4, 7, 0}}}) {
    Stages s(kRow);
    CHECK_EQ(s.c.gather(), kRow.size());
    s.c.temperature(1.0f);
    s.c.top_k(4);
    CHECK(s.c.sorted());
    CHECK((s.left() == std::vector<int32_t>{1, 4, 7, 0}));
    s.c.sort_nucleus(top_p);  // already sorted by top-k: nothing to do
    s.c.softmax();
    CHECK_EQ(s.c.probs()[0], 1.0);
    CHECK_NEAR(s.c.probs()[1], std::exp(-0.5), 1e-6);
    s.c.top_p(top_p);
    CHECK(s.left() == kept);
  }
}

TEST("sampling.stage_nucleus_sorts_only_as_far_as_it_reaches") {
  // 300 candidates: ten strong ones hold almost all the mass, so the first 64 suffice.
  std::vector<float> row(300, -5.0f);
  for (int i = 0; i < 10; ++i) row[29 * i + 3] = 10.0f - 0.1f * static_cast<float>(i);
  Stages s(row);
  s.c.gather();
  s.c.temperature(1.0f);
  s.c.sort_nucleus(0.9f);
  CHECK(s.c.sorted());
  CHECK_EQ(s.c.size(), 64u);
  for (int i = 0; i < 10; ++i) CHECK_EQ(s.c.ids()[i], 29 * i + 3);
  s.c.softmax();
  s.c.top_p(0.9f);
  CHECK(s.c.size() < 10u);
  CHECK_EQ(s.c.ids()[0], 3);
}

TEST("sampling.stage_min_p_keeps_order_and_widens_with_temperature") {
  for (auto [t, kept] : {std::pair{1.0f, std::vector<int32_t>{1, 4}},        // e^-0.9 = 0.41 < 0.5
                         std::pair{2.0f, std::vector<int32_t>{1, 4, 7}}}) {  // e^-0.45 = 0.64, e^-0.75 = 0.47
    Stages s(kRow);
    s.c.gather();
    s.c.temperature(t);
    s.c.top_k(5);
    s.c.softmax();
    s.c.min_p(0.5f);
    CHECK(s.left() == kept);
    // The draw only ever returns a kept candidate, and depends on (seed, step) alone.
    for (uint64_t step = 0; step < 50; ++step) {
      const int32_t d = s.c.draw(9, step);
      CHECK(std::find(kept.begin(), kept.end(), d) != kept.end());
      CHECK_EQ(s.c.draw(9, step), d);
    }
  }
}
