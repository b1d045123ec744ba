// Sampler tests: greedy and its tie rule, seeded determinism, the empirical
// distribution of each filter against probabilities computed here
// independently, penalties, parameter validation and non-finite logits.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numeric>
#include <random>
#include <vector>

#include "core/error.h"
#include "core/sampling/logprobs.h"
#include "core/sampling/rng.h"
#include "core/sampling/sampler.h"
#include "harness.h"

using neoserve::ErrorCode;
using neoserve::Sampler;
using neoserve::SamplingParams;
using neoserve::token_logprobs;
using neoserve::TokenLogprobs;

namespace {

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr float kInf = std::numeric_limits<float>::infinity();

SamplingParams make(float temperature, int32_t top_k = 0, float top_p = 1.0f, float min_p = 0.0f,
                    uint64_t seed = 1234) {
  SamplingParams p;
  p.temperature = temperature;
  p.top_k = top_k;
  p.top_p = top_p;
  p.min_p = min_p;
  p.seed = seed;
  return p;
}

// The target distribution, computed without the sampler's code: softmax in
// long double, then top-k / top-p / min-p on a stably sorted copy.
std::vector<double> reference(const std::vector<float>& logits, const SamplingParams& p) {
  const size_t n = logits.size();
  std::vector<size_t> ids(n);
  std::iota(ids.begin(), ids.end(), 0);
  std::stable_sort(ids.begin(), ids.end(), [&](size_t a, size_t b) { return logits[a] > logits[b]; });
  if (p.top_k > 0 && static_cast<size_t>(p.top_k) < n) ids.resize(p.top_k);
  long double z = 0;
  std::vector<long double> w(n, 0);
  for (size_t i : ids) z += w[i] = std::exp(static_cast<long double>(logits[i]) / p.temperature);
  for (size_t i : ids) w[i] /= z;
  std::vector<size_t> kept;
  long double cum = 0;
  for (size_t i : ids) {
    kept.push_back(i);
    cum += w[i];
    if (cum >= p.top_p) break;
  }
  const long double pmax = w[ids[0]];
  std::vector<double> out(n, 0.0);
  long double total = 0;
  for (size_t i : kept)
    if (w[i] >= p.min_p * pmax) total += w[i];
  for (size_t i : kept)
    if (w[i] >= p.min_p * pmax) out[i] = static_cast<double>(w[i] / total);
  return out;
}

// Draws `draws` tokens (step 0..draws-1) and compares the frequencies with
// `expected`: max abs error, a chi-square bound, and zero-probability tokens never drawn.
void check_distribution(const std::vector<float>& logits, const SamplingParams& params,
                        const std::vector<double>& expected, std::span<const int32_t> context = {},
                        int32_t num_prompt = 0, int draws = 200000) {
  Sampler sampler(params);
  std::vector<int64_t> counts(logits.size(), 0);
  for (int step = 0; step < draws; ++step) {
    const int32_t t = sampler.sample(logits, context, num_prompt, static_cast<uint64_t>(step));
    CHECK(t >= 0 && static_cast<size_t>(t) < logits.size());
    if (t >= 0 && static_cast<size_t>(t) < logits.size()) ++counts[t];
  }
  double chi2 = 0, max_err = 0;
  int dof = -1;
  for (size_t i = 0; i < logits.size(); ++i) {
    const double e = expected[i] * draws;
    if (expected[i] == 0.0) {
      CHECK_EQ(counts[i], 0);
      continue;
    }
    ++dof;
    chi2 += (counts[i] - e) * (counts[i] - e) / e;
    max_err = std::max(max_err, std::fabs(static_cast<double>(counts[i]) / draws - expected[i]));
  }
  // 5 sigma of a binomial frequency at p = 0.5 over 200k draws is 0.0056.
  CHECK(max_err < 0.0056);
  // Chi-square critical value at p = 1e-4 is below 20 + 2.5*dof for the dof used here.
  if (dof > 0) {
    if (!(chi2 < 20.0 + 2.5 * dof)) CHECK_EQ(chi2, -1.0);  // prints the value
  }
}

// The 8-token row most distribution tests use (distinct logits, no boundary ties).
const std::vector<float> kRow = {1.0f, 2.5f, 0.2f, -1.0f, 2.0f, 0.7f, -3.0f, 1.6f};

// Checks that the sampler's penalised logit of `token` lies in (lo, hi): a probe
// token appended at the end with logit lo must lose to it, one with logit hi must win.
void check_penalised_logit(const std::vector<float>& logits, std::span<const int32_t> context, int32_t num_prompt,
                           SamplingParams params, int32_t token, float lo, float hi) {
  params.temperature = 0.0f;
  std::vector<float> row = logits;
  for (size_t i = 0; i < row.size(); ++i)
    if (static_cast<int32_t>(i) != token) row[i] = -1000.0f;  // only `token` and the probe compete
  row.push_back(lo);
  Sampler s(params);
  CHECK_EQ(s.sample(row, context, num_prompt, 0), token);
  row.back() = hi;
  CHECK_EQ(s.sample(row, context, num_prompt, 0), static_cast<int32_t>(row.size() - 1));
}

}  // namespace

