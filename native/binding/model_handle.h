// The JS face of one loaded model: submit / cancel / stats / dispose over a
// native Scheduler. Token events reach JS in batches through one
// thread-safe function per model.
#pragma once
#include <napi.h>

#include <memory>

#include "addon_data.h"
#include "core/model/model_weights.h"
#include "core/scheduler/scheduler.h"

namespace neoserve::binding {

struct LoadedModel {  // what the load worker builds off the JS thread
  std::shared_ptr<const ModelWeights> weights;
  std::shared_ptr<Provider> provider;
  std::string fallback_reason;
  SchedulerOptions scheduler;
};

class ModelHandle;
// Runs on the JS thread for each EventBatch the scheduler delivered.
void call_js_with_events(Napi::Env env, Napi::Function callback, ModelHandle* self, EventBatch* batch);

class ModelHandle : public Napi::ObjectWrap<ModelHandle>, public EventSink {
 public:
  static Napi::Function Define(Napi::Env env);
  // Wraps `loaded` in a new JS object that hands every iteration's events to `on_events`
  // (its arguments: RawEventsCallback in src/addon.ts).
  static Napi::Object Create(Napi::Env env, LoadedModel loaded, Napi::Function on_events);

  explicit ModelHandle(const Napi::CallbackInfo& info);
  ~ModelHandle() override;

  void deliver(EventBatch&& batch) override;  // scheduler thread

 private:
  friend void call_js_with_events(Napi::Env, Napi::Function, ModelHandle*, EventBatch*);
  using EventsFn = Napi::TypedThreadSafeFunction<ModelHandle, EventBatch, call_js_with_events>;

  Napi::Value Info(const Napi::CallbackInfo& info);
  Napi::Value Submit(const Napi::CallbackInfo& info);
  Napi::Value Cancel(const Napi::CallbackInfo& info);
  Napi::Value HoldStart(const Napi::CallbackInfo& info);
  Napi::Value ReleaseStart(const Napi::CallbackInfo& info);
  Napi::Value Stats(const Napi::CallbackInfo& info);
  Napi::Value Dispose(const Napi::CallbackInfo& info);

  void check_live(Napi::Env env) const;
  void release_native();  // stops the scheduler, then frees provider and weights
  // The environment is going away with the model not disposed: stops the
  // scheduler and frees the engine without JS (see EnvCleanupHook).
  static void on_env_teardown(void* self);

  LoadedModel loaded_;
  std::unique_ptr<Scheduler> scheduler_;
  EventsFn events_;
  Napi::ObjectReference pinned_;  // released by the events function's finalizer
  EnvCleanupHook teardown_;       // from load until dispose() begins
  int64_t in_flight_ = 0;  // JS thread only: keeps the event loop alive while requests run
  bool disposed_ = false;
};

}  // namespace neoserve::binding
