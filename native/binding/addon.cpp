// Module entry: loadModel() builds the engine off the JS thread and resolves to a ModelHandle.
#include <napi.h>

#include "addon_data.h"
#include "js_errors.h"
#include "js_options.h"
#include "model_handle.h"
#include "telemetry_handle.h"
#include "providers/registry.h"

namespace neoserve::binding {

namespace {

class LoadWorker : public Napi::AsyncWorker {
 public:
  LoadWorker(Napi::Env env, std::string path, ProviderOptions options, SchedulerOptions scheduler, Napi::Function on_events)
      : Napi::AsyncWorker(env, "neoserve-load"), deferred_(Napi::Promise::Deferred::New(env)), path_(std::move(path)),
        options_(std::move(options)) {
    loaded_.scheduler = scheduler;
    on_events_ = Napi::Persistent(on_events);
  }
  Napi::Promise promise() const { return deferred_.Promise(); }

  void Execute() override {
    try {
      LoadedEngine engine = load_engine(path_, options_);
      loaded_.weights = std::move(engine.weights);
      loaded_.provider = std::move(engine.provider);
      loaded_.fallback_reason = std::move(engine.fallback_reason);
    } catch (const Error& e) {
      code_ = e.code();
      SetError(e.what());
    } catch (const std::exception& e) {
      code_ = ErrorCode::Internal;
      SetError(e.what());
    }
  }
  // When the environment is torn down during a load (worker.terminate()), Node
  // still runs this completion, but JS can no longer run: Create throws, the
  // engine is freed with `loaded_`, and the failed reject is dropped (nobody
  // awaits the promise; NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS).
  void OnOK() override {
    Napi::Env env = Env();
    try {
      deferred_.Resolve(ModelHandle::Create(env, std::move(loaded_), on_events_.Value()));
    } catch (const Napi::Error& e) {
      deferred_.Reject(e.Value());
    } catch (const std::exception& e) {
      deferred_.Reject(to_js_error(env, e).Value());
    }
  }
  void OnError(const Napi::Error& e) override {
    Napi::Error err = Napi::Error::New(Env(), e.Message());
    err.Set("code", error_code_name(code_));
    deferred_.Reject(err.Value());
  }

 private:
  Napi::Promise::Deferred deferred_;
  std::string path_;
  ProviderOptions options_;
  LoadedModel loaded_;
  Napi::FunctionReference on_events_;
  ErrorCode code_ = ErrorCode::Internal;
};

// loadModel(path, options, onEvents) → Promise<ModelHandle>
Napi::Value LoadModel(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 3 || !info[0].IsString() || !info[1].IsObject() || !info[2].IsFunction())
    throw to_js_error(env, Error(ErrorCode::InvalidRequest, "loadModel(path, options, onEvents)"));
  Napi::Object o = info[1].As<Napi::Object>();
  ProviderOptions options;
  SchedulerOptions scheduler;
  guarded(env, [&] {
    options.backend = string_or(o, "backend", "auto");
    options.precision = string_or(o, "precision", "auto");
    options.threads = int_or(o, "threads", 0);
    options.device = string_or(o, "device", "");
    options.kv_block_size = int_or(o, "kvBlockSize", 16);
    const double kv_bytes = number_or(o, "kvMemoryBytes", 0);
    if (kv_bytes < 0) throw_invalid("kvMemoryBytes must be 0 (default) or more");
    options.kv_memory_bytes = static_cast<size_t>(kv_bytes);
    scheduler.max_batch_size = int_or(o, "maxBatchSize", scheduler.max_batch_size);
    scheduler.max_batch_tokens = int_or(o, "maxBatchTokens", scheduler.max_batch_tokens);
    scheduler.max_queue_size = int_or(o, "maxQueueSize", 0);
    scheduler.max_queue_delay_ms = number_or(o, "maxQueueDelayMs", 0);
    scheduler.itl_cap_ms = number_or(o, "itlCapMs", 0);
    const std::string policy = string_or(o, "policy", "fcfs");
    if (policy == "fcfs") scheduler.policy = SchedulePolicy::Fcfs;
    else if (policy == "priority") scheduler.policy = SchedulePolicy::Priority;
    else if (policy == "edf") scheduler.policy = SchedulePolicy::Edf;
    else throw_invalid("policy must be \"fcfs\", \"priority\" or \"edf\", got \"" + policy + "\"");
    const std::string kv_policy = string_or(o, "kvPolicy", "no-evict");
    if (kv_policy == "no-evict") scheduler.kv_policy = KvPolicy::NoEvict;
    else if (kv_policy == "max-utilization") scheduler.kv_policy = KvPolicy::MaxUtilization;
    else throw_invalid("kvPolicy must be \"no-evict\" or \"max-utilization\", got \"" + kv_policy + "\"");
    if (scheduler.max_queue_size < 0) throw_invalid("maxQueueSize must be 0 (unbounded) or more");
    if (!(scheduler.max_queue_delay_ms >= 0)) throw_invalid("maxQueueDelayMs must be 0 (no cap) or more");
    if (!(scheduler.itl_cap_ms >= 0)) throw_invalid("itlCapMs must be 0 (off) or more");
    if (options.kv_block_size < 1 || options.kv_block_size > 1024) throw_invalid("kvBlockSize must be in [1, 1024]");
    if (scheduler.max_batch_size < 1) throw_invalid("maxBatchSize must be at least 1");
    if (scheduler.max_batch_tokens < 1) throw_invalid("maxBatchTokens must be at least 1");
    return 0;
  });
  auto* worker = new LoadWorker(env, info[0].As<Napi::String>().Utf8Value(), options, scheduler,
                                info[2].As<Napi::Function>());
  worker->Queue();
  return worker->promise();
}

}  // namespace

// Runs once per environment that loads the addon (the main thread, each worker_thread).
Napi::Object Init(Napi::Env env, Napi::Object exports) {
  auto* data = new AddonData();
  env.SetInstanceData(data);  // deleted by Node with the environment
  data->model_handle = Napi::Persistent(ModelHandle::Define(env));
  data->telemetry_handle = Napi::Persistent(TelemetryHandle::Define(env));
  exports.Set("loadModel", Napi::Function::New(env, LoadModel, "loadModel"));
  exports.Set("TelemetryHandle", data->telemetry_handle.Value());
  return exports;
}

NODE_API_MODULE(neoserve, Init)

}  // namespace neoserve::binding