TEST("sampling.greedy_is_argmax_lowest_id_on_ties") {
  Sampler s(make(0.0f));
  std::vector<float> row = {0.5f, 3.0f, -1.0f, 3.0f, 2.9f};
  CHECK_EQ(s.sample(row, {}, 0, 0), 1);
  CHECK_EQ(s.sample(row, {}, 0, 77), 1);
  std::vector<float> flat(10, 0.25f);
  CHECK_EQ(s.sample(flat, {}, 0, 0), 0);
  // Greedy ignores top-k/top-p/min-p.
  Sampler filtered(make(0.0f, 3, 0.1f, 0.9f));
  CHECK_EQ(filtered.sample(row, {}, 0, 5), 1);
  std::vector<float> last = {-5.0f, -4.0f, -3.0f, -2.0f};
  CHECK_EQ(s.sample(last, {}, 0, 0), 3);
}

// Greedy's argmax runs in vector lanes plus a tail: every length around the
// lane width and a full vocabulary, with ties, NaN and infinities placed at
// random, against the one-loop definition.
TEST("sampling.greedy_matches_reference_argmax_at_every_length") {
  std::mt19937 gen(7);
  std::uniform_real_distribution<float> u(-4.0f, 4.0f);
  std::uniform_int_distribution<int> pick(0, 19);
  auto reference_argmax = [](const std::vector<float>& row) {
    int32_t best = 0;
    float value = -kInf;
    for (size_t i = 0; i < row.size(); ++i)
      if (row[i] > value) value = row[i], best = static_cast<int32_t>(i);
    return best;
  };
  Sampler greedy(make(0.0f));
  for (size_t n : {1, 2, 15, 16, 17, 31, 32, 33, 47, 64, 100, 50259})
    for (int trial = 0; trial < 40; ++trial) {
      std::vector<float> row(n);
      for (float& v : row) {
        const int k = pick(gen);
        v = k == 0 ? kNaN : k == 1 ? -kInf : k == 2 && trial % 7 == 0 ? kInf : std::round(u(gen) * 2.0f) / 2.0f;
      }
      CHECK_EQ(greedy.sample(row, {}, 0, trial), reference_argmax(row));
    }
}

TEST("sampling.top_k_one_equals_greedy") {
  uint64_t state = 42;
  for (int trial = 0; trial < 200; ++trial) {
    std::vector<float> row(257);
    for (float& l : row) l = static_cast<float>(neoserve::counter_uniform(7, state++) * 20.0 - 10.0);
    if (trial % 10 == 0) row[trial % 257] = row[(trial + 3) % 257] = 50.0f;  // a tie at the top
    Sampler greedy(make(0.0f));
    Sampler k1(make(trial % 2 ? 0.7f : 1.5f, 1, 1.0f, 0.0f, static_cast<uint64_t>(trial)));
    const int32_t g = greedy.sample(row, {}, 0, trial);
    CHECK_EQ(k1.sample(row, {}, 0, static_cast<uint64_t>(trial)), g);
    CHECK_EQ(k1.sample(row, {}, 0, static_cast<uint64_t>(trial) + 1000), g);
  }
}

