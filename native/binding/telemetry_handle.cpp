#include "telemetry_handle.h"

#include "js_errors.h"

namespace neoserve::binding {

namespace {

template <typename T>
void set_optional(Napi::Object& o, const char* key, const std::optional<T>& v) {
  if (v) o.Set(key, static_cast<double>(*v));  // absent stays absent, never 0
}

Napi::Object absent_to_js(Napi::Env env, const telemetry::AbsentReasons& absent) {
  auto o = Napi::Object::New(env);
  for (const auto& [field, why] : absent) o.Set(field, why);
  return o;
}

Napi::Object mig_to_js(Napi::Env env, const telemetry::MigTelemetry& m) {
  auto o = Napi::Object::New(env);
  o.Set("index", m.index);
  o.Set("uuid", m.uuid);
  o.Set("name", m.name);
  o.Set("profile", m.profile);
  set_optional(o, "gpuInstanceId", m.gpu_instance_id);
  set_optional(o, "computeInstanceId", m.compute_instance_id);
  set_optional(o, "memoryTotalBytes", m.memory_total_bytes);
  set_optional(o, "memoryUsedBytes", m.memory_used_bytes);
  set_optional(o, "memoryFreeBytes", m.memory_free_bytes);
  set_optional(o, "utilizationGpuPct", m.utilization_gpu_pct);
  o.Set("absent", absent_to_js(env, m.absent));
  return o;
}

Napi::Object gpu_to_js(Napi::Env env, const telemetry::GpuTelemetry& g) {
  auto o = Napi::Object::New(env);
  o.Set("index", g.index);
  o.Set("name", g.name);
  o.Set("uuid", g.uuid);
  o.Set("pciBusId", g.pci_bus_id);
  set_optional(o, "memoryTotalBytes", g.memory_total_bytes);
  set_optional(o, "memoryUsedBytes", g.memory_used_bytes);
  set_optional(o, "memoryFreeBytes", g.memory_free_bytes);
  set_optional(o, "utilizationGpuPct", g.utilization_gpu_pct);
  set_optional(o, "utilizationMemoryPct", g.utilization_memory_pct);
  set_optional(o, "temperatureC", g.temperature_c);
  set_optional(o, "powerDrawW", g.power_draw_w);
  set_optional(o, "powerLimitW", g.power_limit_w);
  set_optional(o, "smClockMhz", g.sm_clock_mhz);
  set_optional(o, "memClockMhz", g.mem_clock_mhz);
  o.Set("migMode", g.mig_mode);
  auto mig = Napi::Array::New(env, g.mig.size());
  for (size_t i = 0; i < g.mig.size(); ++i) mig.Set(static_cast<uint32_t>(i), mig_to_js(env, g.mig[i]));
  o.Set("mig", mig);
  o.Set("absent", absent_to_js(env, g.absent));
  return o;
}

}  // namespace

Napi::Object snapshot_to_js(Napi::Env env, const telemetry::TelemetrySnapshot& s) {
  auto o = Napi::Object::New(env);
  o.Set("timestampMs", static_cast<double>(s.timestamp_ms));
  o.Set("available", s.available);
  o.Set("reason", s.reason);
  auto gpus = Napi::Array::New(env, s.gpus.size());
  for (size_t i = 0; i < s.gpus.size(); ++i) gpus.Set(static_cast<uint32_t>(i), gpu_to_js(env, s.gpus[i]));
  o.Set("gpus", gpus);
  auto p = Napi::Object::New(env);
  p.Set("cpuUserSeconds", s.process.cpu_user_s);
  p.Set("cpuSystemSeconds", s.process.cpu_system_s);
  p.Set("rssBytes", static_cast<double>(s.process.rss_bytes));
  p.Set("engineBytes", static_cast<double>(s.process.engine_bytes));
  o.Set("process", p);
  return o;
}

void call_js_with_sample(Napi::Env env, Napi::Function callback, TelemetryHandle*, telemetry::TelemetrySnapshot* sample) {
  std::unique_ptr<telemetry::TelemetrySnapshot> owned(sample);
  if (!env || !callback) return;
  callback.Call({snapshot_to_js(env, *owned)});
}

Napi::Function TelemetryHandle::Define(Napi::Env env) {
  return DefineClass(env, "TelemetryHandle",
                     {InstanceMethod("snapshot", &TelemetryHandle::Snapshot),
                      InstanceMethod("startSampler", &TelemetryHandle::StartSampler),
                      InstanceMethod("close", &TelemetryHandle::Close)});
}

TelemetryHandle::TelemetryHandle(const Napi::CallbackInfo& info) : Napi::ObjectWrap<TelemetryHandle>(info) {
  const std::string path = info.Length() > 0 && info[0].IsString() ? info[0].As<Napi::String>().Utf8Value() : "";
  nvml_ = std::make_unique<telemetry::NvmlLibrary>(path);  // never throws: unavailable carries its reason
}

TelemetryHandle::~TelemetryHandle() { stop_sampler(); }

void TelemetryHandle::stop_sampler() {
  teardown_.remove();
  if (sampler_) sampler_->stop();  // joins: no sample is delivered after this
  sampler_.reset();
  if (samples_) {
    samples_.Release();
    samples_ = SamplesFn();
  }
}

// snapshot(engineBytes?): the engine's own memory comes from the caller, which knows its models.
Napi::Value TelemetryHandle::Snapshot(const Napi::CallbackInfo& info) {
  const double engine = info.Length() > 0 && info[0].IsNumber() ? info[0].As<Napi::Number>().DoubleValue() : 0;
  return snapshot_to_js(info.Env(), telemetry::read_snapshot(nvml_.get(), engine > 0 ? static_cast<uint64_t>(engine) : 0));
}

Napi::Value TelemetryHandle::StartSampler(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsNumber() || !info[1].IsFunction())
    throw to_js_error(env, Error(ErrorCode::InvalidRequest, "startSampler(periodMs, onSample)"));
  const double period = info[0].As<Napi::Number>().DoubleValue();
  if (!(period >= 1 && period <= 3'600'000)) throw to_js_error(env, Error(ErrorCode::InvalidRequest, "periodMs must be in [1, 3600000]"));
  stop_sampler();
  // While sampling, the function holds the event loop (a `for await` over
  // samples keeps the process alive); close() lets it go.
  samples_ = SamplesFn::New(env, info[1].As<Napi::Function>(), "neoserve-telemetry", 0, 1, this);
  telemetry::SamplerOptions opts;
  opts.period_ms = static_cast<uint32_t>(period);
  opts.on_sample = [fn = samples_](const telemetry::TelemetrySnapshot& s) mutable {
    auto* copy = new telemetry::TelemetrySnapshot(s);
    if (fn.NonBlockingCall(copy) != napi_ok) delete copy;
  };
  sampler_ = std::make_unique<telemetry::TelemetrySampler>(nvml_.get(), std::move(opts));
  teardown_.add(env, &TelemetryHandle::on_env_teardown, this);  // after the function: runs before its hook
  return env.Undefined();
}

void TelemetryHandle::on_env_teardown(void* arg) {
  auto* self = static_cast<TelemetryHandle*>(arg);
  self->teardown_.ran();
  self->stop_sampler();  // the function is still open here; its own hook runs next
}

Napi::Value TelemetryHandle::Close(const Napi::CallbackInfo& info) {
  stop_sampler();
  return info.Env().Undefined();
}

}  // namespace neoserve::binding
