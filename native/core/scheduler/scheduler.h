// Continuous batching over one provider, on a thread of its own: every
// iteration schedules one step from running decodes and waiting prompts
// (chunked to the token budget), executes it on the provider, and updates the
// sequences with the sampled tokens, emitting them in one batch.
#pragma once
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "../kv/block_manager.h"
#include "../provider.h"
#include "request.h"
#include "sequence.h"
#include "step_plan.h"
#include "step_time_model.h"
#include "wait_prediction.h"

namespace neoserve {

enum class SchedulePolicy : uint8_t { Fcfs, Priority, Edf };
enum class KvPolicy : uint8_t {
  NoEvict,         // admission reserves prompt + max_tokens: a running sequence never runs out
  MaxUtilization,  // admit on current need; when blocks run out, preempt by recompute and requeue at the front
};

// The defaults are these initializers; names, ranges and meanings are in core/options.h.
struct SchedulerOptions {
  int32_t max_batch_size = 16;     // sequences in one step
  int32_t max_batch_tokens = 512;  // tokens in one step: decodes + prefill chunks
  int32_t max_queue_size = 0;      // waiting requests (beyond the batch an idle engine is gathering); beyond it submit throws QueueFull. 0 = unbounded
  double max_queue_delay_ms = 0;   // not started within it -> QueueTimeout. 0 = no cap
  double itl_cap_ms = 0;           // predicted step time cap while decodes run: limits prefill tokens. 0 = off
  double batch_window_ms = 0;      // an idle engine waits up to this long for a burst to join its first step (until a quarter of it passes quietly). 0 = off
  SchedulePolicy policy = SchedulePolicy::Fcfs;
  KvPolicy kv_policy = KvPolicy::NoEvict;
};

struct SchedulerStats {
  int32_t waiting = 0;
  int32_t running = 0;
  int32_t kv_blocks_used = 0;
  int32_t kv_blocks_free = 0;
  uint64_t steps = 0;
  uint64_t tokens_generated = 0;
  uint64_t prompt_tokens = 0;   // prefill tokens computed (recomputation after preemption included)
  uint64_t preemptions = 0;
  uint64_t rejected_queue_full = 0;
  uint64_t finished_queue_timeout = 0;
  uint64_t finished_deadline = 0;
  uint64_t rejected_deadline = 0;  // ended DeadlineUnmeetable at admission
  uint64_t finished_cancelled = 0;
  uint64_t finished_error = 0;
  double step_ms_total = 0;       // time inside provider steps
  double schedule_ms_total = 0;   // the scheduler's own work per iteration (excluding the step and sampling)
  double sample_ms_total = 0;     // turning logits into tokens (sampling) and emitting them
  // Until a request submitted now would start its prefill (predict_wait_ms); -1 while the step-time model cannot tell.
  double predicted_wait_ms = 0;
};

// Milliseconds on a monotonic clock. Request timing (submit times, queue delay,
// deadlines) reads it; step timing always uses std::chrono::steady_clock.
using SchedulerClock = std::function<double()>;

class Scheduler {
 public:
  // `now_ms` is a seam for tests; empty = std::chrono::steady_clock.
  Scheduler(std::shared_ptr<Provider> provider, EventSink& sink, SchedulerOptions options,
            SchedulerClock now_ms = {});
  ~Scheduler();  // ends every request in flight as Cancelled and joins the thread

  // Validates (validate_request) and queues; throws InvalidRequest, QueueFull or
  // Disposed, and nothing is queued then.
  RequestId submit(GenerationRequest request);
  // Ends a request: Cancelled, or Stop when the caller matched a stop string
  // (a normal completion, not counted as cancelled). Any other reason throws
  // InvalidRequest. Unknown or finished ids are ignored; when an id is
  // cancelled twice before the scheduler ends it, the first reason wins.
  void cancel(RequestId id, FinishReason reason = FinishReason::Cancelled);
  // Requests submitted together start together: while held, an idle engine
  // starts no step, so a caller submitting a burst one request at a time (a
  // JS turn's worth) does not see the first one prefill alone and the rest
  // wait for it. A running engine is not held (arrivals join its next step).
  // The hold ends at release_start(), or kMaxStartHoldMs after the engine
  // first saw a held request, whatever the caller does.
  void hold_start();
  void release_start();
  static constexpr double kMaxStartHoldMs = 20;
  SchedulerStats stats() const;
  // A snapshot of the online step-time model (what itl_cap_ms plans with).
  StepTimeModel step_time_model() const;
  // Ends everything in flight as Cancelled and stops the thread; idempotent.
  void shutdown();

