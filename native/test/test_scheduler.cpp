#include <condition_variable>
#include <map>
#include <mutex>

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
  int batches = 0;

  void deliver(EventBatch&& b) override {
    std::lock_guard lock(m);
    ++batches;
    for (const TokenEvent& e : b.events) {
      if (e.token >= 0) tokens[e.id].push_back(e.token);
      if (e.finish != FinishReason::None) {
        CHECK(finish.count(e.id) == 0);  // exactly one final event
        finish[e.id] = e.finish;
      }
    }
    for (auto& [id, msg] : b.errors) errors[id] = msg;
    cv.notify_all();
  }
  bool wait(size_t n) {
    std::unique_lock lock(m);
    return cv.wait_for(lock, std::chrono::seconds(10), [&] { return finish.size() >= n; });
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
  CHECK_THROWS(sched->submit(greedy({1}, 1)), ErrorCode::InvalidRequest, "disposed");
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
