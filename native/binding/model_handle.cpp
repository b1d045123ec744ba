#include "model_handle.h"

#include "addon_data.h"
#include "js_errors.h"
#include "js_options.h"
#include "js_request.h"
#include "js_values.h"

namespace neoserve::binding {

namespace {

// Stops the scheduler and frees the engine off the JS thread: joining waits for the step in progress.
class DisposeWorker : public Napi::AsyncWorker {
 public:
  DisposeWorker(Napi::Env env, std::function<void()> release, std::function<void()> on_done)
      : Napi::AsyncWorker(env, "neoserve-dispose"), deferred_(Napi::Promise::Deferred::New(env)),
        release_(std::move(release)), on_done_(std::move(on_done)) {}
  Napi::Promise promise() const { return deferred_.Promise(); }
  void Execute() override { release_(); }
  void OnOK() override {
    on_done_();
    deferred_.Resolve(Env().Undefined());
  }

 private:
  Napi::Promise::Deferred deferred_;
  std::function<void()> release_;
  std::function<void()> on_done_;
};

}  // namespace

Napi::Function ModelHandle::Define(Napi::Env env) {
  return DefineClass(env, "ModelHandle",
                     {InstanceMethod("info", &ModelHandle::Info),  InstanceMethod("submit", &ModelHandle::Submit), InstanceMethod("cancel", &ModelHandle::Cancel),
                      InstanceMethod("holdStart", &ModelHandle::HoldStart), InstanceMethod("releaseStart", &ModelHandle::ReleaseStart),
                      InstanceMethod("stats", &ModelHandle::Stats), InstanceMethod("dispose", &ModelHandle::Dispose)});
}

Napi::Object ModelHandle::Create(Napi::Env env, LoadedModel loaded, Napi::Function on_events) {
  Napi::Object obj = AddonData::of(env).model_handle.New({});  // this environment's class
  ModelHandle* self = Unwrap(obj);
  self->loaded_ = std::move(loaded);
  // Event batches may still be queued when dispose() returns: the JS object (and
  // so `self`) stays pinned until the thread-safe function has delivered them all.
  self->pinned_ = Napi::Persistent(obj);
  self->events_ = EventsFn::New(env, on_events, "neoserve-events", 0, 1, self,
                                [](Napi::Env, void*, ModelHandle* handle) { handle->pinned_.Reset(); });
  self->events_.Unref(env);  // only requests in flight keep the process alive
  self->teardown_.add(env, &ModelHandle::on_env_teardown, self);  // after the function: runs before its hook
  self->scheduler_ = std::make_unique<Scheduler>(self->loaded_.provider, *self, self->loaded_.scheduler);
  return obj;
}

void ModelHandle::on_env_teardown(void* arg) {
  auto* self = static_cast<ModelHandle*>(arg);
  self->teardown_.ran();
  self->disposed_ = true;
  self->release_native();  // joins the scheduler thread: nothing is delivered after this
  // Still open here (its own hook runs next and drops what is queued, unseen by JS).
  self->events_.Release();
  self->events_ = EventsFn();
}

ModelHandle::ModelHandle(const Napi::CallbackInfo& info) : Napi::ObjectWrap<ModelHandle>(info) {}

ModelHandle::~ModelHandle() {
  if (!disposed_) {
    release_native();
    if (events_) events_.Release();
  }
}

void ModelHandle::release_native() {
  if (scheduler_) scheduler_->shutdown();
  scheduler_.reset();
  loaded_ = LoadedModel{};
}

void ModelHandle::deliver(EventBatch&& batch) {
  auto* heap = new EventBatch(std::move(batch));
  if (events_.NonBlockingCall(heap) != napi_ok) delete heap;
}

void call_js_with_events(Napi::Env env, Napi::Function callback, ModelHandle* self, EventBatch* batch) {
  std::unique_ptr<EventBatch> owned(batch);
  if (!env || !callback) return;  // the function is being torn down
  const size_t n = owned->events.size();
  auto ids = Napi::Uint32Array::New(env, n);
  auto tokens = Napi::Int32Array::New(env, n);
  auto finishes = Napi::Uint8Array::New(env, n);
  int64_t finished = 0;
  for (size_t i = 0; i < n; ++i) {
    const TokenEvent& e = owned->events[i];
    ids[i] = e.id;
    tokens[i] = e.token;
    finishes[i] = static_cast<uint8_t>(e.finish);
    finished += e.finish != FinishReason::None;
  }
  auto errors = Napi::Array::New(env, owned->errors.size());
  for (size_t i = 0; i < owned->errors.size(); ++i) {
    auto entry = Napi::Object::New(env);
    entry.Set("id", owned->errors[i].first);
    entry.Set("message", owned->errors[i].second);
    errors.Set(static_cast<uint32_t>(i), entry);
  }
  auto logits = Napi::Array::New(env, owned->logits.size());
  for (size_t i = 0; i < owned->logits.size(); ++i) {
    const std::vector<float>& row = owned->logits[i].second;
    auto data = Napi::Float32Array::New(env, row.size());
    std::copy(row.begin(), row.end(), data.Data());
    auto entry = Napi::Object::New(env);
    entry.Set("id", owned->logits[i].first);
    entry.Set("data", data);
    logits.Set(static_cast<uint32_t>(i), entry);
  }
  auto logprobs = Napi::Array::New(env, owned->logprobs.size());
  for (size_t i = 0; i < owned->logprobs.size(); ++i) {
    const TokenLogprobs& lp = owned->logprobs[i].second;
    auto ids = Napi::Int32Array::New(env, lp.top_ids.size());
    std::copy(lp.top_ids.begin(), lp.top_ids.end(), ids.Data());
    auto values = Napi::Float32Array::New(env, lp.top_logprobs.size());
    std::copy(lp.top_logprobs.begin(), lp.top_logprobs.end(), values.Data());
    auto entry = Napi::Object::New(env);
    entry.Set("id", owned->logprobs[i].first);
    entry.Set("logprob", lp.logprob);
    entry.Set("topIds", ids);
    entry.Set("topLogprobs", values);
    logprobs.Set(static_cast<uint32_t>(i), entry);
  }
  auto admissions = Napi::Array::New(env, owned->admissions.size());
  for (size_t i = 0; i < owned->admissions.size(); ++i) {
    auto entry = Napi::Object::New(env);
    entry.Set("id", owned->admissions[i].first);
    entry.Set("queuedMs", owned->admissions[i].second);
    admissions.Set(static_cast<uint32_t>(i), entry);
  }
  if (finished > 0 && self->in_flight_ > 0) {
    self->in_flight_ -= std::min(finished, self->in_flight_);
    if (self->in_flight_ == 0 && !self->disposed_) self->events_.Unref(env);
  }
  auto step = Napi::Array::New(env, 2);
  step.Set(0u, owned->step_sequences);
  step.Set(1u, owned->step_tokens);
  callback.Call({ids, tokens, finishes, errors, logits, admissions, step, logprobs});
}

void ModelHandle::check_live(Napi::Env env) const {
  if (disposed_ || !scheduler_) throw to_js_error(env, Error(ErrorCode::Disposed, "the model has been disposed"));
}

Napi::Value ModelHandle::Info(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  check_live(env);
  const ProviderInfo p = loaded_.provider->info();
  const KvGeometry kv = loaded_.provider->kv();
  const LlamaConfig& c = loaded_.weights->config;
  auto config = Napi::Object::New(env);
  config.Set("hiddenSize", c.hidden_size);
  config.Set("intermediateSize", c.intermediate_size);
  config.Set("numLayers", c.num_hidden_layers);
  config.Set("numHeads", c.num_attention_heads);
  config.Set("numKvHeads", c.num_key_value_heads);
  config.Set("headDim", c.head_dim);
  config.Set("vocabSize", c.vocab_size);
  config.Set("maxPositionEmbeddings", c.max_position_embeddings);
  config.Set("bosTokenId", c.bos_token_id);
  config.Set("eosTokenIds", js_array(env, c.eos_token_ids));
  auto kvo = Napi::Object::New(env);
  kvo.Set("blockSize", kv.block_size);
  kvo.Set("numBlocks", kv.num_blocks);
  kvo.Set("bytesPerBlock", static_cast<double>(kv.bytes_per_block));
  const WorkingMemory& m = p.memory;
  const SchedulerOptions& so = loaded_.scheduler;
  const int64_t rows = std::min(so.max_batch_tokens, so.max_batch_size);
  auto memory = Napi::Object::New(env);
  memory.Set("weightsBytes", static_cast<double>(m.weights_bytes));
  memory.Set("kvBytes", static_cast<double>(m.kv_bytes));
  memory.Set("scratchBytes", static_cast<double>(m.total(so.max_batch_tokens, rows) - m.weights_bytes - m.kv_bytes));
  auto out = Napi::Object::New(env);
  out.Set("backend", p.name);
  out.Set("device", p.device);
  out.Set("precision", p.precision);
  out.Set("vocabSize", p.vocab_size);
  out.Set("maxContext", p.max_context);
  out.Set("source", loaded_.weights->source);
  const ModelFormat format = loaded_.weights->format;
  out.Set("format", model_format_name(format));
  out.Set("fallbackReason", loaded_.fallback_reason);
  out.Set("weightCache", p.weight_cache);
  out.Set("config", config);
  out.Set("kv", kvo);
  out.Set("memory", memory);
  return out;
}

Napi::Value ModelHandle::Submit(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  check_live(env);
  if (info.Length() < 1 || !info[0].IsObject()) throw to_js_error(env, Error(ErrorCode::InvalidRequest, "submit needs a request object"));
  const RequestId id = guarded(env, [&] { return scheduler_->submit(read_request(info[0].As<Napi::Object>())); });
  if (in_flight_++ == 0) events_.Ref(env);
  return Napi::Number::New(env, id);
}

// cancel(id, reason?): "stop" when the caller's stop string ended the request, else a cancellation.
Napi::Value ModelHandle::Cancel(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (disposed_ || !scheduler_ || info.Length() < 1 || !info[0].IsNumber()) return env.Undefined();
  const bool stop = info.Length() > 1 && info[1].IsString() && info[1].As<Napi::String>().Utf8Value() == "stop";
  scheduler_->cancel(info[0].As<Napi::Number>().Uint32Value(), stop ? FinishReason::Stop : FinishReason::Cancelled);
  return env.Undefined();
}

Napi::Value ModelHandle::HoldStart(const Napi::CallbackInfo& info) {
  if (!disposed_ && scheduler_) scheduler_->hold_start();
  return info.Env().Undefined();
}

Napi::Value ModelHandle::ReleaseStart(const Napi::CallbackInfo& info) {
  if (!disposed_ && scheduler_) scheduler_->release_start();
  return info.Env().Undefined();
}

Napi::Value ModelHandle::Stats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  check_live(env);
  const SchedulerStats s = scheduler_->stats();
  auto out = Napi::Object::New(env);
  out.Set("waiting", s.waiting);
  out.Set("running", s.running);
  out.Set("kvBlocksUsed", s.kv_blocks_used);
  out.Set("kvBlocksFree", s.kv_blocks_free);
  out.Set("steps", static_cast<double>(s.steps));
  out.Set("tokensGenerated", static_cast<double>(s.tokens_generated));
  out.Set("promptTokens", static_cast<double>(s.prompt_tokens));
  out.Set("preemptions", static_cast<double>(s.preemptions));
  auto rejected = Napi::Object::New(env);
  rejected.Set("queue_full", static_cast<double>(s.rejected_queue_full));
  rejected.Set("queue_timeout", static_cast<double>(s.finished_queue_timeout));
  rejected.Set("deadline_exceeded", static_cast<double>(s.finished_deadline));
  rejected.Set("deadline_unmeetable", static_cast<double>(s.rejected_deadline));
  rejected.Set("cancelled", static_cast<double>(s.finished_cancelled));
  rejected.Set("error", static_cast<double>(s.finished_error));
  out.Set("endedEarly", rejected);
  out.Set("stepMsTotal", s.step_ms_total);
  out.Set("scheduleMsTotal", s.schedule_ms_total);
  out.Set("sampleMsTotal", s.sample_ms_total);
  if (s.predicted_wait_ms >= 0) out.Set("predictedWaitMs", s.predicted_wait_ms);
  const StepTimeModel steps = scheduler_->step_time_model();
  if (steps.ready()) {
    // A prompt of n tokens alone in a step: a + b·n + c·n(n+1)/2 ms.
    auto fit = Napi::Object::New(env);
    fit.Set("a", steps.a());
    fit.Set("b", steps.b());
    fit.Set("c", steps.c());
    fit.Set("minMs", steps.floor_ms());
    fit.Set("minTokens", steps.min_tokens());
    out.Set("stepTime", fit);
  }
  return out;
}

Napi::Value ModelHandle::Dispose(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (disposed_) {
    auto done = Napi::Promise::Deferred::New(env);
    done.Resolve(env.Undefined());
    return done.Promise();
  }
  disposed_ = true;  // from here on only the worker touches the scheduler and the engine
  teardown_.remove();  // a teardown waits for the worker (Node waits for async work in flight)
  auto* worker = new DisposeWorker(env, [this] { release_native(); }, [this, env] {
    if (in_flight_ > 0) events_.Unref(env);
    events_.Release();
  });
  worker->Queue();
  return worker->promise();
}

}  // namespace neoserve::binding