TEST("sampling.same_seed_and_step_same_token") {
  std::vector<float> row(100, 0.0f);  // uniform over 100 tokens
  Sampler a(make(1.0f, 0, 1.0f, 0.0f, 99));
  Sampler b(make(1.0f, 0, 1.0f, 0.0f, 99));
  Sampler other(make(1.0f, 0, 1.0f, 0.0f, 100));
  Sampler noise(make(0.8f, 10, 0.9f, 0.05f, 5));
  int differ = 0;
  std::vector<int32_t> first;
  for (uint64_t step = 0; step < 1000; ++step) {
    const int32_t ta = a.sample(row, {}, 0, step);
    // Whatever else is sampled in between (another request of the "batch") changes nothing.
    (void)noise.sample(kRow, {}, 0, step * 3 + 1);
    CHECK_EQ(b.sample(row, {}, 0, step), ta);
    CHECK_EQ(a.sample(row, {}, 0, step), ta);
    first.push_back(ta);
    if (other.sample(row, {}, 0, step) != ta) ++differ;
  }
  // Independent seeds agree with probability 1/100 per step.
  CHECK(differ > 950);
  // Steps in reverse order give the same tokens: the draw depends on (seed, step) only.
  Sampler c(make(1.0f, 0, 1.0f, 0.0f, 99));
  for (int step = 999; step >= 0; --step) CHECK_EQ(c.sample(row, {}, 0, step), first[step]);
  // Over many steps a seed does not repeat one token.
  std::vector<int> seen(100, 0);
  for (int32_t t : first) seen[t] = 1;
  CHECK(std::accumulate(seen.begin(), seen.end(), 0) > 90);
}

TEST("sampling.uniform_rng_is_uniform") {
  const int n = 200000;
  std::vector<int> bins(20, 0);
  double mean = 0;
  for (int i = 0; i < n; ++i) {
    const double u = neoserve::counter_uniform(3, i);
    CHECK(u >= 0.0 && u < 1.0);
    ++bins[static_cast<int>(u * 20)];
    mean += u;
  }
  CHECK_NEAR(mean / n, 0.5, 0.004);
  double chi2 = 0;
  for (int b : bins) chi2 += (b - n / 20.0) * (b - n / 20.0) / (n / 20.0);
  CHECK(chi2 < 50.0);
}

TEST("sampling.distribution_temperature") {
  for (float t : {1.0f, 0.5f, 2.0f}) {
    const SamplingParams p = make(t);
    check_distribution(kRow, p, reference(kRow, p));
  }
}

TEST("sampling.distribution_top_k") {
  for (int32_t k : {2, 3, 5}) {
    const SamplingParams p = make(1.0f, k);
    const auto expected = reference(kRow, p);
    CHECK_EQ(std::count_if(expected.begin(), expected.end(), [](double e) { return e > 0; }), k);
    check_distribution(kRow, p, expected);
  }
  // top_k larger than the vocabulary is no filter.
  check_distribution(kRow, make(1.0f, 100), reference(kRow, make(1.0f)));
}

TEST("sampling.distribution_top_p") {
  // Softmax of kRow at T=1: 2.5 -> ~0.37, 2.0 -> ~0.22, 1.6 -> ~0.15, 1.0 -> ~0.08 ...
  for (float top_p : {0.3f, 0.5f, 0.8f, 0.95f}) {
    const SamplingParams p = make(1.0f, 0, top_p);
    check_distribution(kRow, p, reference(kRow, p));
  }
  // Top-p after top-k and temperature.
  const SamplingParams p = make(0.7f, 4, 0.9f);
  check_distribution(kRow, p, reference(kRow, p));
  // A tiny top_p keeps exactly the most likely token.
  const SamplingParams tiny = make(1.0f, 0, 1e-6f);
  const auto e = reference(kRow, tiny);
  CHECK_EQ(e[1], 1.0);
  check_distribution(kRow, tiny, e, {}, 0, 2000);
}

TEST("sampling.distribution_min_p") {
  for (float min_p : {0.1f, 0.3f, 0.7f}) {
    const SamplingParams p = make(1.0f, 0, 1.0f, min_p);
    check_distribution(kRow, p, reference(kRow, p));
  }
  const SamplingParams p = make(1.3f, 6, 0.95f, 0.15f);
  check_distribution(kRow, p, reference(kRow, p));
  // min_p = 1 keeps only the max.
  const SamplingParams one = make(1.0f, 0, 1.0f, 1.0f);
  check_distribution(kRow, one, reference(kRow, one), {}, 0, 2000);
}

