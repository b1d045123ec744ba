// The JS face of telemetry: snapshot() reads NVML and the process now; a
// sampler thread, when started, hands each sample to JS through one
// thread-safe function.
#pragma once
#include <napi.h>

#include <memory>

#include "addon_data.h"
#include "core/telemetry/nvml_library.h"
#include "core/telemetry/sampler.h"

namespace neoserve::binding {

class TelemetryHandle;
void call_js_with_sample(Napi::Env env, Napi::Function callback, TelemetryHandle* self, telemetry::TelemetrySnapshot* sample);

class TelemetryHandle : public Napi::ObjectWrap<TelemetryHandle> {
 public:
  static Napi::Function Define(Napi::Env env);
  explicit TelemetryHandle(const Napi::CallbackInfo& info);  // new TelemetryHandle(nvmlLibraryPath?)
  ~TelemetryHandle() override;

 private:
  friend void call_js_with_sample(Napi::Env, Napi::Function, TelemetryHandle*, telemetry::TelemetrySnapshot*);
  using SamplesFn = Napi::TypedThreadSafeFunction<TelemetryHandle, telemetry::TelemetrySnapshot, call_js_with_sample>;

  Napi::Value Snapshot(const Napi::CallbackInfo& info);
  Napi::Value StartSampler(const Napi::CallbackInfo& info);  // (periodMs, onSample)
  Napi::Value Close(const Napi::CallbackInfo& info);
  void stop_sampler();
  static void on_env_teardown(void* self);  // stops the sampler when the environment goes away

  std::unique_ptr<telemetry::NvmlLibrary> nvml_;
  std::unique_ptr<telemetry::TelemetrySampler> sampler_;
  SamplesFn samples_;
  EnvCleanupHook teardown_;  // while the sampler runs
};

Napi::Object snapshot_to_js(Napi::Env env, const telemetry::TelemetrySnapshot& s);

}  // namespace neoserve::binding
