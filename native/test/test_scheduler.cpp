#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <map>
#include <mutex>
#include <random>
#include <set>

#include "core/scheduler/scheduler.h"
#include "counting_provider.h"
#include "harness.h"

using namespace neoserve;

namespace neoserve {
std::ostream& operator<<(std::ostream& os, FinishReason r) { return os << finish_reason_name(r); }
}  // namespace neoserve

namespace {

// Collects events per request; wait() blocks until `n` requests have finished.
struct Collector : EventSink {
  std::mutex m;
  std::condition_variable cv;
  std::map<RequestId, std::vector<int32_t>> tokens;
  std::map<RequestId, FinishReason> finish;
  std::map<RequestId, std::string> errors;
  std::vector<RequestId> order;  // final events, in delivery order
  int batches = 0;

  void deliver(EventBatch&& b) override {
    std::lock_guard lock(m);
    ++batches;
    for (const TokenEvent& e : b.events) {
      if (e.token >= 0) tokens[e.id].push_back(e.token);
      if (e.finish != FinishReason::None) {
        CHECK(finish.count(e.id) == 0);  // exactly one final event
        finish[e.id] = e.finish;
        order.push_back(e.id);
      }
    }
    for (auto& [id, msg] : b.errors) errors[id] = msg;
    cv.notify_all();
  }
  bool wait(size_t n, int seconds = 10) {
    std::unique_lock lock(m);
    return cv.wait_for(lock, std::chrono::seconds(seconds), [&] { return finish.size() >= n; });
  }
  bool finished(RequestId id) {
    std::lock_guard lock(m);
    return finish.count(id) > 0;
  }
};

// A test-controlled scheduler clock (ms).
struct FakeClock {
  std::atomic<double> t{0};
  SchedulerClock fn() {
    return [this] { return t.load(); };
  }
};

// Holds the provider inside its first step until released (on_step hook), so
// a test can queue requests behind a known running one.
struct Gate {
  std::mutex m;
  std::condition_variable cv;
  bool entered = false, open = false;
  void hook() {
    std::unique_lock lock(m);
    entered = true;
    cv.notify_all();
    cv.wait(lock, [&] { return open; });
  }
  bool wait_entered() {
    std::unique_lock lock(m);
    return cv.wait_for(lock, std::chrono::seconds(10), [&] { return entered; });
  }
  void release() {
    std::lock_guard lock(m);
    open = true;
    cv.notify_all();
  }
};

GenerationRequest greedy(std::vector<int32_t> prompt, int32_t max_tokens) {
  GenerationRequest r;
  r.prompt = std::move(prompt);
  r.max_tokens = max_tokens;
  r.sampling.temperature = 0;
  return r;
}

// What CountingProvider's greedy chain gives for a prompt, computed independently.
std::vector<int32_t> expected_chain(const std::vector<int32_t>& prompt, int32_t n, int32_t vocab) {
  std::vector<int32_t> out;
  int32_t last = prompt.back();
  int64_t pos = static_cast<int64_t>(prompt.size()) - 1;
  for (int32_t i = 0; i < n; ++i) {
    last = static_cast<int32_t>((last + pos) % vocab);
    out.push_back(last);
    ++pos;
  }
  return out;
}

}  // namespace

TEST("scheduler.generates_greedy_chain_and_frees_blocks") {
  auto provider = std::make_shared<test::CountingProvider>(97, 256, 64, 4);
  Collector sink;
  Scheduler sched(provider, sink, {});
  const RequestId a = sched.submit(greedy({5, 6, 7}, 10));
  CHECK(sink.wait(1));
  CHECK_EQ(sink.finish[a], FinishReason::Length);
  CHECK(sink.tokens[a] == expected_chain({5, 6, 7}, 10, 97));
  CHECK_EQ(sched.stats().kv_blocks_used, 0);
}

TEST("scheduler.batches_many_requests_and_chunks_long_prompts") {
  auto provider = std::make_shared<test::CountingProvider>(101, 1024, 512, 8);
  provider->step_delay = std::chrono::milliseconds(1);
  Collector sink;
  SchedulerOptions opts;
  opts.max_batch_size = 8;
  opts.max_batch_tokens = 32;
  Scheduler sched(provider, sink, opts);
  std::map<RequestId, std::vector<int32_t>> prompts;
  for (int i = 0; i < 20; ++i) {
    std::vector<int32_t> p(1 + (i * 13) % 90, i);  // up to 90 tokens: chunked at 32
    prompts[sched.submit(greedy(p, 5 + i % 7))] = p;
  }
  CHECK(sink.wait(20));
  for (auto& [id, p] : prompts) {
    CHECK_EQ(sink.finish[id], FinishReason::Length);
    CHECK(sink.tokens[id] == expected_chain(p, 5 + static_cast<int32_t>((p[0]) % 7), 101));
  }
  CHECK(provider->max_tokens_seen <= 32);
  CHECK(provider->max_seqs_seen <= 8);
  CHECK(provider->max_seqs_seen > 1);
  CHECK(sink.batches < 20 * 8);  // events cross in batches, not one call per token
  CHECK_EQ(sched.stats().kv_blocks_used, 0);
}

TEST("scheduler.stop_token_ends_with_stop") {
  auto provider = std::make_shared<test::CountingProvider>(50, 256, 64, 4);
  Collector sink;
  Scheduler sched(provider, sink, {});
  GenerationRequest r = greedy({3}, 40);
  const auto chain = expected_chain({3}, 40, 50);
  r.sampling.stop_token_ids = {chain[4]};
  const RequestId id = sched.submit(r);
  CHECK(sink.wait(1));
  CHECK_EQ(sink.finish[id], FinishReason::Stop);
  CHECK(sink.tokens[id] == std::vector<int32_t>(chain.begin(), chain.begin() + 5));
}

