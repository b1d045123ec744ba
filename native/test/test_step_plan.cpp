// StepPlan on its own: describe() of a known plan, and the plans schedule()
// makes for a known situation, stepped by hand on a scheduler whose thread is
// held (SchedulerTestAccess), so no timing decides what a step holds.
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/scheduler/scheduler.h"
#include "counting_provider.h"
#include "harness.h"

namespace neoserve {

struct SchedulerTestAccess {
  // Call before submitting anything: from then on the test is the scheduler thread.
  static void hold(Scheduler& s) {
    std::lock_guard lock(s.mutex_);
    s.held_ = true;
  }
  static StepPlan schedule(Scheduler& s, EventBatch& out) { return s.schedule(out); }
  static void execute_and_update(Scheduler& s, const StepPlan& plan, EventBatch& out) {
    s.update(plan, s.execute(plan), out);
  }
};

}  // namespace neoserve

using namespace neoserve;

namespace {

struct NullSink : EventSink {
  void deliver(EventBatch&&) override {}
};

GenerationRequest greedy(int32_t prompt_len, int32_t max_tokens) {
  GenerationRequest r;
  for (int32_t i = 0; i < prompt_len; ++i) r.prompt.push_back(1 + i % 7);
  r.max_tokens = max_tokens;
  r.sampling.temperature = 0;
  return r;
}

// The counting provider under a scheduler whose thread is held: the test plans and runs every step.
struct HeldScheduler {
  std::shared_ptr<test::CountingProvider> provider = std::make_shared<test::CountingProvider>(97, 256, 64, 4);
  NullSink sink;
  Scheduler sched;
  EventBatch out;
  explicit HeldScheduler(const SchedulerOptions& opts) : sched(provider, sink, opts) { SchedulerTestAccess::hold(sched); }
};

SeqStep step_of(SeqId id, int32_t pos, const std::vector<int32_t>& tokens) {
  SeqStep s;
  s.id = id;
  s.pos = pos;
  s.tokens = tokens;
  return s;
}

}  // namespace

TEST("scheduler.plan_describe") {
  const std::vector<int32_t> one = {5}, chunk(16, 3);
  StepPlan plan;
  CHECK_EQ(describe(plan), std::string("0 seqs, 0 tokens"));
  plan.steps = {step_of(1, 7, one), step_of(2, 9, one), step_of(3, 0, chunk)};
  plan.decodes = 2;
  plan.tokens = 18;
  CHECK_EQ(describe(plan), std::string("3 seqs, 18 tokens: decode #1@pos 7, decode #2@pos 9, prefill #3 [0,16)"));
  CHECK_EQ(plan.prefill_tokens(), 16);
  plan.steps = {step_of(4, 0, one)};
  plan.decodes = 0;
  plan.tokens = 1;
  CHECK_EQ(describe(plan), std::string("1 seq, 1 token: prefill #4 [0,1)"));
  plan.clear();
  CHECK(plan.empty());
  CHECK_EQ(plan.tokens, 0);
}

