// Module entry: loadModel() builds the engine off the JS thread and resolves to a ModelHandle.
#include <napi.h>

#include "addon_data.h"
#include "js_errors.h"
#include "js_options.h"
#include "js_request.h"
#include "js_values.h"
#include "model_handle.h"
#include "telemetry_handle.h"
#include "core/model/model_weights.h"
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
    } catch (const std::exception& e) {
      code_ = error_code_of(e);
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
  LoadOptions options;
  guarded(env, [&] {
    visit_load_options(options, JsOptionReader{info[1].As<Napi::Object>()});
    validate(options);
    return 0;
  });
  auto* worker = new LoadWorker(env, info[0].As<Napi::String>().Utf8Value(), options.provider, options.scheduler,
                                info[2].As<Napi::Function>());
  worker->Queue();
  return worker->promise();
}

// checkRequest(request, limits) throws what Scheduler::submit would for this
// request on a model with these limits: a pool checks requests before it sends them.
Napi::Value CheckRequest(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsObject() || !info[1].IsObject())
    throw to_js_error(env, Error(ErrorCode::InvalidRequest, "checkRequest(request, limits)"));
  guarded(env, [&] {
    const Napi::Object l = info[1].As<Napi::Object>();
    const RequestLimits limits{int_or(l, "vocabSize", 0), int_or(l, "maxContext", 0), int_or(l, "kvBlockSize", 0),
                               int_or(l, "kvBlocks", 0)};
    validate_request(read_request(info[0].As<Napi::Object>()), limits);
    return 0;
  });
  return env.Undefined();
}

// readGgufTokenizer(path) → a GGUF file's tokenizer.ggml.* metadata (null when it
// has none). Synchronous: the text workers that build tokenizers call it off the main thread.
Napi::Value ReadGgufTokenizer(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString())
    throw to_js_error(env, Error(ErrorCode::InvalidRequest, "readGgufTokenizer(path) needs a path"));
  const GgufTokenizer t = guarded(env, [&] { return read_gguf_tokenizer(info[0].As<Napi::String>().Utf8Value()); });
  if (t.tokens.empty()) return env.Null();
  auto types = Napi::Int32Array::New(env, t.token_types.size());
  std::copy(t.token_types.begin(), t.token_types.end(), types.Data());
  auto out = Napi::Object::New(env);
  out.Set("model", t.model);
  out.Set("pre", t.pre);
  out.Set("tokens", js_array(env, t.tokens));
  out.Set("merges", js_array(env, t.merges));
  out.Set("tokenTypes", types);
  if (t.bos_id >= 0) out.Set("bosId", t.bos_id);
  if (t.eos_id >= 0) out.Set("eosId", t.eos_id);
  if (t.eot_id >= 0) out.Set("eotId", t.eot_id);
  if (t.add_bos >= 0) out.Set("addBos", t.add_bos == 1);
  if (!t.chat_template.empty()) out.Set("chatTemplate", t.chat_template);
  return out;
}

// describeModel(path) → { format, vocabSize }: what loadModel will find, from
// the files' headers alone (mapped, not read), so the tokenizer can be built
// beside the engine's load. Throws what loadModel would for a malformed model.
Napi::Value DescribeModel(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString())
    throw to_js_error(env, Error(ErrorCode::InvalidRequest, "describeModel(path) needs a path"));
  const auto [format, vocab] = guarded(env, [&] {
    const auto w = load_model(info[0].As<Napi::String>().Utf8Value(), LoadDepth::FileOrder);
    return std::pair{w->format, w->config.vocab_size};
  });
  auto out = Napi::Object::New(env);
  out.Set("format", model_format_name(format));
  out.Set("vocabSize", vocab);
  return out;
}