TEST("scheduler.cancel_waiting_and_running_frees_everything") {
  auto provider = std::make_shared<test::CountingProvider>(50, 4096, 4096, 16);
  provider->step_delay = std::chrono::milliseconds(2);
  Collector sink;
  SchedulerOptions opts;
  opts.max_batch_size = 2;  // the rest wait
  Scheduler sched(provider, sink, opts);
  std::vector<RequestId> ids;
  for (int i = 0; i < 6; ++i) ids.push_back(sched.submit(greedy({1, 2, 3}, 1000)));
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  for (RequestId id : ids) sched.cancel(id);
  CHECK(sink.wait(6));
  for (RequestId id : ids) CHECK_EQ(sink.finish[id], FinishReason::Cancelled);
  CHECK_EQ(sched.stats().kv_blocks_used, 0);
  CHECK_EQ(sched.stats().running + sched.stats().waiting, 0);
}

TEST("scheduler.shutdown_ends_everything_once") {
  auto provider = std::make_shared<test::CountingProvider>(50, 4096, 4096, 16);
  provider->step_delay = std::chrono::milliseconds(2);
  Collector sink;
  SchedulerOptions opts;
  opts.max_batch_size = 3;
  auto sched = std::make_unique<Scheduler>(provider, sink, opts);
  for (int i = 0; i < 7; ++i) sched->submit(greedy({1, 2}, 3000));
  std::this_thread::sleep_for(std::chrono::milliseconds(10));
  sched->shutdown();
  CHECK_EQ(sink.finish.size(), 7u);
  for (auto& [id, r] : sink.finish) CHECK_EQ(r, FinishReason::Cancelled);
  CHECK_THROWS(sched->submit(greedy({1}, 1)), ErrorCode::Disposed, "disposed");
}

TEST("scheduler.rejects_bad_requests_at_submit") {
  auto provider = std::make_shared<test::CountingProvider>(50, 64, 8, 4);
  Collector sink;
  Scheduler sched(provider, sink, {});
  CHECK_THROWS(sched.submit(greedy({}, 4)), ErrorCode::InvalidRequest, "no tokens");
  CHECK_THROWS(sched.submit(greedy({50}, 4)), ErrorCode::InvalidRequest, "outside the vocabulary");
  CHECK_THROWS(sched.submit(greedy({-1}, 4)), ErrorCode::InvalidRequest, "outside the vocabulary");
  CHECK_THROWS(sched.submit(greedy(std::vector<int32_t>(64, 1), 4)), ErrorCode::InvalidRequest, "context");
  CHECK_THROWS(sched.submit(greedy({1}, 0)), ErrorCode::InvalidRequest, "maxTokens");
  CHECK_THROWS(sched.submit(greedy(std::vector<int32_t>(40, 1), 20)), ErrorCode::InvalidRequest, "KV blocks");
  GenerationRequest bad = greedy({1}, 4);
  bad.sampling.top_p = 0;
  CHECK_THROWS(sched.submit(bad), ErrorCode::InvalidRequest, "top_p");
}

TEST("scheduler.context_end_finishes_with_length") {
  auto provider = std::make_shared<test::CountingProvider>(50, 16, 64, 4);
  Collector sink;
  Scheduler sched(provider, sink, {});
  const RequestId id = sched.submit(greedy(std::vector<int32_t>(10, 2), 100));
  CHECK(sink.wait(1));
  CHECK_EQ(sink.finish[id], FinishReason::Length);
  CHECK_EQ(sink.tokens[id].size(), 6u);  // 10 prompt + 6 generated fill the 16 positions
}

TEST("scheduler.queue_full_at_submit") {
  auto provider = std::make_shared<test::CountingProvider>(50, 4096, 4096, 16);
  Gate gate;
  provider->on_step = [&](std::span<const SeqStep>) { gate.hook(); };
  Collector sink;
  SchedulerOptions opts;
  opts.max_batch_size = 1;
  opts.max_queue_size = 2;
  Scheduler sched(provider, sink, opts);
  const RequestId a = sched.submit(greedy({1, 2}, 3));
  CHECK(gate.wait_entered());  // a is running: the queue is empty
  const RequestId b = sched.submit(greedy({1, 2}, 3));
  const RequestId c = sched.submit(greedy({1, 2}, 3));
  CHECK_THROWS(sched.submit(greedy({1, 2}, 3)), ErrorCode::QueueFull, "queue");
  CHECK_THROWS(sched.submit(greedy({1, 2}, 3)), ErrorCode::QueueFull, "queue");
  CHECK_EQ(sched.stats().rejected_queue_full, 2u);
  CHECK_EQ(sched.stats().waiting, 2);
  gate.release();
  CHECK(sink.wait(3));
  for (RequestId id : {a, b, c}) CHECK_EQ(sink.finish[id], FinishReason::Length);
  CHECK_EQ(sink.finish.size(), 3u);
  // Room again once the queue drains.
  const RequestId d = sched.submit(greedy({1, 2}, 3));
  CHECK(sink.wait(4));
  CHECK_EQ(sink.finish[d], FinishReason::Length);
}

TEST("scheduler.a_burst_an_idle_engine_gathers_counts_against_the_queue_only_beyond_a_batch") {
  auto provider = std::make_shared<test::CountingProvider>(50, 4096, 4096, 16);
  Collector sink;
  SchedulerOptions opts;
  opts.max_batch_size = 2;
  opts.max_queue_size = 1;
  Scheduler sched(provider, sink, opts);
  sched.hold_start();  // the burst waits for its first step: two of it start then, one queues
  for (int i = 0; i < 3; ++i) sched.submit(greedy({1, 2}, 3));
  CHECK_THROWS(sched.submit(greedy({1, 2}, 3)), ErrorCode::QueueFull, "queue");
  sched.release_start();
  CHECK(sink.wait(3));
  CHECK_EQ(sched.stats().rejected_queue_full, 1u);
}