TEST("scheduler.plan_decodes_first_and_prefill_cut_at_max_batch_tokens") {
  SchedulerOptions opts;
  opts.max_batch_tokens = 16;
  HeldScheduler held(opts);
  auto& [provider, sink, sched, out] = held;

  const RequestId a = sched.submit(greedy(4, 10));
  const RequestId b = sched.submit(greedy(3, 10));
  StepPlan plan = SchedulerTestAccess::schedule(sched, out);
  CHECK_EQ(describe(plan), std::string("2 seqs, 7 tokens: prefill #1 [0,4), prefill #2 [0,3)"));
  CHECK_EQ(out.admissions.size(), 2u);
  SchedulerTestAccess::execute_and_update(sched, plan, out);
  CHECK_EQ(out.step_tokens, 7);

  // Two decodes now; a long prompt gets what is left of the 16-token budget.
  const RequestId c = sched.submit(greedy(40, 2));
  plan = SchedulerTestAccess::schedule(sched, out);
  CHECK_EQ(describe(plan), std::string("3 seqs, 16 tokens: decode #1@pos 4, decode #2@pos 3, prefill #3 [0,14)"));
  CHECK_EQ(plan.decodes, 2);
  CHECK_EQ(plan.prefill_tokens(), 14);
  CHECK_NEAR(plan.attended,
             StepTimeModel::attended_of(4, 1) + StepTimeModel::attended_of(3, 1) + StepTimeModel::attended_of(0, 14),
             0.0);
  CHECK(plan.steps[0].want_logits && plan.steps[1].want_logits);
  CHECK(!plan.steps[2].want_logits);  // the prompt goes on in the next step: nothing to sample yet
  for (size_t i = 0; i < plan.steps.size(); ++i) CHECK_EQ(plan.seqs[i]->id, plan.steps[i].id);
  CHECK_EQ(plan.steps[0].id, SeqId{a});
  CHECK_EQ(plan.steps[1].id, SeqId{b});
  CHECK_EQ(plan.steps[2].id, SeqId{c});
  SchedulerTestAccess::execute_and_update(sched, plan, out);

  plan = SchedulerTestAccess::schedule(sched, out);
  CHECK_EQ(describe(plan), std::string("3 seqs, 16 tokens: decode #1@pos 5, decode #2@pos 4, prefill #3 [14,28)"));
  SchedulerTestAccess::execute_and_update(sched, plan, out);
  plan = SchedulerTestAccess::schedule(sched, out);
  CHECK_EQ(describe(plan), std::string("3 seqs, 14 tokens: decode #1@pos 6, decode #2@pos 5, prefill #3 [28,40)"));
  CHECK(plan.steps[2].want_logits);  // the prompt's last chunk: its first token is sampled
}

TEST("scheduler.plan_budget_goes_to_decodes_first") {
  SchedulerOptions opts;
  opts.max_batch_size = 3;
  opts.max_batch_tokens = 2;
  HeldScheduler held(opts);
  auto& [provider, sink, sched, out] = held;
  for (int i = 0; i < 4; ++i) sched.submit(greedy(1, 10));
  StepPlan plan = SchedulerTestAccess::schedule(sched, out);
  CHECK_EQ(describe(plan), std::string("2 seqs, 2 tokens: prefill #1 [0,1), prefill #2 [0,1)"));
  CHECK_EQ(out.admissions.size(), 3u);  // three run (max_batch_size), one waits
  SchedulerTestAccess::execute_and_update(sched, plan, out);
  plan = SchedulerTestAccess::schedule(sched, out);
  // The budget is spent on decodes first; the admitted prompt waits for room.
  CHECK_EQ(describe(plan), std::string("2 seqs, 2 tokens: decode #1@pos 1, decode #2@pos 1"));
}

TEST("scheduler.provider_failure_ends_only_that_steps_sequences") {
  SchedulerOptions opts;
  opts.max_batch_tokens = 4;
  HeldScheduler held(opts);
  auto& [provider, sink, sched, out] = held;
  const RequestId a = sched.submit(greedy(4, 10));
  const RequestId b = sched.submit(greedy(4, 10));
  provider->on_step = [](std::span<const SeqStep>) { throw std::runtime_error("device lost"); };
  StepPlan plan = SchedulerTestAccess::schedule(sched, out);
  CHECK_EQ(describe(plan), std::string("1 seq, 4 tokens: prefill #1 [0,4)"));
  SchedulerTestAccess::execute_and_update(sched, plan, out);
  CHECK_EQ(out.step_sequences, 0);  // a failed step is not a step
  CHECK_EQ(out.errors.size(), 1u);
  CHECK_EQ(out.errors[0].first, a);
  CHECK_EQ(out.errors[0].second, std::string("device lost"));
  CHECK_EQ(out.events.size(), 1u);
  CHECK_EQ(out.events[0].id, a);
  CHECK(out.events[0].finish == FinishReason::Error);

  provider->on_step = nullptr;
  plan = SchedulerTestAccess::schedule(sched, out);
  CHECK_EQ(describe(plan), std::string("1 seq, 4 tokens: prefill #2 [0,4)"));
  SchedulerTestAccess::execute_and_update(sched, plan, out);
  CHECK_EQ(out.events.size(), 2u);
  CHECK_EQ(out.events[1].id, b);
  CHECK(out.events[1].finish == FinishReason::None);
}