TEST("sampling.repetition_penalty_hf_style") {
  SamplingParams p = make(0.0f);
  p.repetition_penalty = 2.0f;
  const std::vector<float> row = {2.0f, -1.0f, 0.8f, 3.0f};
  const std::vector<int32_t> ctx = {0, 0, 1, 0};  // token 0 three times: penalised once
  // Positive logit divided: 2 -> 1.
  check_penalised_logit(row, ctx, 2, p, 0, 0.98f, 1.02f);
  // Negative logit multiplied: -1 -> -2.
  check_penalised_logit(row, ctx, 2, p, 1, -2.02f, -1.98f);
  // Not in the context: unchanged.
  check_penalised_logit(row, ctx, 2, p, 2, 0.78f, 0.82f);
  check_penalised_logit(row, ctx, 2, p, 3, 2.98f, 3.02f);
  // Prompt tokens count as well as generated ones (num_prompt = all of the context).
  check_penalised_logit(row, ctx, 4, p, 0, 0.98f, 1.02f);
  // A penalty below 1 rewards: 2 / 0.5 = 4.
  p.repetition_penalty = 0.5f;
  check_penalised_logit(row, ctx, 0, p, 0, 3.98f, 4.02f);
  // Greedy flip: 3.0 is the argmax, but penalised to 1.5 it loses to 2.0.
  SamplingParams q = make(0.0f);
  q.repetition_penalty = 2.0f;
  Sampler s(q);
  const std::vector<int32_t> three = {3};
  CHECK_EQ(s.sample(row, {}, 0, 0), 3);
  CHECK_EQ(s.sample(row, three, 1, 0), 0);
  // And the whole distribution at T = 1 matches the penalised logits.
  q.temperature = 1.0f;
  const std::vector<float> penalised = {1.0f, -2.0f, 0.8f, 3.0f};
  check_distribution(row, q, reference(penalised, make(1.0f)), ctx, 2);
}

TEST("sampling.frequency_presence_penalties_openai_style") {
  SamplingParams p = make(0.0f);
  p.frequency_penalty = 0.5f;
  p.presence_penalty = 0.25f;
  const std::vector<float> row = {1.0f, 1.0f, 1.0f, 1.0f, 1.0f};
  // Prompt: [1, 1, 4]; generated: [2, 2, 3, 2].
  const std::vector<int32_t> ctx = {1, 1, 4, 2, 2, 3, 2};
  // Token 2: generated 3 times: 1 - 3*0.5 - 0.25 = -0.75.
  check_penalised_logit(row, ctx, 3, p, 2, -0.77f, -0.73f);
  // Token 3: once: 1 - 0.5 - 0.25 = 0.25.
  check_penalised_logit(row, ctx, 3, p, 3, 0.23f, 0.27f);
  // Prompt-only tokens and unseen tokens: unchanged.
  check_penalised_logit(row, ctx, 3, p, 1, 0.98f, 1.02f);
  check_penalised_logit(row, ctx, 3, p, 4, 0.98f, 1.02f);
  check_penalised_logit(row, ctx, 3, p, 0, 0.98f, 1.02f);
  // Negative penalties encourage.
  SamplingParams neg = make(0.0f);
  neg.presence_penalty = -1.0f;
  check_penalised_logit(row, ctx, 3, neg, 3, 1.98f, 2.02f);
  check_penalised_logit(row, ctx, 3, neg, 2, 1.98f, 2.02f);
  // Combined with repetition (applied first): token 2: 1/2 - 1.5 - 0.25 = -1.25.
  SamplingParams all = p;
  all.repetition_penalty = 2.0f;
  check_penalised_logit(row, ctx, 3, all, 2, -1.27f, -1.23f);
  check_penalised_logit(row, ctx, 3, all, 1, 0.48f, 0.52f);
  // Distribution at T = 1 over the penalised row.
  all.temperature = 1.0f;
  const std::vector<float> penalised = {1.0f, 0.5f, -1.25f, -0.25f, 0.5f};
  check_distribution(row, all, reference(penalised, make(1.0f)), ctx, 3);
  // Repeated calls leave no state behind: the same call gives the same answer.
  Sampler s(all);
  const int32_t a = s.sample(row, ctx, 3, 11);
  const std::vector<int32_t> other_ctx = {0, 0, 0, 0};
  (void)s.sample(row, other_ctx, 0, 11);
  CHECK_EQ(s.sample(row, ctx, 3, 11), a);
}