TEST("scheduler.queue_delay_cap_times_out_exactly_the_late_ones") {
  auto provider = std::make_shared<test::CountingProvider>(50, 4096, 4096, 16);
  provider->step_delay = std::chrono::milliseconds(1);
  FakeClock clock;
  Collector sink;
  SchedulerOptions opts;
  opts.max_batch_size = 1;  // the head runs; everything else waits
  opts.max_queue_delay_ms = 100;
  Scheduler sched(provider, sink, opts, clock.fn());
  const RequestId head = sched.submit(greedy({1, 2}, 4000));
  while (provider->steps.load() == 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  clock.t = 10;
  const RequestId b = sched.submit(greedy({3}, 2));
  clock.t = 30;
  const RequestId c = sched.submit(greedy({3}, 2));
  clock.t = 60;
  const RequestId d = sched.submit(greedy({3}, 2));
  clock.t = 125;  // b waited 115 (> 100), c 95, d 65; the head started long ago: no timeout for it
  CHECK(sink.wait(1));
  std::this_thread::sleep_for(std::chrono::milliseconds(30));
  {
    std::lock_guard lock(sink.m);
    CHECK_EQ(sink.finish.size(), 1u);
    CHECK_EQ(sink.finish[b], FinishReason::QueueTimeout);
    CHECK(sink.tokens[b].empty());
  }
  clock.t = 135;  // c waited 105, d 75
  CHECK(sink.wait(2));
  std::this_thread::sleep_for(std::chrono::milliseconds(30));
  CHECK(!sink.finished(d));
  CHECK(!sink.finished(head));
  sched.cancel(head);  // d starts now, 75 ms after submit
  CHECK(sink.wait(4));
  CHECK_EQ(sink.finish[c], FinishReason::QueueTimeout);
  CHECK_EQ(sink.finish[head], FinishReason::Cancelled);
  CHECK_EQ(sink.finish[d], FinishReason::Length);
  CHECK_EQ(sched.stats().finished_queue_timeout, 2u);
  CHECK_EQ(sched.stats().finished_cancelled, 1u);
  CHECK_EQ(sched.stats().kv_blocks_used, 0);
}

TEST("scheduler.deadline_ends_waiting_and_running_requests") {
  auto provider = std::make_shared<test::CountingProvider>(50, 4096, 4096, 16);
  provider->step_delay = std::chrono::milliseconds(1);
  FakeClock clock;
  Collector sink;
  SchedulerOptions opts;
  opts.max_batch_size = 1;
  Scheduler sched(provider, sink, opts, clock.fn());
  GenerationRequest ra = greedy({1, 2}, 4000);
  ra.deadline_ms = 50;
  const RequestId a = sched.submit(ra);
  while (provider->steps.load() == 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  GenerationRequest rb = greedy({3}, 2);
  rb.deadline_ms = 30;
  const RequestId b = sched.submit(rb);
  const RequestId c = sched.submit(greedy({3}, 2));
  clock.t = 40;  // b (waiting) is past its deadline; a is not yet
  CHECK(sink.wait(1));
  CHECK_EQ(sink.finish[b], FinishReason::DeadlineExceeded);
  CHECK(!sink.finished(a));
  clock.t = 60;  // a (running) is past its deadline
  CHECK(sink.wait(3));
  CHECK_EQ(sink.finish[a], FinishReason::DeadlineExceeded);
  CHECK(!sink.tokens[a].empty());
  CHECK_EQ(sink.finish[c], FinishReason::Length);
  CHECK_EQ(sched.stats().finished_deadline, 2u);
  CHECK_EQ(sched.stats().kv_blocks_used, 0);
}

namespace {

// Runs a blocker, queues `reqs` behind it, and returns the order they finish in
// (max_batch_size 1: the admission order).
std::vector<size_t> admission_order(SchedulePolicy policy, const std::vector<GenerationRequest>& reqs) {
  auto provider = std::make_shared<test::CountingProvider>(50, 4096, 4096, 16);
  Gate gate;
  provider->on_step = [&](std::span<const SeqStep>) { gate.hook(); };
  FakeClock clock;  // frozen: deadlines order but never expire
  Collector sink;
  SchedulerOptions opts;
  opts.max_batch_size = 1;
  opts.policy = policy;
  Scheduler sched(provider, sink, opts, clock.fn());
  sched.submit(greedy({1}, 2));
  CHECK(gate.wait_entered());
  std::map<RequestId, size_t> index;
  for (size_t i = 0; i < reqs.size(); ++i) index[sched.submit(reqs[i])] = i;
  gate.release();
  CHECK(sink.wait(reqs.size() + 1));
  std::vector<size_t> order;
  for (RequestId id : sink.order)
    if (index.count(id)) order.push_back(index[id]);
  return order;
}

}  // namespace

TEST("scheduler.priority_admission_order") {
  std::vector<GenerationRequest> reqs;
  for (int32_t p : {0, 5, 1, 5, -1}) {
    reqs.push_back(greedy({2}, 2));
    reqs.back().priority = p;
  }
  CHECK((admission_order(SchedulePolicy::Priority, reqs) == std::vector<size_t>{1, 3, 2, 0, 4}));
  CHECK((admission_order(SchedulePolicy::Fcfs, reqs) == std::vector<size_t>{0, 1, 2, 3, 4}));
}

TEST("scheduler.edf_admission_order") {
  std::vector<GenerationRequest> reqs;
  for (double d : {0.0, 500.0, 100.0, 0.0, 100.0, 50.0}) {
    reqs.push_back(greedy({2}, 2));
    reqs.back().deadline_ms = d;
    reqs.back().priority = static_cast<int32_t>(reqs.size());  // ignored by edf
  }
  CHECK((admission_order(SchedulePolicy::Edf, reqs) == std::vector<size_t>{5, 2, 4, 1, 0, 3}));
}

TEST("scheduler.step_time_model_fits_linear_costs") {
  StepTimeModel m;
  CHECK(!m.ready());
  std::mt19937 rng(7);
  for (int i = 0; i < 200; ++i) {
    const double tokens = 1 + rng() % 512;
    const double attended = tokens * (rng() % 2000);
    m.observe(tokens, attended, 0.5 + 0.01 * tokens + 2e-6 * attended);
  }
  CHECK(m.ready());
  CHECK_NEAR(m.a(), 0.5, 1e-3);
  CHECK_NEAR(m.b(), 0.01, 1e-5);
  CHECK_NEAR(m.c(), 2e-6, 1e-8);
  CHECK_NEAR(m.predict(100, 50000), 0.5 + 1.0 + 0.1, 1e-3);
  CHECK(m.error_ms() < 0.01);
  // The largest chunk within a budget: cost(n) = 0.01 n + 2e-6 (n*pos + n(n+1)/2).
  const int32_t n = m.max_chunk(1000, 4096, 2.0);
  CHECK(m.chunk_cost(1000, n) <= 2.0);
  CHECK(m.chunk_cost(1000, n + 1) > 2.0);
  CHECK_EQ(m.max_chunk(0, 10, 1000.0), 10);
  CHECK_EQ(m.max_chunk(0, 10, 0.0), 0);
  // One wild outlier (a descheduled step) barely moves the fit.
  m.observe(10, 1000, 500.0);
  CHECK_NEAR(m.b(), 0.01, 2e-3);
}

TEST("scheduler.step_time_model_never_predicts_a_step_below_the_fastest_small_one") {
  // Costs that bend (fixed overhead, then cheaper per token at large steps):
  // the line through them crosses zero below small steps, which took 0.3 ms.
  StepTimeModel m;
  for (int i = 0; i < 100; ++i)
    for (double tokens : {1.0, 2.0, 256.0, 512.0}) m.observe(tokens, tokens, tokens <= 2 ? 0.3 + 0.01 * (i % 3) : 0.002 * tokens);
  CHECK(m.a() + m.b() < 0.3);  // the fit alone under-prices a decode
  CHECK_EQ(m.min_tokens(), 1.0);
  CHECK_EQ(m.floor_ms(), 0.3);
  CHECK(m.predict(1, 1) >= 0.3);
  CHECK(m.predict(2, 2) >= 0.3);
  CHECK_NEAR(m.predict(512, 512), m.a() + m.b() * 512 + m.c() * 512, 1e-12);  // above the floor: the fit
  // Fewer tokens than any step seen: no floor applies.
  StepTimeModel big;
  for (int i = 0; i < 20; ++i) big.observe(100 + i, 0, 1.0 + i);
  CHECK(big.predict(1, 0) < big.floor_ms());
}

// Runs steps of different sizes until the step-time model is fitted (at most 20 rounds); returns the requests that finished.
size_t fit_step_times(Scheduler& sched, Collector& sink) {
  size_t done = 0;
  for (int round = 0; round < 20 && !sched.step_time_model().ready(); ++round)
    for (int n : {4, 40, 8, 60, 16, 2, 30, 50, 12, 24}) {
      sched.submit(greedy(std::vector<int32_t>(n, 3), 2));
      CHECK(sink.wait(++done, 60));
    }
  return done;
}

TEST("scheduler.predicted_wait_counts_the_step_under_way_the_queue_and_a_full_batch") {
  StepTimeModel m;
  for (int i = 0; i < 50; ++i) m.observe(1 + (i % 7) * 64, 0, 1.0 + 0.01 * (1 + (i % 7) * 64));  // 1 ms + 0.01 ms/token
  CHECK(m.ready());
  const WaitLimits limits{4, 100};
  CHECK_EQ(predict_wait_ms({}, limits, m), 0.0);             // idle: starts at once
  CHECK_EQ(predict_wait_ms({1, 10, 5, 0, 0}, limits, StepTimeModel{}), -1.0);  // busy, model not fitted
  // 2 running: the step under way (1 + 0.02 ms) only.
  CHECK_NEAR(predict_wait_ms({2, 20, 50, 0, 0}, limits, m), 1.02, 1e-3);
  // 1 queued with 250 prompt tokens beside 2 decodes: ceil(250 / 98) = 3 steps of 100 tokens (2 ms each).
  CHECK_NEAR(predict_wait_ms({2, 20, 50, 1, 250}, limits, m), 1.02 + 3 * 2.0, 1e-3);
  // A full batch (4 running): also the 3 decode steps until the nearest sequence ends.
  CHECK_NEAR(predict_wait_ms({4, 40, 3, 0, 0}, limits, m), 1.04 + 3 * 1.04, 1e-3);
}

TEST("scheduler.stats_predict_a_longer_wait_as_the_queue_grows") {
  auto provider = std::make_shared<test::CountingProvider>(101, 4096, 512, 16);
  provider->busy_base_us = 500;
  provider->busy_per_token_us = 20;
  Collector sink;
  SchedulerOptions opts;
  opts.max_batch_size = 2;
  opts.max_batch_tokens = 64;
  Scheduler sched(provider, sink, opts);
  CHECK_EQ(sched.stats().predicted_wait_ms, 0.0);
  const size_t warm = fit_step_times(sched, sink);
  CHECK(sched.step_time_model().ready());
  const RequestId a = sched.submit(greedy({1, 2, 3}, 400));
  const RequestId b = sched.submit(greedy({1, 2, 3}, 400));
  while (sched.stats().running < 2) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  const double busy = sched.stats().predicted_wait_ms;
  CHECK(busy > 0);
  std::vector<RequestId> queued;
  for (int i = 0; i < 4; ++i) queued.push_back(sched.submit(greedy(std::vector<int32_t>(60, 5), 1)));
  const double longer = sched.stats().predicted_wait_ms;
  CHECK(longer > busy);
  for (RequestId id : queued) sched.cancel(id, FinishReason::Cancelled);
  sched.cancel(a, FinishReason::Cancelled);
  sched.cancel(b, FinishReason::Cancelled);
  CHECK(sink.wait(warm + 6, 60));
}

TEST("scheduler.predicted_service_is_the_prefill_in_chunks_then_a_decode_step_per_token") {
  StepTimeModel m;
  for (int i = 0; i < 50; ++i) m.observe(1 + (i % 7) * 64, 0, 1.0 + 0.01 * (1 + (i % 7) * 64));  // 1 ms + 0.01 ms/token
  // 100 prompt positions beside 2 decodes, 62 a step: 2 chunks of 50 (1.52 ms each); then 9 decode steps of 3 sequences.
  CHECK_NEAR(predict_service_ms({2, 0, 100, 0, 10, 0}, {4, 64}, m), 2 * 1.52 + 9 * 1.03, 1e-2);
  // The batch has 50 prompt positions of its own still to prefill: 0.5 ms more.
  CHECK_NEAR(predict_service_ms({2, 0, 100, 0, 10, 50}, {4, 64}, m), 2 * 1.52 + 9 * 1.03 + 0.5, 1e-2);
  // A full batch still decodes 4 at a time.
  CHECK_NEAR(predict_service_ms({4, 0, 0, 0, 3}, {4, 64}, m), 2 * 1.04, 1e-2);
}

// A scheduler whose steps cost 1 ms + 0.1 ms a token (a 2000-token prompt: ~200 ms of
// prefill), in batches of 4 and 64 tokens, with its step times already fitted.
struct DeadlineRig {
  Collector sink;
  Scheduler sched;
  size_t warm;
  DeadlineRig() : sched(provider(), sink, options()), warm(fit_step_times(sched, sink)) {}

  static std::shared_ptr<test::CountingProvider> provider() {
    auto p = std::make_shared<test::CountingProvider>(101, 4096, 512, 16);
    p->busy_base_us = 1000;
    p->busy_per_token_us = 100;
    return p;
  }
  static SchedulerOptions options() {
    SchedulerOptions opts;
    opts.max_batch_size = 4;
    opts.max_batch_tokens = 64;
    return opts;
  }
};

TEST("scheduler.a_deadline_it_cannot_meet_ends_the_request_at_admission_unstarted") {
  DeadlineRig rig;
  auto& [sink, sched, warm] = rig;
  CHECK(sched.step_time_model().ready());
  GenerationRequest hopeless = greedy({1, 2, 3}, 500);  // 500 steps of >= 1 ms
  hopeless.deadline_ms = 50;
  GenerationRequest fine = greedy({1, 2, 3}, 5);
  fine.deadline_ms = 5000;
  const RequestId h = sched.submit(hopeless);
  const RequestId f = sched.submit(fine);
  CHECK(sink.wait(warm + 2, 60));
  CHECK_EQ(sink.finish[h], FinishReason::DeadlineUnmeetable);
  CHECK(sink.tokens[h].empty());
  CHECK_EQ(sink.finish[f], FinishReason::Length);
  CHECK_EQ(sched.stats().rejected_deadline, 1u);
  CHECK_EQ(sched.stats().kv_blocks_used, 0);
}

TEST("scheduler.a_prompt_whose_prefill_would_make_a_running_request_late_waits_for_it") {
  DeadlineRig rig;
  auto& [sink, sched, warm] = rig;
  CHECK(sched.step_time_model().ready());
  GenerationRequest urgent = greedy({1, 2, 3}, 50);  // ~60 ms alone; ~250 ms beside the long prefill
  urgent.deadline_ms = 150;
  const RequestId a = sched.submit(urgent);
  while (sched.stats().running == 0) std::this_thread::sleep_for(std::chrono::microseconds(100));
  const RequestId b = sched.submit(greedy(std::vector<int32_t>(2000, 5), 2));
  CHECK(sink.wait(warm + 2, 60));
  CHECK_EQ(sink.finish[a], FinishReason::Length);  // met: the long prompt waited
  CHECK_EQ(sink.finish[b], FinishReason::Length);
  CHECK(std::find(sink.order.begin(), sink.order.end(), a) < std::find(sink.order.begin(), sink.order.end(), b));
}

TEST("scheduler.itl_cap_bounds_decode_steps_under_long_prompt") {
  auto provider = std::make_shared<test::CountingProvider>(101, 4096, 2048, 16);
  provider->busy_base_us = 300;
  provider->busy_per_token_us = 20;  // a 1500-token prompt in one step: ~30 ms
  provider->decode_pos_from = 4;     // decode prompts have 4 tokens; the long prompt's chunks are longer
  Collector sink;
  SchedulerOptions opts;
  opts.max_batch_size = 8;
  opts.max_batch_tokens = 2048;
  opts.itl_cap_ms = 3.0;
  Scheduler sched(provider, sink, opts);
  std::vector<RequestId> decoders;
  for (int i = 0; i < 4; ++i) decoders.push_back(sched.submit(greedy({1, 2, 3, i}, 600)));
  while (provider->steps.load() < 30) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  const size_t first_logged = [&] { std::lock_guard l(provider->log_mutex); return provider->step_log.size(); }();
  std::vector<int32_t> long_prompt(1500, 7);
  const RequestId big = sched.submit(greedy(long_prompt, 2));
  CHECK(sink.wait(1, 60));
  CHECK_EQ(sink.finish[big], FinishReason::Length);  // the prompt finished while decodes were running
  CHECK(!sink.finished(decoders[0]));
  const StepTimeModel model = sched.step_time_model();
  CHECK(model.observations() > 30);
  {
    std::lock_guard l(provider->log_mutex);
    int32_t max_prefill_with_decodes = 0;
    int violations = 0;
    for (size_t i = first_logged; i < provider->step_log.size(); ++i) {
      const auto& r = provider->step_log[i];
      if (!r.has_decode) continue;
      max_prefill_with_decodes = std::max(max_prefill_with_decodes, r.tokens);
      // Nominal cost is the provider's true cost (busy-wait); measured time only adds noise on a
      // loaded box. Bound: the cap, plus the 1.5x trust region over a step measured within it.
      if (r.nominal_ms > opts.itl_cap_ms * 1.5) ++violations;
    }
    CHECK_EQ(violations, 0);
    CHECK(max_prefill_with_decodes < 500);  // chunked, not 1500 at once
    CHECK(max_prefill_with_decodes > 4);    // but prefill did share steps with the decodes
  }
  for (RequestId id : decoders) sched.cancel(id);
  CHECK(sink.wait(5, 60));
  // No decodes running: prefill is bounded by max_batch_tokens only.
  const RequestId alone = sched.submit(greedy(long_prompt, 1));
  CHECK(sink.wait(6, 60));
  CHECK_EQ(sink.finish[alone], FinishReason::Length);
  CHECK_EQ(provider->max_tokens_seen.load(), 1500);
  CHECK(sched.stats().step_ms_total > 0);
  CHECK(sched.stats().schedule_ms_total > 0);
  CHECK_EQ(sched.stats().kv_blocks_used, 0);
}

namespace {

struct RunResult {
  std::vector<std::vector<int32_t>> tokens;
  std::vector<FinishReason> finish;
  SchedulerStats stats;
};

RunResult run_workload(KvPolicy kv, int32_t num_blocks, bool sampled) {
  auto provider = std::make_shared<test::CountingProvider>(97, 256, num_blocks, 4);
  provider->spread_logits = sampled;
  // No step before all four are queued: on a loaded machine the first could
  // otherwise run alone long enough that the cache is never contended.
  std::atomic<bool> all_queued{false};
  provider->on_step = [&](std::span<const SeqStep>) {
    while (!all_queued.load()) std::this_thread::yield();
  };
  Collector sink;
  SchedulerOptions opts;
  opts.max_batch_size = 4;
  opts.max_batch_tokens = 64;
  opts.kv_policy = kv;
  Scheduler sched(provider, sink, opts);
  std::vector<RequestId> ids;
  for (int i = 0; i < 4; ++i) {
    std::vector<int32_t> prompt;
    for (int j = 0; j < 8; ++j) prompt.push_back((i * 11 + j * 3) % 97);
    GenerationRequest r = greedy(prompt, 40);
    r.priority = i % 2;
    if (sampled) {
      r.sampling.temperature = 1.0f;
      r.sampling.seed = 1234 + i;
      r.sampling.repetition_penalty = 1.1f;
    }
    ids.push_back(sched.submit(r));
  }
  all_queued = true;
  CHECK(sink.wait(4, 30));
  RunResult out;
  for (RequestId id : ids) {
    out.tokens.push_back(sink.tokens[id]);
    out.finish.push_back(sink.finish[id]);
  }
  out.stats = sched.stats();
  return out;
}

}  // namespace

TEST("scheduler.preemption_resume_matches_uninterrupted_run") {
  for (bool sampled : {false, true}) {
    // 4 sequences of up to 48 positions (12 blocks each) over 24 blocks: they must preempt.
    const RunResult ref = run_workload(KvPolicy::NoEvict, 1024, sampled);
    const RunResult pre = run_workload(KvPolicy::MaxUtilization, 24, sampled);
    CHECK_EQ(ref.stats.preemptions, 0u);
    CHECK(pre.stats.preemptions > 0);
    CHECK_EQ(pre.stats.kv_blocks_used, 0);
    CHECK(pre.stats.prompt_tokens > ref.stats.prompt_tokens);  // recomputation is counted
    for (size_t i = 0; i < 4; ++i) {
      CHECK_EQ(pre.finish[i], FinishReason::Length);
      CHECK_EQ(pre.tokens[i].size(), 40u);
      CHECK(pre.tokens[i] == ref.tokens[i]);
    }
    if (sampled) {
      std::set<int32_t> distinct(ref.tokens[0].begin(), ref.tokens[0].end());
      CHECK(distinct.size() > 5);  // temperature sampling really drew varied tokens
    }
  }
}

TEST("scheduler.cancel_at_every_stage_frees_blocks") {
  for (KvPolicy kv : {KvPolicy::NoEvict, KvPolicy::MaxUtilization}) {
    auto provider = std::make_shared<test::CountingProvider>(50, 1024, 256, 4);
    Collector sink;
    SchedulerOptions opts;
    opts.max_batch_size = 2;
    opts.max_batch_tokens = 16;
    opts.kv_policy = kv;
    Scheduler sched(provider, sink, opts);
    std::atomic<RequestId> prefilling{0}, decoding{0}, queued{0};
    std::atomic<bool> queued_ran{false};
    bool cancelled_p = false, cancelled_d = false, cancelled_q = false;
    provider->on_step = [&](std::span<const SeqStep> batch) {  // scheduler thread, no scheduler lock held
      // Steps can start before submit() has returned the later ids: judge none until all three are known.
      while (queued.load() == 0) std::this_thread::yield();
      bool has_p = false, has_d = false;
      for (const SeqStep& s : batch) {
        if (s.id == queued.load()) queued_ran = true;
        if (s.id == prefilling.load()) {
          has_p = true;
          if (!cancelled_p && s.pos > 0 && s.tokens.size() > 1) {
            sched.cancel(s.id);  // mid-prefill
            cancelled_p = true;
          }
        }
        if (s.id == decoding.load()) {
          has_d = true;
          if (!cancelled_d && s.tokens.size() == 1 && s.pos >= 4 + 3) {
            sched.cancel(s.id);  // decoding, 3+ tokens in
            cancelled_d = true;
          }
        }
      }
      if (has_p && has_d && !cancelled_q) {
        sched.cancel(queued.load());  // both slots are taken: it is still queued
        cancelled_q = true;
      }
    };
    decoding = sched.submit(greedy({1, 2, 3, 4}, 500));
    prefilling = sched.submit(greedy(std::vector<int32_t>(300, 5), 10));
    queued = sched.submit(greedy({6}, 5));
    CHECK(sink.wait(3, 30));
    CHECK_EQ(sink.finish[prefilling.load()], FinishReason::Cancelled);
    CHECK(sink.tokens[prefilling.load()].empty());
    CHECK_EQ(sink.finish[decoding.load()], FinishReason::Cancelled);
    CHECK(sink.tokens[decoding.load()].size() >= 3u);
    CHECK_EQ(sink.finish[queued.load()], FinishReason::Cancelled);
    CHECK(!queued_ran.load());
    const SchedulerStats st = sched.stats();
    CHECK_EQ(st.kv_blocks_used, 0);
    CHECK_EQ(st.kv_blocks_free, 256);
    CHECK_EQ(st.finished_cancelled, 3u);
    CHECK_EQ(st.running + st.waiting, 0);
  }
}

TEST("scheduler.property_random_workloads_finish_once_without_leaks") {
  constexpr int32_t kVocab = 89, kContext = 128, kBlocks = 40, kBlockSize = 4;
  int config = 0;
  for (KvPolicy kv : {KvPolicy::NoEvict, KvPolicy::MaxUtilization}) {
    for (SchedulePolicy policy : {SchedulePolicy::Fcfs, SchedulePolicy::Priority, SchedulePolicy::Edf}) {
      ++config;
      std::mt19937 rng(1000 + config);
      auto provider = std::make_shared<test::CountingProvider>(kVocab, kContext, kBlocks, kBlockSize);
      FakeClock clock;  // simulated time: every step takes 0.25 ms, so deadlines and queue delays do fire
      provider->on_step = [&](std::span<const SeqStep>) { clock.t = clock.t.load() + 0.25; };
      Collector sink;
      SchedulerOptions opts;
      opts.max_batch_size = 1 + config % 6;
      opts.max_batch_tokens = 8 + 10 * config;
      opts.kv_policy = kv;
      opts.policy = policy;
      if (config % 2 == 0) opts.max_queue_size = 40;
      if (config % 3 == 0) opts.max_queue_delay_ms = 15;
      if (config % 2 == 1) opts.itl_cap_ms = 1.0;
      Scheduler sched(provider, sink, opts, clock.fn());

      struct Sent {
        std::vector<int32_t> prompt;
        int32_t max_tokens;
        int32_t stop = -1;
      };
      std::map<RequestId, Sent> sent;
      std::vector<RequestId> ids;
      uint64_t rejected = 0;
      for (int i = 0; i < 500; ++i) {
        Sent s;
        const int32_t len = 1 + static_cast<int32_t>(rng() % 60);
        for (int32_t j = 0; j < len; ++j) s.prompt.push_back(static_cast<int32_t>(rng() % kVocab));
        s.max_tokens = 1 + static_cast<int32_t>(rng() % 40);
        GenerationRequest r = greedy(s.prompt, s.max_tokens);
        r.priority = static_cast<int32_t>(rng() % 5) - 2;
        if (rng() % 5 == 0) r.deadline_ms = 1 + rng() % 50;
        if (rng() % 10 == 0) {
          const auto chain = expected_chain(s.prompt, s.max_tokens, kVocab);
          s.stop = chain[rng() % chain.size()];
          r.sampling.stop_token_ids = {s.stop};
        }
        try {
          const RequestId id = sched.submit(r);
          sent[id] = s;
          ids.push_back(id);
        } catch (const Error& e) {
          CHECK(e.code() == ErrorCode::QueueFull);
          ++rejected;
        }
        if (rng() % 6 == 0 && !ids.empty()) sched.cancel(ids[ids.size() - 1 - rng() % std::min<size_t>(ids.size(), 12)]);
        if (rng() % 16 == 0) sched.cancel(100000 + i);  // unknown ids are ignored
        if (rng() % 25 == 0) std::this_thread::sleep_for(std::chrono::milliseconds(rng() % 3));
      }
      CHECK(sink.wait(sent.size(), 120));
      std::lock_guard lock(sink.m);
      CHECK_EQ(sink.finish.size(), sent.size());
      std::map<FinishReason, uint64_t> by_reason;
      uint64_t tokens = 0;
      for (auto& [id, s] : sent) {
        CHECK(sink.finish.count(id) == 1);
        const FinishReason reason = sink.finish[id];
        ++by_reason[reason];
        const auto& got = sink.tokens[id];
        tokens += got.size();
        CHECK(got.size() <= static_cast<size_t>(s.max_tokens));
        // Preempted or not, chunked or not: the tokens are the deterministic chain.
        CHECK(got == expected_chain(s.prompt, static_cast<int32_t>(got.size()), kVocab));
        if (reason == FinishReason::Length)
          CHECK_EQ(got.size(), static_cast<size_t>(std::min<int32_t>(s.max_tokens, kContext - static_cast<int32_t>(s.prompt.size()))));
        if (reason == FinishReason::Stop) CHECK(!got.empty() && got.back() == s.stop);
        if (reason == FinishReason::QueueTimeout) CHECK(got.empty());
        CHECK(reason != FinishReason::Error);
      }
      const SchedulerStats st = sched.stats();
      CHECK_EQ(st.kv_blocks_used, 0);
      CHECK_EQ(st.kv_blocks_free, kBlocks);
      CHECK_EQ(st.running + st.waiting, 0);
      CHECK_EQ(st.rejected_queue_full, rejected);
      CHECK_EQ(st.finished_cancelled, by_reason[FinishReason::Cancelled]);
      CHECK_EQ(st.finished_deadline, by_reason[FinishReason::DeadlineExceeded]);
      CHECK_EQ(st.finished_queue_timeout, by_reason[FinishReason::QueueTimeout]);
      CHECK_EQ(st.finished_error, 0u);
      CHECK_EQ(st.tokens_generated, tokens);
      if (kv == KvPolicy::NoEvict) CHECK_EQ(st.preemptions, 0u);
      CHECK(by_reason[FinishReason::Length] + by_reason[FinishReason::Stop] > 0);
      if (opts.max_queue_size == 0) CHECK_EQ(rejected, 0u);
    }
  }
}

TEST("scheduler.itl_cap_bounds_the_running_batch") {
  // Decode steps cost 300 + 20·sequences µs: a 1.2 ms cap fits about 45 decodes, not 60.
  auto provider = std::make_shared<test::CountingProvider>(101, 4096, 4096, 16);
  provider->busy_base_us = 300;
  provider->busy_per_token_us = 20;
  provider->decode_pos_from = 4;
  Collector sink;
  SchedulerOptions opts;
  opts.max_batch_size = 64;
  opts.max_batch_tokens = 512;
  opts.itl_cap_ms = 1.2;
  Scheduler sched(provider, sink, opts);
  for (int i = 0; i < 60; ++i) sched.submit(greedy({1, 2, 3, i % 50}, 120));
  CHECK(sink.wait(60, 120));
  std::lock_guard l(provider->log_mutex);
  int violations = 0, decode_steps = 0, max_tokens = 0;
  for (const auto& r : provider->step_log) {
    if (!r.has_decode) continue;
    ++decode_steps;
    max_tokens = std::max(max_tokens, r.tokens);
    if (r.nominal_ms > opts.itl_cap_ms * 1.5) ++violations;
  }
  CHECK(decode_steps > 100);
  CHECK_EQ(violations, 0);
  CHECK(max_tokens < 60);  // admission held the batch below what max_batch_size allowed
  for (auto& [id, r] : sink.finish) CHECK_EQ(r, FinishReason::Length);
}

TEST("scheduler.finishing_after_the_deadline_reports_it") {
  auto provider = std::make_shared<test::CountingProvider>(50, 256, 64, 4);
  std::atomic<double> clock{0};
  provider->on_step = [&](std::span<const SeqStep>) { clock = clock + 10; };  // each step takes 10 ms of scheduler time
  Collector sink;
  Scheduler sched(provider, sink, {}, [&] { return clock.load(); });
  GenerationRequest r = greedy({1, 2}, 3);  // 3 steps: ends at t = 30
  r.deadline_ms = 25;
  const RequestId id = sched.submit(r);
  CHECK(sink.wait(1));
  CHECK_EQ(sink.finish[id], FinishReason::DeadlineExceeded);
  CHECK_EQ(sink.tokens[id].size(), 3u);  // it keeps every token it produced
}

TEST("scheduler.cancel_with_stop_is_a_completion") {
  auto provider = std::make_shared<test::CountingProvider>(50, 4096, 4096, 16);
  Gate gate;
  provider->on_step = [&](std::span<const SeqStep>) { gate.hook(); };
  Collector sink;
  SchedulerOptions opts;
  opts.max_batch_size = 1;  // b waits behind a
  Scheduler sched(provider, sink, opts);
  const RequestId a = sched.submit(greedy({1, 2}, 1000));
  CHECK(gate.wait_entered());
  const RequestId b = sched.submit(greedy({1, 2}, 1000));
  // a stop string matched by the caller (running), then a late plain cancel: the first reason wins.
  sched.cancel(a, FinishReason::Stop);
  sched.cancel(a, FinishReason::Cancelled);
  // The other way round for b (waiting).
  sched.cancel(b, FinishReason::Cancelled);
  sched.cancel(b, FinishReason::Stop);
  CHECK_THROWS(sched.cancel(a, FinishReason::Length), ErrorCode::InvalidRequest, "length");
  CHECK_THROWS(sched.cancel(a, FinishReason::Error), ErrorCode::InvalidRequest, "error");
  CHECK_THROWS(sched.cancel(a, FinishReason::None), ErrorCode::InvalidRequest, "none");
  gate.release();
  CHECK(sink.wait(2));
  CHECK_EQ(sink.finish[a], FinishReason::Stop);
  CHECK(sink.tokens[a] == expected_chain({1, 2}, 1, 50));  // the token of the step it was in, then the end (-1)
  CHECK_EQ(sink.finish[b], FinishReason::Cancelled);
  CHECK(sink.tokens[b].empty());
  SchedulerStats st = sched.stats();
  CHECK_EQ(st.finished_cancelled, 1u);  // b only: a stop is not an early end
  CHECK_EQ(st.finished_error + st.finished_deadline + st.finished_queue_timeout, 0u);
  CHECK_EQ(st.kv_blocks_used, 0);
  // Later cancels of finished ids change nothing, whatever their reason.
  sched.cancel(a, FinishReason::Cancelled);
  sched.cancel(b, FinishReason::Stop);
  const RequestId c = sched.submit(greedy({3}, 2));
  CHECK(sink.wait(3));
  CHECK_EQ(sink.finish[c], FinishReason::Length);
  CHECK_EQ(sink.finish.size(), 3u);
  st = sched.stats();
  CHECK_EQ(st.finished_cancelled, 1u);
}

namespace {

// The size of each step's batch, in order.
struct StepSizes {
  std::mutex m;
  std::vector<size_t> sizes;
  void attach(test::CountingProvider& p) {
    p.on_step = [this](std::span<const SeqStep> batch) {
      std::lock_guard lock(m);
      sizes.push_back(batch.size());
    };
  }
  std::vector<size_t> get() {
    std::lock_guard lock(m);
    return sizes;
  }
};

// One request, then seven more 5 ms later (the engine has long woken for the first).
std::vector<size_t> first_steps_of_a_spread_burst(bool held) {
  auto provider = std::make_shared<test::CountingProvider>(97, 256, 64, 4);
  StepSizes steps;
  steps.attach(*provider);
  Collector sink;
  Scheduler sched(provider, sink, {});
  if (held) sched.hold_start();
  sched.submit(greedy({1, 2, 3}, 1));
  std::this_thread::sleep_for(std::chrono::milliseconds(5));
  for (int i = 0; i < 7; ++i) sched.submit(greedy({4, 5, 6, i}, 1));
  if (held) sched.release_start();
  CHECK(sink.wait(8));
  return steps.get();
}

}  // namespace

TEST("scheduler.a_held_start_makes_a_burst_share_the_first_step") {
  CHECK(first_steps_of_a_spread_burst(true) == std::vector<size_t>{8});
  // The control: not held, the first request steps alone.
  const std::vector<size_t> unheld = first_steps_of_a_spread_burst(false);
  CHECK(!unheld.empty() && unheld[0] == 1u);
}

TEST("scheduler.a_start_held_and_never_released_ends_by_itself_after_its_cap") {
  auto provider = std::make_shared<test::CountingProvider>(97, 256, 64, 4);
  Collector sink;
  Scheduler sched(provider, sink, {});
  sched.hold_start();
  const auto t0 = std::chrono::steady_clock::now();
  sched.submit(greedy({1, 2, 3}, 1));
  CHECK(sink.wait(1, 2));
  const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  CHECK(ms >= Scheduler::kMaxStartHoldMs);
  // The cap ended that hold; the next request starts at once.
  const auto t1 = std::chrono::steady_clock::now();
  sched.submit(greedy({1, 2, 3}, 1));
  CHECK(sink.wait(2, 2));
  const double next_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t1).count();
  CHECK(next_ms < Scheduler::kMaxStartHoldMs);
}

TEST("scheduler.a_held_start_does_not_stop_a_running_engine") {
  auto provider = std::make_shared<test::CountingProvider>(97, 256, 64, 4);
  provider->step_delay = std::chrono::milliseconds(1);
  StepSizes steps;
  steps.attach(*provider);
  Collector sink;
  Scheduler sched(provider, sink, {});
  const RequestId a = sched.submit(greedy({1, 2, 3}, 200));
  while (steps.get().size() < 2) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  sched.hold_start();  // never released: a running engine is not held
  const RequestId b = sched.submit(greedy({4, 5}, 1));
  CHECK(sink.wait(1, 2));
  CHECK(sink.finished(b) && !sink.finished(a));
  const size_t before = steps.get().size();
  std::this_thread::sleep_for(std::chrono::milliseconds(10));
  CHECK(steps.get().size() > before + 2);  // it kept stepping a, 1 ms a step, while the hold stood
  sched.cancel(a);
  CHECK(sink.wait(2));
}
