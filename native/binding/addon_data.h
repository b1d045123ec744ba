// What the binding keeps per Node environment (the main thread and each
// worker_thread load the addon into an environment of their own). Init makes
// one AddonData and hands it to the environment as its instance data; Node
// deletes it when that environment is torn down. Nothing that refers to JS is
// kept process-wide: a JS value or reference belongs to one environment's
// isolate, and using it from another aborts the process.
#pragma once
#include <napi.h>

namespace neoserve::binding {

struct AddonData {
  Napi::FunctionReference model_handle;      // the ModelHandle class (not exported: loadModel() makes them)
  Napi::FunctionReference telemetry_handle;  // the TelemetryHandle class

  static AddonData& of(Napi::Env env) { return *env.GetInstanceData<AddonData>(); }
};

}  // namespace neoserve::binding