// readGgufTensor(path, name) → { type, shape, values: Float32Array }: one GGUF
// tensor dequantized to fp32 in the file's row order. Synchronous (a tool's read).
Napi::Value ReadGgufTensor(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsString() || !info[1].IsString())
    throw to_js_error(env, Error(ErrorCode::InvalidRequest, "readGgufTensor(path, name) needs a path and a tensor name"));
  GgufTensorValues t = guarded(env, [&] {
    return read_gguf_tensor(info[0].As<Napi::String>().Utf8Value(), info[1].As<Napi::String>().Utf8Value());
  });
  auto values = Napi::Float32Array::New(env, t.values.size());
  std::copy(t.values.begin(), t.values.end(), values.Data());
  auto shape = Napi::Array::New(env, t.shape.size());
  for (size_t i = 0; i < t.shape.size(); ++i) shape.Set(i, Napi::Number::New(env, static_cast<double>(t.shape[i])));
  auto out = Napi::Object::New(env);
  out.Set("type", dtype_name(t.dtype));
  out.Set("shape", shape);
  out.Set("values", values);
  return out;
}

// optionTable() → every load option: name, kind, default, range, choices, meaning (core/options.h).
Napi::Value OptionTable(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const std::vector<OptionDescription> table = describe_load_options();
  auto out = Napi::Array::New(env, table.size());
  for (size_t i = 0; i < table.size(); ++i) {
    const OptionDescription& d = table[i];
    auto entry = Napi::Object::New(env);
    entry.Set("name", d.name);
    entry.Set("kind", d.kind);
    entry.Set("meaning", d.meaning);
    if (d.kind == "text" || d.kind == "choice") {
      entry.Set("default", d.default_text);
    } else {
      entry.Set("default", d.default_number);
      entry.Set("min", d.min);
      entry.Set("max", d.max);
    }
    entry.Set("choices", js_array(env, d.choices));
    out.Set(static_cast<uint32_t>(i), entry);
  }
  return out;
}

// Names indexed by the native enums' values: JS reads codes through these, never a copy of the numbering.
Napi::Array error_code_names(Napi::Env env) {
  auto names = Napi::Array::New(env, kErrorCodeCount);
  for (int32_t i = 0; i < kErrorCodeCount; ++i) names.Set(static_cast<uint32_t>(i), error_code_name(error_code_from_int(i)));
  return names;
}

Napi::Array finish_reason_names(Napi::Env env) {
  auto names = Napi::Array::New(env, kFinishReasonCount);
  for (int32_t i = 0; i < kFinishReasonCount; ++i)
    names.Set(static_cast<uint32_t>(i), finish_reason_name(static_cast<FinishReason>(i)));
  return names;
}

}  // namespace

// Runs once per environment that loads the addon (the main thread, each worker_thread).
Napi::Object Init(Napi::Env env, Napi::Object exports) {
  auto* data = new AddonData();
  env.SetInstanceData(data);  // deleted by Node with the environment
  data->model_handle = Napi::Persistent(ModelHandle::Define(env));
  data->telemetry_handle = Napi::Persistent(TelemetryHandle::Define(env));
  exports.Set("loadModel", Napi::Function::New(env, LoadModel, "loadModel"));
  exports.Set("checkRequest", Napi::Function::New(env, CheckRequest, "checkRequest"));
  exports.Set("readGgufTokenizer", Napi::Function::New(env, ReadGgufTokenizer, "readGgufTokenizer"));
  exports.Set("describeModel", Napi::Function::New(env, DescribeModel, "describeModel"));
  exports.Set("readGgufTensor", Napi::Function::New(env, ReadGgufTensor, "readGgufTensor"));
  exports.Set("optionTable", Napi::Function::New(env, OptionTable, "optionTable"));
  exports.Set("errorCodes", error_code_names(env));
  exports.Set("defaultMaxTokens", kDefaultMaxTokens);
  exports.Set("finishReasons", finish_reason_names(env));
  exports.Set("TelemetryHandle", data->telemetry_handle.Value());
  return exports;
}

NODE_API_MODULE(neoserve, Init)

}  // namespace neoserve::binding
