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

// One object's cleanup hook on its environment: `fn(arg)` runs on the JS thread
// when the environment is torn down (a worker_thread ends or is terminated, the
// process exits), unless removed first. Node runs cleanup hooks newest first, so
// a hook added after a thread-safe function runs before that function's own hook
// closes it: a native thread stopped there never calls a closed function.
//
// Teardown of an environment, in Node's order (Environment::RunCleanup):
//   1. handles close, and Node runs the loop until they have and async work in
//      flight is done: a load or dispose worker completes, queued thread-safe
//      calls may be dispatched, but JS can no longer run; their calls into JS
//      fail and node-addon-api drops the error instead of aborting
//      (NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS);
//   2. cleanup hooks, newest first: ours stop the handles' native threads, then
//      each thread-safe function's marks it closing;
//   3. the functions close (their finalizers run; queued items are dropped);
//   4. when the last function is gone (each holds the napi_env), the napi_env
//      is deleted: ObjectWrap finalizers (the handles' destructors) and the
//      instance data's (AddonData) run then.
class EnvCleanupHook {
 public:
  EnvCleanupHook() = default;
  EnvCleanupHook(const EnvCleanupHook&) = delete;
  EnvCleanupHook& operator=(const EnvCleanupHook&) = delete;
  ~EnvCleanupHook() { remove(); }

  void add(napi_env env, void (*fn)(void*), void* arg) {
    remove();
    if (napi_add_env_cleanup_hook(env, fn, arg) != napi_ok) throw Napi::Error::New(env, "cannot add an environment cleanup hook");
    env_ = env;
    fn_ = fn;
    arg_ = arg;
  }
  void remove() {
    if (env_) napi_remove_env_cleanup_hook(env_, fn_, arg_);
    env_ = nullptr;
  }
  void ran() { env_ = nullptr; }  // called first thing by the hook: Node has removed it

 private:
  napi_env env_ = nullptr;
  void (*fn_)(void*) = nullptr;
  void* arg_ = nullptr;
};

}  // namespace neoserve::binding