TEST("sampling.validate_rejects_bad_parameters") {
  const int32_t vocab = 100;
  SamplingParams ok;
  ok.stop_token_ids = {0, 99};
  ok.validate(vocab);  // must not throw
  SamplingParams edge = make(0.0f, 0, 1.0f, 1.0f);
  edge.frequency_penalty = -2.0f;
  edge.validate(vocab);

  auto bad = [&](auto mutate) {
    SamplingParams p;
    mutate(p);
    return p;
  };
  const ErrorCode inv = ErrorCode::InvalidRequest;
  CHECK_THROWS(bad([](SamplingParams& p) { p.temperature = -0.1f; }).validate(vocab), inv, "temperature");
  CHECK_THROWS(bad([](SamplingParams& p) { p.temperature = kNaN; }).validate(vocab), inv, "temperature");
  CHECK_THROWS(bad([](SamplingParams& p) { p.temperature = kInf; }).validate(vocab), inv, "temperature");
  CHECK_THROWS(bad([](SamplingParams& p) { p.top_k = -1; }).validate(vocab), inv, "top_k");
  CHECK_THROWS(bad([](SamplingParams& p) { p.top_p = 0.0f; }).validate(vocab), inv, "top_p");
  CHECK_THROWS(bad([](SamplingParams& p) { p.top_p = 1.01f; }).validate(vocab), inv, "top_p");
  CHECK_THROWS(bad([](SamplingParams& p) { p.top_p = kNaN; }).validate(vocab), inv, "top_p");
  CHECK_THROWS(bad([](SamplingParams& p) { p.min_p = -0.01f; }).validate(vocab), inv, "min_p");
  CHECK_THROWS(bad([](SamplingParams& p) { p.min_p = 1.5f; }).validate(vocab), inv, "min_p");
  CHECK_THROWS(bad([](SamplingParams& p) { p.min_p = kNaN; }).validate(vocab), inv, "min_p");
  CHECK_THROWS(bad([](SamplingParams& p) { p.repetition_penalty = 0.0f; }).validate(vocab), inv,
               "repetition_penalty");
  CHECK_THROWS(bad([](SamplingParams& p) { p.repetition_penalty = -1.0f; }).validate(vocab), inv,
               "repetition_penalty");
  CHECK_THROWS(bad([](SamplingParams& p) { p.repetition_penalty = kInf; }).validate(vocab), inv,
               "repetition_penalty");
  CHECK_THROWS(bad([](SamplingParams& p) { p.frequency_penalty = kInf; }).validate(vocab), inv,
               "frequency_penalty");
  CHECK_THROWS(bad([](SamplingParams& p) { p.frequency_penalty = kNaN; }).validate(vocab), inv,
               "frequency_penalty");
  CHECK_THROWS(bad([](SamplingParams& p) { p.presence_penalty = -kInf; }).validate(vocab), inv,
               "presence_penalty");
  CHECK_THROWS(bad([](SamplingParams& p) { p.stop_token_ids = {5, 100}; }).validate(vocab), inv,
               "stop_token_ids");
  CHECK_THROWS(bad([](SamplingParams& p) { p.stop_token_ids = {-1}; }).validate(vocab), inv, "stop_token_ids");
}

TEST("sampling.is_stop") {
  SamplingParams p;
  p.stop_token_ids = {2, 7};
  Sampler s(p);
  CHECK(s.is_stop(2));
  CHECK(s.is_stop(7));
  CHECK(!s.is_stop(3));
  CHECK(!Sampler(SamplingParams{}).is_stop(0));
}