 private:
  friend struct SchedulerTestAccess;  // native/test: plans steps by hand while the thread is held

  // The thread: wait for work, then schedule -> execute -> update, publish, deliver.
  void run();
  bool wait_for_work();  // false once shutdown() was called
  StepPlan schedule(EventBatch& out);
  StepOutputs execute(const StepPlan& plan);
  void update(const StepPlan& plan, const StepOutputs& outputs, EventBatch& out);
  void deliver(EventBatch& out);
  void publish();  // copies the scheduler thread's counters into stats_; caller holds mutex_
  void end_all(EventBatch& out);

  // schedule(), under mutex_: end what must end, make room, let requests in.
  void expire(double now, EventBatch& out);
  bool grow_or_preempt(EventBatch& out);
  void preempt(Sequence& seq);
  void admit(double t, EventBatch& out);
  ServiceInputs service_inputs(const Sequence& seq, const Sequence* joining) const;
  bool makes_late(const Sequence& head, double t) const;
  // schedule(), without the lock (running sequences are the scheduler thread's own).
  void compose(StepPlan& plan);

  // update().
  void fail_step(const StepPlan& plan, const std::string& error, EventBatch& out);
  void learn_step_time(const StepPlan& plan, double step_ms);
  // A drawn token joins the sequence (and its logits or logprobs the events, if asked for).
  void record(Sequence& seq, std::span<const float> logits, int32_t token, EventBatch& out);
  FinishReason completion(const Sequence& seq, int32_t token) const;
  void finish(Sequence& seq, FinishReason reason, EventBatch& out, int32_t last_token = -1);
  void drop_finished();

  void enqueue(std::unique_ptr<Sequence> seq);
  bool ahead(const Sequence& a, const Sequence& b) const;      // waiting order under the policy
  bool more_important(const Sequence& a, const Sequence& b) const;  // preemption order (victim = least)
  double now() const;

  std::shared_ptr<Provider> provider_;
  EventSink& sink_;
  SchedulerOptions options_;
  ProviderInfo info_;
  BlockManager blocks_;

  mutable std::mutex mutex_;  // guards waiting_, cancelled_, stats_, stopping_, held_ and start_held_
  std::condition_variable wake_;
  std::deque<std::unique_ptr<Sequence>> waiting_;
  std::unordered_map<RequestId, FinishReason> cancelled_;  // with the reason each ends with
  bool stopping_ = false;
  bool held_ = false;  // tests only: the thread does no work while set
  bool start_held_ = false;  // hold_start() until release_start()
  SchedulerStats stats_;
  RequestId next_id_ = 1;
  StepTimeModel step_time_snapshot_;  // guarded by mutex_
  WaitInputs running_snapshot_;       // the batch's side of predict_wait_ms, guarded by mutex_

  SchedulerClock now_ms_;
  // Scheduler thread only (or a test holding it).
  SchedulerStats local_;  // counters, published into stats_ each iteration
  StepTimeModel step_time_;
  std::vector<std::unique_ptr<Sequence>> running_;
  std::vector<Sequence*> by_importance_;  // reused by grow_or_preempt
  StepPlan spare_plan_;  // the last plan, kept so the next one reuses its capacity
  double prefill_ok_tokens_ = 0;  // largest prefill measured within itl_cap_ms next to decodes
  LogitsOut logits_;
  struct Draw {  // a sequence that draws a token this step: its logits row, then the token
    Sequence* seq;
    int32_t row;
    int32_t token;
  };
  std::vector<Draw> draws_;  // reused across steps
  std::thread thread_;
};

}  // namespace neoserve
