#include "scheduler.h"

#include <algorithm>
#include <cmath>
#include <chrono>
#include <limits>
#include <optional>

#include "../error.h"
#include "../options.h"
#include "../thread_name.h"

namespace neoserve {

const char* finish_reason_name(FinishReason r) {
  switch (r) {
    case FinishReason::None: return "none";
    case FinishReason::Stop: return "stop";
    case FinishReason::Length: return "length";
    case FinishReason::Cancelled: return "cancelled";
    case FinishReason::Error: return "error";
    case FinishReason::DeadlineExceeded: return "deadline_exceeded";
    case FinishReason::QueueTimeout: return "queue_timeout";
    case FinishReason::DeadlineUnmeetable: return "deadline_unmeetable";
  }
  return "error";
}

namespace {

KvGeometry checked_geometry(const Provider& provider) {
  KvGeometry kv = provider.kv();
  if (kv.block_size <= 0 || kv.num_blocks <= 0)
    throw Error(ErrorCode::Internal, "provider reported an empty KV cache");
  return kv;
}

double steady_ms() {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// While the step-time model has no usable fit, prefill next to running decodes is
// limited to this many tokens per step (conservative; also gives the fit varied data).
constexpr int32_t kWarmupPrefillTokens = 16;

}  // namespace

Scheduler::Scheduler(std::shared_ptr<Provider> provider, EventSink& sink, SchedulerOptions options,
                     SchedulerClock now_ms)
    : provider_(std::move(provider)),
      sink_(sink),
      options_(options),
      info_(provider_->info()),
      blocks_(checked_geometry(*provider_).num_blocks, checked_geometry(*provider_).block_size),
      now_ms_(std::move(now_ms)) {
  validate(LoadOptions{{}, options_});  // a native caller's options too: a batch of 0 would spin
  // Steps of maxBatchTokens must fit beside the weights and KV cache, before the first one grows the scratch.
  check_working_memory(info_.memory, options_.max_batch_tokens, options_.max_batch_size);
  publish();  // stats() tells the empty cache from the start, not after the first request
  running_.reserve(options_.max_batch_size);
  by_importance_.reserve(options_.max_batch_size);
  spare_plan_.steps.reserve(options_.max_batch_size);
  spare_plan_.seqs.reserve(options_.max_batch_size);
  thread_ = std::thread([this] {
    name_this_thread("ns-scheduler");
    run();
  });
}

Scheduler::~Scheduler() { shutdown(); }

double Scheduler::now() const { return now_ms_ ? now_ms_() : steady_ms(); }

RequestId Scheduler::submit(GenerationRequest request) {
  const RequestLimits limits{info_.vocab_size, info_.max_context, blocks_.block_size(), blocks_.num_blocks()};
  validate_request(request, limits);
  if (!request.ignore_eos)
    request.sampling.stop_token_ids.insert(request.sampling.stop_token_ids.end(), info_.eos_token_ids.begin(),
                                           info_.eos_token_ids.end());

  auto seq = std::make_unique<Sequence>();
  seq->max_positions = limits.max_positions(request);
  seq->context = request.prompt;
  seq->context.reserve(seq->max_positions);
  seq->blocks.reserve(blocks_.blocks_for(seq->max_positions));
  seq->sampler = std::make_unique<Sampler>(request.sampling);
  seq->request = std::move(request);

  std::lock_guard lock(mutex_);
  if (stopping_) throw Error(ErrorCode::Disposed, "the model has been disposed");
  // An idle engine gathering a burst (start hold, batch window) takes up to a batch of it at once: starting, not queued.
  const bool gathering = (start_held_ || options_.batch_window_ms > 0) && stats_.running == 0;
  const int32_t starting = gathering ? options_.max_batch_size : 0;
  if (options_.max_queue_size > 0 && static_cast<int64_t>(waiting_.size()) >= int64_t{options_.max_queue_size} + starting) {
    ++stats_.rejected_queue_full;
    throw Error(ErrorCode::QueueFull, "the waiting queue is full (maxQueueSize " +
                                          std::to_string(options_.max_queue_size) + ")");
  }
  seq->id = next_id_++;
  seq->order = seq->id;
  seq->submit_ms = now();
  if (seq->request.deadline_ms > 0) seq->deadline_at = seq->submit_ms + seq->request.deadline_ms;
  const RequestId id = seq->id;
  enqueue(std::move(seq));
  stats_.waiting = static_cast<int32_t>(waiting_.size());
  // Held, the thread needs waking only for the burst's first request (to start its clock); release_start() wakes it again.
  if (!start_held_ || waiting_.size() == 1) wake_.notify_one();
  return id;
}

void Scheduler::cancel(RequestId id, FinishReason reason) {
  if (reason != FinishReason::Cancelled && reason != FinishReason::Stop)
    throw_invalid(std::string("a request can be cancelled as cancelled or stop, not ") + finish_reason_name(reason));
  std::lock_guard lock(mutex_);
  cancelled_.emplace(id, reason);  // keeps an earlier reason
  wake_.notify_one();
}

void Scheduler::hold_start() {
  std::lock_guard lock(mutex_);
  start_held_ = true;
}

void Scheduler::release_start() {
  std::lock_guard lock(mutex_);
  start_held_ = false;
  wake_.notify_one();
}

SchedulerStats Scheduler::stats() const {
  std::lock_guard lock(mutex_);
  SchedulerStats out = stats_;
  // The queue as it stands now (submit() changes it between steps); the batch as of the last step.
  WaitInputs in = running_snapshot_;
  in.waiting = static_cast<int32_t>(waiting_.size());
  for (const auto& seq : waiting_) in.waiting_tokens += seq->pending();
  out.waiting = in.waiting;
  out.predicted_wait_ms = predict_wait_ms(in, {options_.max_batch_size, options_.max_batch_tokens}, step_time_snapshot_);
  return out;
}

StepTimeModel Scheduler::step_time_model() const {
  std::lock_guard lock(mutex_);
  return step_time_snapshot_;
}

void Scheduler::shutdown() {
  {
    std::lock_guard lock(mutex_);
    if (stopping_ && !thread_.joinable()) return;
    stopping_ = true;
  }
  wake_.notify_one();
  if (thread_.joinable() && thread_.get_id() != std::this_thread::get_id()) thread_.join();
}

bool Scheduler::ahead(const Sequence& a, const Sequence& b) const {
  switch (options_.policy) {
    case SchedulePolicy::Fcfs: break;
    case SchedulePolicy::Priority:
      if (a.request.priority != b.request.priority) return a.request.priority > b.request.priority;
      break;
    case SchedulePolicy::Edf:
      if (a.deadline_at != b.deadline_at) return a.deadline_at < b.deadline_at;  // none = +inf: last
      break;
  }
  return a.order < b.order;
}

bool Scheduler::more_important(const Sequence& a, const Sequence& b) const {
  if (a.request.priority != b.request.priority) return a.request.priority > b.request.priority;
  if (options_.policy == SchedulePolicy::Edf && a.deadline_at != b.deadline_at) return a.deadline_at < b.deadline_at;
  return a.order < b.order;
}

// Sorted insert (after its equals): the queue is always in policy order. A
// preempted sequence keeps its `order`, so it lands at the front of its class.
void Scheduler::enqueue(std::unique_ptr<Sequence> seq) {
  auto pos = std::upper_bound(waiting_.begin(), waiting_.end(), seq,
                              [&](const std::unique_ptr<Sequence>& x, const std::unique_ptr<Sequence>& y) {
                                return ahead(*x, *y);
                              });
  waiting_.insert(pos, std::move(seq));
}

// --- the loop -------------------------------------------------------------------------

void Scheduler::run() {
  EventBatch out;
  while (wait_for_work()) {
    StepPlan plan = schedule(out);
    if (!plan.empty()) {
      const StepOutputs outputs = execute(plan);
      update(plan, outputs, out);
    }
    spare_plan_ = std::move(plan);
    {
      std::lock_guard lock(mutex_);
      publish();
    }
    deliver(out);
  }
  end_all(out);
}

bool Scheduler::wait_for_work() {
  std::unique_lock lock(mutex_);
  // hold_start(): an idle engine starts nothing before release_start(), or
  // kMaxStartHoldMs after it first saw held work, whatever its caller does.
  std::optional<std::chrono::steady_clock::time_point> hold_cap;
  for (;;) {
    if (stopping_) return false;
    const bool work = !held_ && (!waiting_.empty() || !cancelled_.empty() || !running_.empty());
    if (!work) {
      wake_.wait(lock);
    } else if (start_held_ && running_.empty()) {
      if (!hold_cap) hold_cap = std::chrono::steady_clock::now() + std::chrono::duration_cast<std::chrono::steady_clock::duration>(std::chrono::duration<double, std::milli>(kMaxStartHoldMs));
      if (wake_.wait_until(lock, *hold_cap) == std::cv_status::timeout) start_held_ = false;
    } else {
      break;
    }
  }
  // Work arriving at an idle engine: requests of one burst reach it a little
  // apart (parsed one by one off the network); waiting for them lets the
  // first step take them all, instead of starting with one and making the
  // rest wait for it. It waits while they keep coming: until a quarter of the
  // window passes with no new one, the whole window, or a full batch.
  if (options_.batch_window_ms > 0 && running_.empty() && !stopping_) {
    using clock = std::chrono::steady_clock;
    const auto window = std::chrono::duration_cast<clock::duration>(std::chrono::duration<double, std::milli>(options_.batch_window_ms));
    const auto cap = clock::now() + window;
    size_t seen = waiting_.size();
    while (!stopping_ && static_cast<int32_t>(waiting_.size()) < options_.max_batch_size) {
      const auto until = std::min(cap, clock::now() + window / 4);
      if (!wake_.wait_until(lock, until, [&] { return stopping_ || waiting_.size() != seen; })) break;  // quiet, or the cap
      seen = waiting_.size();
      if (clock::now() >= cap) break;
    }
  }
  return !stopping_;
}

// An iteration that neither stepped nor started or ended anything has nothing to tell.
void Scheduler::deliver(EventBatch& out) {
  if (out.events.empty() && out.admissions.empty() && out.step_sequences == 0) return;
  sink_.deliver(std::move(out));
  out = EventBatch{};
}

// Shutdown: every request still in flight ends exactly once, as cancelled.
void Scheduler::end_all(EventBatch& out) {
  {
    std::lock_guard lock(mutex_);
    for (auto& s : running_) finish(*s, FinishReason::Cancelled, out);
    for (auto& s : waiting_) finish(*s, FinishReason::Cancelled, out);
    running_.clear();
    waiting_.clear();
    cancelled_.clear();
    publish();
  }
  deliver(out);
}

void Scheduler::publish() {
  stats_.waiting = static_cast<int32_t>(waiting_.size());
  stats_.running = static_cast<int32_t>(running_.size());
  stats_.kv_blocks_used = blocks_.used_blocks();
  stats_.kv_blocks_free = blocks_.free_blocks();
  stats_.steps = local_.steps;
  stats_.tokens_generated = local_.tokens_generated;
  stats_.prompt_tokens = local_.prompt_tokens;
  stats_.preemptions = local_.preemptions;
  stats_.finished_queue_timeout = local_.finished_queue_timeout;
  stats_.finished_deadline = local_.finished_deadline;
  stats_.rejected_deadline = local_.rejected_deadline;
  stats_.finished_cancelled = local_.finished_cancelled;
  stats_.finished_error = local_.finished_error;
  stats_.step_ms_total = local_.step_ms_total;
  stats_.schedule_ms_total = local_.schedule_ms_total;
  stats_.sample_ms_total = local_.sample_ms_total;
  step_time_snapshot_ = step_time_;
  WaitInputs& r = running_snapshot_;
  r = {};
  r.running = stats_.running;
  r.fewest_remaining = running_.empty() ? 0 : std::numeric_limits<int32_t>::max();
  for (const auto& seq : running_) {
    r.running_attended += static_cast<double>(seq->context.size());
    r.fewest_remaining = std::min(r.fewest_remaining, seq->max_positions - static_cast<int32_t>(seq->context.size()));
  }
}

// --- schedule: decide the step ---------------------------------------------------------

// Everything that decides what runs, before anything runs: its time is schedule_ms.
StepPlan Scheduler::schedule(EventBatch& out) {
  const double t0 = steady_ms();
  StepPlan plan = std::move(spare_plan_);
  plan.clear();
  {
    std::lock_guard lock(mutex_);
    const double t = now();
    expire(t, out);
    const bool preempted = grow_or_preempt(out);
    if (!preempted) admit(t, out);  // a preemption means the cache is short: no new admissions this step
    stats_.running = static_cast<int32_t>(running_.size());  // the step under way's batch (submit() reads it)
  }
  compose(plan);
  local_.schedule_ms_total += steady_ms() - t0;
  return plan;
}

// Cancellations, deadlines (waiting or running) and queue timeouts (never started).
// A cancel's reason wins over a deadline that passed meanwhile: the caller has
// already ended the request on its side.
void Scheduler::expire(double t, EventBatch& out) {
  const bool timers = options_.max_queue_delay_ms > 0 ||
                      std::any_of(running_.begin(), running_.end(), [](auto& s) { return s->request.deadline_ms > 0; }) ||
                      std::any_of(waiting_.begin(), waiting_.end(), [](auto& s) { return s->request.deadline_ms > 0; });
  if (cancelled_.empty() && !timers) return;
  auto reason_of = [&](const Sequence& s) {
    if (!cancelled_.empty())
      if (auto it = cancelled_.find(s.id); it != cancelled_.end()) return it->second;
    if (t > s.deadline_at) return FinishReason::DeadlineExceeded;
    if (!s.started && options_.max_queue_delay_ms > 0 && t - s.submit_ms > options_.max_queue_delay_ms)
      return FinishReason::QueueTimeout;
    return FinishReason::None;
  };
  auto end_if_due = [&](const std::unique_ptr<Sequence>& s) {
    const FinishReason r = reason_of(*s);
    if (r == FinishReason::None) return false;
    finish(*s, r, out);
    return true;
  };
  std::erase_if(running_, end_if_due);
  std::erase_if(waiting_, end_if_due);
  cancelled_.clear();
}

// Frees `seq`'s cache and makes its whole context (prompt + generated) the prompt
// to recompute. Generated tokens, sampler and step counter stay, so the resumed
// tokens are exactly those of an uninterrupted run.
void Scheduler::preempt(Sequence& seq) {
  blocks_.release(seq.blocks);
  seq.computed = 0;
  ++local_.preemptions;
  auto it = std::find_if(running_.begin(), running_.end(), [&](auto& s) { return s.get() == &seq; });
  std::unique_ptr<Sequence> owned = std::move(*it);
  running_.erase(it);
  enqueue(std::move(owned));
}

// MaxUtilization: every running sequence needs blocks for its whole context (a
// decode: for its next position). Most important first; when the cache is out,
// the least important running sequence (lowest priority, latest submitted;
// possibly the one asking) is preempted. Returns whether anything was preempted.
bool Scheduler::grow_or_preempt(EventBatch& out) {
  if (options_.kv_policy != KvPolicy::MaxUtilization) return false;
  by_importance_.clear();
  for (auto& s : running_) by_importance_.push_back(s.get());
  std::sort(by_importance_.begin(), by_importance_.end(),
            [&](const Sequence* a, const Sequence* b) { return more_important(*a, *b); });
  bool preempted = false;
  size_t alive = by_importance_.size();  // [0, alive) still running, in importance order
  for (size_t i = 0; i < alive; ++i) {
    Sequence& s = *by_importance_[i];
    const int64_t need = static_cast<int64_t>(s.context.size());
    while (!blocks_.ensure(s.blocks, need)) {
      Sequence& victim = *by_importance_[alive - 1];
      if (&victim == &s && alive == 1) {
        // Alone and still too big: it can never fit, so end it instead of looping.
        out.errors.emplace_back(s.id, "the sequence needs " + std::to_string(blocks_.blocks_for(need)) +
                                          " KV blocks and cannot fit in the cache (" +
                                          std::to_string(blocks_.num_blocks()) + " blocks) even alone");
        finish(s, FinishReason::Error, out);
        drop_finished();
        return preempted;
      }
      --alive;
      preempted = true;
      preempt(victim);
      if (&victim == &s) break;
    }
  }
  return preempted;
}

// Admission in policy order; nobody overtakes the head of the queue.
// NoEvict reserves every block the request can ever need (prompt + maxTokens);
// MaxUtilization only what its prompt (for a preempted one: its whole context) needs now.
// With itl_cap_ms, a request joins only while a decode step of the enlarged
// batch is predicted to stay under the cap: the cap bounds the running batch,
// not just the prefill beside it (one sequence always runs, or nothing would).
void Scheduler::admit(double t, EventBatch& out) {
  const bool itl_bound = options_.itl_cap_ms > 0 && step_time_.ready();
  // Until the step-time model is fitted, a capped scheduler lets requests in a
  // couple at a time, so an early burst cannot fill the batch past the cap.
  int32_t warmup_admits = options_.itl_cap_ms > 0 && !itl_bound ? 2 : INT32_MAX;
  double decode_tokens = 0, decode_attended = 0;
  if (itl_bound)
    for (const auto& s : running_) {
      decode_tokens += 1;
      decode_attended += StepTimeModel::attended_of(static_cast<int32_t>(s->context.size()), 1);
    }
  const WaitLimits limits{options_.max_batch_size, options_.max_batch_tokens};
  while (!waiting_.empty() && static_cast<int32_t>(running_.size()) < options_.max_batch_size) {
    Sequence& head = *waiting_.front();
    if (step_time_.ready()) {
      // A request that cannot finish by its deadline even if started now never starts: its work would be thrown away.
      if (!head.started && std::isfinite(head.deadline_at) && t + predict_service_ms(service_inputs(head, nullptr), limits, step_time_) > head.deadline_at) {
        finish(head, FinishReason::DeadlineUnmeetable, out);
        waiting_.pop_front();
        continue;
      }
      // Nor does one whose prefill would make a running request miss the deadline it would meet without it: it waits.
      if (makes_late(head, t)) break;
    }
    if (warmup_admits-- <= 0) break;
    if (itl_bound && !running_.empty()) {
      const double attended = StepTimeModel::attended_of(static_cast<int32_t>(head.context.size()), 1);
      if (step_time_.predict(decode_tokens + 1, decode_attended + attended) > options_.itl_cap_ms) break;
      decode_tokens += 1;
      decode_attended += attended;
    }
    const int64_t need = options_.kv_policy == KvPolicy::NoEvict ? head.max_positions
                                                                 : static_cast<int64_t>(head.context.size());
    if (!blocks_.ensure(head.blocks, need)) break;
    if (!head.started) out.admissions.emplace_back(head.id, t - head.submit_ms);
    head.started = true;
    running_.push_back(std::move(waiting_.front()));
    waiting_.pop_front();
  }
}

// A request as predict_service_ms reads it: itself, and the batch it is in or
// would join — with `joining` admitted beside it when given.
ServiceInputs Scheduler::service_inputs(const Sequence& seq, const Sequence* joining) const {
  ServiceInputs in;
  for (const auto& s : running_) {
    if (s.get() == &seq) continue;
    ++in.running;
    in.running_attended += static_cast<double>(s->context.size());
    in.running_pending += s->pending() > 1 ? s->pending() : 0;  // a pending 1 is its next decode
  }
  if (joining) {
    ++in.running;
    in.running_attended += static_cast<double>(joining->context.size());
    in.running_pending += joining->pending();
  }
  in.pending = seq.pending() > 1 || seq.generated == 0 ? seq.pending() : 0;
  in.position = seq.computed;
  in.tokens_left = std::max(1, seq.max_positions - static_cast<int32_t>(seq.context.size()) + (seq.generated > 0 ? 1 : 0));
  return in;
}

// Whether admitting `head` now would push a running request with a deadline past it, when it would make it otherwise.
bool Scheduler::makes_late(const Sequence& head, double t) const {
  const WaitLimits limits{options_.max_batch_size, options_.max_batch_tokens};
  for (const auto& s : running_) {
    if (!std::isfinite(s->deadline_at)) continue;
    const double without = predict_service_ms(service_inputs(*s, nullptr), limits, step_time_);
    const double with = predict_service_ms(service_inputs(*s, &head), limits, step_time_);
    if (t + without <= s->deadline_at && t + with > s->deadline_at) return true;
  }
  return false;
}

// Decodes first (one pending token each), then prompt chunks in admission order,
// within max_batch_tokens; with itl_cap_ms and decodes present, prefill is
// limited so the predicted step time stays under the cap.
void Scheduler::compose(StepPlan& plan) {
  int32_t budget = options_.max_batch_tokens;
  auto add = [&](Sequence& s, int32_t chunk) {
    SeqStep step;
    step.id = s.id;
    step.tokens = std::span<const int32_t>(s.context.data() + s.computed, chunk);
    step.pos = s.computed;
    step.kv_blocks = s.blocks;
    step.want_logits = s.computed + chunk == static_cast<int32_t>(s.context.size());
    plan.steps.push_back(step);
    plan.seqs.push_back(&s);
    budget -= chunk;
    plan.tokens += chunk;
    plan.attended += StepTimeModel::attended_of(s.computed, chunk);
  };
  for (auto& s : running_) {
    if (budget <= 0) break;
    if (s->decoding()) {
      add(*s, 1);
      ++plan.decodes;
    }
  }
  const bool capped = options_.itl_cap_ms > 0 && plan.decodes > 0;
  const bool fitted = capped && step_time_.ready();
  double time_left = fitted ? options_.itl_cap_ms - step_time_.predict(plan.tokens, plan.attended) : 0;
  // Trust region: never more than 1.5x the largest prefill already measured to fit under the
  // cap next to decodes (and only the warm-up amount while the model is not ready). A fit thrown
  // off by noise can then overshoot the cap by a bounded amount, once, before it learns.
  int32_t prefill_left = fitted ? std::max(kWarmupPrefillTokens, static_cast<int32_t>(1.5 * prefill_ok_tokens_))
                                : kWarmupPrefillTokens;
  for (auto& s : running_) {
    if (budget <= 0) break;
    const int32_t pending = s->pending();
    if (pending <= 0 || s->decoding()) continue;
    int32_t chunk = std::min(pending, budget);
    if (capped) {
      chunk = std::min(chunk, prefill_left);
      if (fitted) {
        chunk = step_time_.max_chunk(s->computed, chunk, time_left);
        time_left -= step_time_.chunk_cost(s->computed, chunk);
      }
      prefill_left -= chunk;
      if (chunk <= 0) break;
    }
    add(*s, chunk);
  }
}

// --- execute: run the provider ---------------------------------------------------------

// A provider that throws fails the sequences of this step, not the scheduler.
StepOutputs Scheduler::execute(const StepPlan& plan) {
  StepOutputs outputs;
  outputs.logits = &logits_;
  const double t0 = steady_ms();
  try {
    provider_->step(plan.steps, logits_);
  } catch (const std::exception& e) {
    outputs.failed = true;
    outputs.error = e.what();
  }
  outputs.step_ms = steady_ms() - t0;
  local_.step_ms_total += outputs.step_ms;
  return outputs;
}

// --- update: act on what came back -----------------------------------------------------

// Sampling and emitting is sample_ms; the bookkeeping around it is schedule_ms.
void Scheduler::update(const StepPlan& plan, const StepOutputs& outputs, EventBatch& out) {
  const double t0 = steady_ms();
  if (outputs.failed) {
    fail_step(plan, outputs.error, out);
    local_.schedule_ms_total += steady_ms() - t0;
    return;
  }
  learn_step_time(plan, outputs.step_ms);
  out.step_sequences = static_cast<int32_t>(plan.steps.size());
  out.step_tokens = plan.tokens;

  // A sequence that completes in a step which ended past its deadline reports
  // deadline_exceeded (with all its tokens): no request finishes late silently.
  const double t_end = now();
  const double sample_t0 = steady_ms();
  const LogitsOut& logits = *outputs.logits;
  const auto row_of = [&](int32_t r) { return std::span<const float>(logits.row(r), static_cast<size_t>(logits.vocab)); };
  draws_.clear();
  for (size_t i = 0; i < plan.steps.size(); ++i) {
    const SeqStep& step = plan.steps[i];
    Sequence& s = *plan.seqs[i];
    const auto fed = static_cast<int32_t>(step.tokens.size());
    if (static_cast<int32_t>(i) >= plan.decodes) local_.prompt_tokens += fed;
    s.computed += fed;
    // A prompt chunk short of the prompt's end draws nothing.
    if (step.want_logits) draws_.push_back({plan.seqs[i], static_cast<int32_t>(draws_.size()), -1});
  }
  // Each sequence's sampler is its own and reads only its row and context: the
  // rows are drawn in parallel, on the provider's threads, then emitted in order.
  auto draw = [&](int64_t b, int64_t e) {
    for (int64_t j = b; j < e; ++j) {
      Draw& d = draws_[j];
      d.token = d.seq->sampler->sample(row_of(d.row), d.seq->context, static_cast<int32_t>(d.seq->request.prompt.size()),
                                       static_cast<uint64_t>(d.seq->generated));
    }
  };
  // A few rows cost less than waking the threads.
  constexpr size_t kParallelDraws = 8;
  if (draws_.size() >= kParallelDraws) provider_->parallel_for(static_cast<int64_t>(draws_.size()), draw);
  else draw(0, static_cast<int64_t>(draws_.size()));
  const uint64_t generated = draws_.size();
  for (const Draw& d : draws_) {
    Sequence& s = *d.seq;
    const int32_t token = d.token;
    record(s, row_of(d.row), token, out);
    const FinishReason reason = completion(s, token);
    if (reason == FinishReason::None)
      out.events.push_back({s.id, token, FinishReason::None});
    else
      finish(s, t_end > s.deadline_at ? FinishReason::DeadlineExceeded : reason, out, token);
  }
  drop_finished();
  local_.steps += 1;
  local_.tokens_generated += generated;
  const double sample_ms = steady_ms() - sample_t0;
  local_.sample_ms_total += sample_ms;
  local_.schedule_ms_total += steady_ms() - t0 - sample_ms;
}

void Scheduler::fail_step(const StepPlan& plan, const std::string& error, EventBatch& out) {
  for (Sequence* s : plan.seqs) {
    out.errors.emplace_back(s->id, error);
    finish(*s, FinishReason::Error, out);
  }
  drop_finished();
}

// Only steps that ran to the end teach the model; a step within the cap next to
// decodes widens the trust region compose() gives prefill.
void Scheduler::learn_step_time(const StepPlan& plan, double step_ms) {
  step_time_.observe(plan.tokens, plan.attended, step_ms);
  if (options_.itl_cap_ms > 0 && plan.decodes > 0 && step_ms <= options_.itl_cap_ms)
    prefill_ok_tokens_ = std::max(prefill_ok_tokens_, static_cast<double>(plan.prefill_tokens()));
}

void Scheduler::record(Sequence& s, std::span<const float> logits, int32_t token, EventBatch& out) {
  if (s.request.capture_logits) out.logits.emplace_back(s.id, std::vector<float>(logits.begin(), logits.end()));
  if (s.request.logprobs >= 0) out.logprobs.emplace_back(s.id, token_logprobs(logits, token, s.request.logprobs));
  s.context.push_back(token);  // reserved at submit: the step's spans into it stay valid
  ++s.generated;
}

// How a sequence that just drew `token` ends, or None when it goes on.
FinishReason Scheduler::completion(const Sequence& s, int32_t token) const {
  if (s.sampler->is_stop(token)) return FinishReason::Stop;
  if (s.generated >= s.request.max_tokens || static_cast<int32_t>(s.context.size()) >= s.max_positions)
    return FinishReason::Length;
  return FinishReason::None;
}

void Scheduler::finish(Sequence& seq, FinishReason reason, EventBatch& out, int32_t last_token) {
  out.events.push_back({seq.id, last_token, reason});
  blocks_.release(seq.blocks);
  seq.done = true;
  switch (reason) {
    case FinishReason::Cancelled: ++local_.finished_cancelled; break;
    case FinishReason::Error: ++local_.finished_error; break;
    case FinishReason::DeadlineExceeded: ++local_.finished_deadline; break;
    case FinishReason::QueueTimeout: ++local_.finished_queue_timeout; break;
    case FinishReason::DeadlineUnmeetable: ++local_.rejected_deadline; break;
    default: break;
  }
}

void Scheduler::drop_finished() {
  std::erase_if(running_, [](const std::unique_ptr<Sequence>& s) { return s->done; });
}

}  // namespace neoserve