TEST("sampling.nan_and_inf_logits") {
  const std::vector<float> row = {kNaN, 1.0f, kNaN, 2.0f, -kInf};
  Sampler greedy(make(0.0f));
  CHECK_EQ(greedy.sample(row, {}, 0, 0), 3);
  // Sampling never picks a NaN or -inf token; the rest keep their softmax weights.
  const std::vector<double> expected = {0.0, 1.0 / (1.0 + std::exp(1.0)), 0.0, std::exp(1.0) / (1.0 + std::exp(1.0)),
                                        0.0};
  check_distribution(row, make(1.0f), expected, {}, 0, 50000);
  check_distribution(row, make(1.0f, 0, 0.9f, 0.1f), reference({-kInf, 1.0f, -kInf, 2.0f, -kInf},
                                                               make(1.0f, 0, 0.9f, 0.1f)), {}, 0, 50000);
  // Everything NaN / -inf: no crash, a valid id (argmax of the raw row falls back to 0).
  const std::vector<float> dead = {kNaN, -kInf, kNaN};
  CHECK_EQ(greedy.sample(dead, {}, 0, 0), 0);
  Sampler sampled(make(0.9f, 2, 0.5f, 0.5f));
  CHECK_EQ(sampled.sample(dead, {}, 0, 3), 0);
  // +inf logits share the mass equally and nothing else is drawn.
  const std::vector<float> inf_row = {0.0f, kInf, 5.0f, kInf};
  CHECK_EQ(greedy.sample(inf_row, {}, 0, 0), 1);
  check_distribution(inf_row, make(1.0f), {0.0, 0.5, 0.0, 0.5}, {}, 0, 50000);
  // Penalties on non-finite logits stay non-finite without turning into NaN.
  SamplingParams pen = make(1.0f);
  pen.repetition_penalty = 1.3f;
  pen.frequency_penalty = 2.0f;
  const std::vector<int32_t> ctx = {0, 1, 2, 3, 4};
  const std::vector<float> penalised = {-kInf, 1.0f / 1.3f - 2.0f, -kInf, 2.0f / 1.3f - 2.0f, -kInf};
  check_distribution(row, pen, reference(penalised, make(1.0f)), ctx, 0, 50000);
  // Out-of-range context ids are ignored.
  const std::vector<int32_t> junk = {-5, 1000};
  CHECK_EQ(Sampler(pen).sample(row, junk, 0, 0) % 2, 1);
}

TEST("sampling.large_vocab_steady_state") {
  // A realistic row: 32k tokens, all filters on, many steps; results stay in range and seeded.
  std::vector<float> row(32000);
  for (size_t i = 0; i < row.size(); ++i) row[i] = static_cast<float>(neoserve::counter_uniform(1, i) * 8.0);
  Sampler s(make(0.8f, 40, 0.95f, 0.05f, 7));
  Sampler t(make(0.8f, 40, 0.95f, 0.05f, 7));
  std::vector<int32_t> ctx;
  for (int step = 0; step < 300; ++step) {
    const int32_t a = s.sample(row, ctx, 0, step);
    CHECK(a >= 0 && a < 32000);
    CHECK_EQ(t.sample(row, ctx, 0, step), a);
    ctx.push_back(a);
  }
}

// Log probabilities against a direct double-precision log-softmax: the sampled
// token's, the top alternatives in order (ties to the lower id), NaN as -inf.
TEST("sampling.token_logprobs_match_a_double_log_softmax") {
  std::vector<float> row(1000);
  for (size_t i = 0; i < row.size(); ++i) row[i] = static_cast<float>(std::sin(0.37 * static_cast<double>(i)) * 8.0);
  row[10] = row[20] = 9.5f;  // a tie at the top: 10 comes first
  row[30] = std::numeric_limits<float>::quiet_NaN();
  double z = 0;
  for (float x : row) z += std::isnan(x) ? 0.0 : std::exp(static_cast<double>(x));
  auto reference = [&](int32_t id) { return std::isnan(row[id]) ? -INFINITY : static_cast<double>(row[id]) - std::log(z); };
  const TokenLogprobs lp = token_logprobs(row, 123, 5);
  CHECK(std::fabs(lp.logprob - reference(123)) < 1e-5);
  CHECK_EQ(lp.top_ids.size(), 5u);
  CHECK_EQ(lp.top_ids[0], 10);
  CHECK_EQ(lp.top_ids[1], 20);
  std::vector<int32_t> order(row.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = static_cast<int32_t>(i);
  std::stable_sort(order.begin(), order.end(), [&](int32_t a, int32_t b) { return reference(a) > reference(b); });
  for (int i = 0; i < 5; ++i) {
    CHECK_EQ(lp.top_ids[i], order[i]);
    CHECK(std::fabs(lp.top_logprobs[i] - reference(order[i])) < 1e-5);
  }
  CHECK(std::isinf(token_logprobs(row, 30, 0).logprob));
  CHECK(token_logprobs(row, 0, 0).top_ids.empty());
  CHECK_EQ(token_logprobs(std::vector<float>{1.0f, 2.0f}, 0, 20).top_ids.size(), 2u);  // no more than the row has
}
