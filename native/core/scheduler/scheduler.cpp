#include "scheduler.h"

#include <algorithm>

#include "../error.h"

namespace neoserve {

const char* finish_reason_name(FinishReason r) {
  switch (r) {
    case FinishReason::None: return "none";
    case FinishReason::Stop: return "stop";
    case FinishReason::Length: return "length";
    case FinishReason::Cancelled: return "cancelled";
    case FinishReason::Error: return "error";
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

}  // namespace

Scheduler::Scheduler(std::shared_ptr<Provider> provider, EventSink& sink, SchedulerOptions options)
    : provider_(std::move(provider)),
      sink_(sink),
      options_(options),
      info_(provider_->info()),
      blocks_(checked_geometry(*provider_).num_blocks, checked_geometry(*provider_).block_size) {
  if (options_.max_batch_size < 1) throw_invalid("maxBatchSize must be at least 1");
  if (options_.max_batch_tokens < 1) throw_invalid("maxBatchTokens must be at least 1");
  thread_ = std::thread([this] { run(); });
}

Scheduler::~Scheduler() { shutdown(); }

RequestId Scheduler::submit(GenerationRequest request) {
  const auto prompt_len = static_cast<int64_t>(request.prompt.size());
  if (prompt_len == 0) throw_invalid("the prompt has no tokens");
  if (prompt_len >= info_.max_context)
    throw_invalid("the prompt has " + std::to_string(prompt_len) + " tokens; the model's context is " +
                  std::to_string(info_.max_context));
  for (int32_t t : request.prompt)
    if (t < 0 || t >= info_.vocab_size)
      throw_invalid("prompt token " + std::to_string(t) + " is outside the vocabulary [0, " +
                    std::to_string(info_.vocab_size) + ")");
  if (request.max_tokens < 1) throw_invalid("maxTokens must be at least 1");
  request.sampling.validate(info_.vocab_size);

  auto seq = std::make_unique<Sequence>();
  seq->max_positions =
      static_cast<int32_t>(std::min<int64_t>(prompt_len + request.max_tokens, info_.max_context));
  if (blocks_.blocks_for(seq->max_positions) > blocks_.num_blocks())
    throw_invalid("the request needs " + std::to_string(blocks_.blocks_for(seq->max_positions)) +
                  " KV blocks; the cache has " + std::to_string(blocks_.num_blocks()));
  seq->context = request.prompt;
  seq->context.reserve(seq->max_positions);
  seq->sampler = std::make_unique<Sampler>(request.sampling);
  seq->request = std::move(request);

  std::lock_guard lock(mutex_);
  if (stopping_) throw Error(ErrorCode::InvalidRequest, "the model has been disposed");
  seq->id = next_id_++;
  const RequestId id = seq->id;
  waiting_.push_back(std::move(seq));
  stats_.waiting = static_cast<int32_t>(waiting_.size());
  wake_.notify_one();
  return id;
}

void Scheduler::cancel(RequestId id) {
  std::lock_guard lock(mutex_);
  cancelled_.insert(id);
  wake_.notify_one();
}

SchedulerStats Scheduler::stats() const {
  std::lock_guard lock(mutex_);
  return stats_;
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

void Scheduler::finish(Sequence& seq, FinishReason reason, EventBatch& out, int32_t last_token) {
  out.events.push_back({seq.id, last_token, reason});
  blocks_.release(seq.blocks);
}

// Admission reserves every block a request can ever need (prompt + maxTokens),
// so a running sequence never runs out of cache mid-generation.
void Scheduler::admit() {
  while (!waiting_.empty() && static_cast<int32_t>(running_.size()) < options_.max_batch_size) {
    Sequence& head = *waiting_.front();
    if (!blocks_.ensure(head.blocks, head.max_positions)) break;  // FCFS: nobody overtakes the head
    running_.push_back(std::move(waiting_.front()));
    waiting_.pop_front();
  }
}

void Scheduler::iterate(EventBatch& out) {
  {
    std::lock_guard lock(mutex_);
    if (!cancelled_.empty()) {
      auto is_cancelled = [&](const std::unique_ptr<Sequence>& s) { return cancelled_.count(s->id) > 0; };
      for (auto& s : running_)
        if (is_cancelled(s)) finish(*s, FinishReason::Cancelled, out);
      for (auto& s : waiting_)
        if (is_cancelled(s)) finish(*s, FinishReason::Cancelled, out);
      std::erase_if(running_, is_cancelled);
      std::erase_if(waiting_, is_cancelled);
      cancelled_.clear();
    }
    admit();
  }
  if (running_.empty()) return;

  // Decodes first (one pending token each), then prompt chunks in admission order.
  batch_.clear();
  std::vector<Sequence*> stepped;
  int32_t budget = options_.max_batch_tokens;
  for (int pass = 0; pass < 2; ++pass) {
    for (auto& s : running_) {
      const int32_t pending = static_cast<int32_t>(s->context.size()) - s->computed;
      const bool decoding = s->generated > 0;
      if (decoding != (pass == 0) || pending <= 0 || budget <= 0) continue;
      const int32_t chunk = std::min(pending, budget);
      budget -= chunk;
      SeqStep step;
      step.id = s->id;
      step.tokens = std::span<const int32_t>(s->context.data() + s->computed, chunk);
      step.pos = s->computed;
      step.kv_blocks = s->blocks;
      step.want_logits = s->computed + chunk == static_cast<int32_t>(s->context.size());
      batch_.push_back(step);
      stepped.push_back(s.get());
    }
  }

  try {
    provider_->step(batch_, logits_);
  } catch (const std::exception& e) {
    for (Sequence* s : stepped) {
      out.errors.emplace_back(s->id, e.what());
      finish(*s, FinishReason::Error, out);
      s->id = 0;  // marks it for removal below
    }
    std::erase_if(running_, [](const std::unique_ptr<Sequence>& s) { return s->id == 0; });
    return;
  }

  int32_t row = 0;
  uint64_t generated = 0;
  for (size_t i = 0; i < stepped.size(); ++i) {
    Sequence& s = *stepped[i];
    s.computed += static_cast<int32_t>(batch_[i].tokens.size());
    if (!batch_[i].want_logits) continue;
    const float* row_logits = logits_.row(row++);
    if (s.request.capture_logits) out.logits.emplace_back(s.id, std::vector<float>(row_logits, row_logits + logits_.vocab));
    const int32_t token = s.sampler->sample({row_logits, static_cast<size_t>(logits_.vocab)}, s.context,
                                            static_cast<int32_t>(s.request.prompt.size()),
                                            static_cast<uint64_t>(s.generated));
    s.context.push_back(token);
    ++s.generated;
    ++generated;
    if (s.sampler->is_stop(token)) {
      finish(s, FinishReason::Stop, out, token);
    } else if (s.generated >= s.request.max_tokens || static_cast<int32_t>(s.context.size()) >= s.max_positions) {
      finish(s, FinishReason::Length, out, token);
    } else {
      out.events.push_back({s.id, token, FinishReason::None});
      continue;
    }
    s.id = 0;
  }
  std::erase_if(running_, [](const std::unique_ptr<Sequence>& s) { return s->id == 0; });

  std::lock_guard lock(mutex_);
  stats_.steps += 1;
  stats_.tokens_generated += generated;
}

void Scheduler::run() {
  EventBatch out;
  for (;;) {
    {
      std::unique_lock lock(mutex_);
      wake_.wait(lock, [&] { return stopping_ || !waiting_.empty() || !cancelled_.empty() || !running_.empty(); });
      if (stopping_) break;
    }
    iterate(out);
    {
      std::lock_guard lock(mutex_);
      stats_.waiting = static_cast<int32_t>(waiting_.size());
      stats_.running = static_cast<int32_t>(running_.size());
      stats_.kv_blocks_used = blocks_.used_blocks();
      stats_.kv_blocks_free = blocks_.free_blocks();
    }
    if (!out.events.empty()) {
      sink_.deliver(std::move(out));
      out = EventBatch{};
    }
  }
  // Shutdown: every request still in flight ends exactly once, as cancelled.
  std::lock_guard lock(mutex_);
  for (auto& s : running_) finish(*s, FinishReason::Cancelled, out);
  for (auto& s : waiting_) finish(*s, FinishReason::Cancelled, out);
  running_.clear();
  waiting_.clear();
  stats_.waiting = stats_.running = 0;
  if (!out.events.empty()) sink_.deliver(std::move(out));
}

}  // namespace neoserve
