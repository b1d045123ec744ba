// Continuous batching over one provider, on a thread of its own: every
// iteration composes one step from running decodes and waiting prompts
// (chunked to the token budget), runs it, samples, and emits the tokens.
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>
#include <unordered_set>
#include <vector>

#include "../kv/block_manager.h"
#include "../provider.h"
#include "request.h"

namespace neoserve {

enum class SchedulePolicy : uint8_t { Fcfs, Priority, Edf };
enum class KvPolicy : uint8_t {
  NoEvict,         // admission reserves prompt + max_tokens: a running sequence never runs out
  MaxUtilization,  // admit on current need; when blocks run out, preempt by recompute and requeue at the front
};

struct SchedulerOptions {
  int32_t max_batch_size = 16;     // sequences in one step
  int32_t max_batch_tokens = 512;  // tokens in one step: decodes + prefill chunks
  int32_t max_queue_size = 0;      // waiting requests; beyond it submit throws QueueFull. 0 = unbounded
  double max_queue_delay_ms = 0;   // not started within it -> QueueTimeout. 0 = no cap
  double itl_cap_ms = 0;           // predicted step time cap while decodes run: limits prefill tokens. 0 = off
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
  uint64_t finished_cancelled = 0;
  uint64_t finished_error = 0;
  double step_ms_total = 0;       // time inside provider steps
  double schedule_ms_total = 0;   // time in the scheduler's own work per iteration (excluding the step)
};

class Scheduler {
 public:
  Scheduler(std::shared_ptr<Provider> provider, EventSink& sink, SchedulerOptions options);
  ~Scheduler();  // ends every request in flight as Cancelled and joins the thread

  // Validates and queues; throws InvalidRequest (nothing is queued then).
  RequestId submit(GenerationRequest request);
  void cancel(RequestId id);  // unknown or finished ids are ignored
  SchedulerStats stats() const;
  // Ends everything in flight as Cancelled and stops the thread; idempotent.
  void shutdown();

 private:
  struct Sequence {
    RequestId id;
    GenerationRequest request;
    std::vector<int32_t> context;  // prompt, then generated tokens
    int32_t computed = 0;          // positions whose KV is in the cache
    int32_t generated = 0;
    int32_t max_positions = 0;     // prompt + max_tokens, clamped to the context
    std::vector<int32_t> blocks;
    std::unique_ptr<Sampler> sampler;  // made at submit: no allocation per token
  };

  void run();
  void admit();
  void finish(Sequence& seq, FinishReason reason, EventBatch& out, int32_t last_token = -1);
  void iterate(EventBatch& out);

  std::shared_ptr<Provider> provider_;
  EventSink& sink_;
  SchedulerOptions options_;
  ProviderInfo info_;
  BlockManager blocks_;

  mutable std::mutex mutex_;  // guards waiting_, cancelled_, stats_ and stopping_
  std::condition_variable wake_;
  std::deque<std::unique_ptr<Sequence>> waiting_;
  std::unordered_set<RequestId> cancelled_;
  bool stopping_ = false;
  SchedulerStats stats_;
  RequestId next_id_ = 1;

  std::vector<std::unique_ptr<Sequence>> running_;  // scheduler thread only
  std::vector<SeqStep> batch_;
  LogitsOut logits_;
  std::thread thread_;
};

}  // namespace neoserve
