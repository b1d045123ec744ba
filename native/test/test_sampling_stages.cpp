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
  CHECK_EQ(s.c.gather(1.0f, true), 3u);
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
    CHECK_EQ(s.c.gather(1.0f, true), kRow.size());
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
  // 300 candidates: ten strong ones hold almost all the mass, so only they are sorted.
  std::vector<float> row(300, -5.0f);
  for (int i = 0; i < 10; ++i) row[29 * i + 3] = 10.0f - 0.1f * static_cast<float>(i);
  Stages s(row);
  s.c.gather(1.0f, true);
  s.c.sort_nucleus(0.9f);
  CHECK(s.c.sorted());
  CHECK_EQ(s.c.size(), 10u);  // the bins that hold the nucleus: the ten strong ones
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
    s.c.gather(t, true);
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

TEST("sampling.stage_gather_drops_only_what_can_never_be_drawn") {
  // A row of weight-0 tokens (more than 60 temperatures below the max) around a
  // few live ones: without them the chain draws exactly what it draws with them.
  std::vector<float> row(5000);
  for (size_t i = 0; i < row.size(); ++i) row[i] = -80.0f + static_cast<float>((i * 7919) % 1000) * 0.06f;  // 50 to 110 below the max
  for (int i = 0; i < 12; ++i) row[411 * i + 5] = 30.0f - 0.7f * static_cast<float>(i);
  row[77] = kNaN;
  for (float t : {0.5f, 1.0f, 1.5f})
    for (float top_p : {0.5f, 0.95f, 1.0f})
      for (float min_p : {0.0f, 0.05f}) {
        Stages all(row), few(row);
        const size_t n_all = all.c.gather(t, true), n_few = few.c.gather(t, false);
        CHECK_EQ(n_all, row.size() - 1);
        CHECK(n_few < n_all);
        CHECK(n_few >= 1u);
        for (Stages* s : {&all, &few}) {
          s->c.sort_nucleus(top_p);
          s->c.softmax();
          s->c.top_p(top_p);
          s->c.min_p(min_p);
        }
        for (uint64_t step = 0; step < 200; ++step) CHECK_EQ(all.c.draw(3, step), few.c.draw(3, step));
      }
  // At t = 1 the tokens 60 below the max are dropped, those within it kept.
  Stages s({10.0f, -49.9f, -50.1f});
  s.c.gather(1.0f, false);
  CHECK((s.left() == std::vector<int32_t>{0, 1}));
}
