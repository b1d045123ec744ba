// TensorRT engine directories without TensorRT: the neoserve.json manifest and
// each way it can be wrong, an engine's declared I/O against the manifest (an
// EngineDescription filled by hand, as the provider fills it from
// ICudaEngine), TensorRT version rules, and the run-time loading order with
// fake libnvinfer.so.10 / neoserve_tensorrt.so: missing library, wrong
// version, missing or mismatched provider, a provider that finds no GPU, and
// backend "auto" falling back to the CPU on the checkpoint beside the engine.
#include <cstdlib>
#include <functional>
#include <new>
#include <set>
#include <stdexcept>
#include <string>

#include "core/error.h"
#include "core/model/engine_io.h"
#include "core/model/engine_manifest.h"
#include "harness.h"
#include "model_files.h"
#include "providers/registry.h"

using namespace neoserve;
using namespace neoserve::test;

namespace {

const std::string kGoodManifest = R"({
  "format": "neoserve-tensorrt", "formatVersion": 1,
  "engine": "model-fp16.plan", "precision": "fp16",
  "tensorrtVersion": "10.8.0", "versionCompatible": false
})";

// An engine directory for the default TinyLlama; `checkpoint` adds model.safetensors beside it.
void write_engine_dir(const std::string& dir, const std::string& manifest = kGoodManifest, bool checkpoint = false) {
  TinyLlama m;
  if (checkpoint) write_hf_dir(dir, m, tiny_llama_tensors(m));
  else write_text(dir + "/config.json", tiny_llama_config(m));
  write_text(dir + "/model-fp16.plan", "not really an engine, but not empty");
  write_text(dir + "/neoserve.json", manifest);
}

// The good manifest with one member replaced (or added) — `member` is "\"key\": value".
std::string manifest_with(const std::string& key, const std::string& value) {
  std::string m = kGoodManifest;
  const std::string quoted = "\"" + key + "\"";
  const size_t at = m.find(quoted);
  if (at == std::string::npos) return m.substr(0, m.rfind('}')) + ", " + quoted + ": " + value + "}";
  const size_t colon = m.find(':', at), end = m.find_first_of(",}", colon);
  return m.substr(0, colon + 1) + " " + value + m.substr(end);
}

std::string manifest_without(const std::string& key) {
  std::string m = kGoodManifest;
  const size_t at = m.find("\"" + key + "\"");
  const size_t end = m.find(',', at);
  return m.substr(0, at) + m.substr(end + 1);
}

void expect_manifest_error(const std::string& manifest, const std::string& needle) {
  TempDir dir;
  write_engine_dir(dir.path(), manifest);
  CHECK_THROWS(load_engine_manifest(dir.path()), ErrorCode::ModelLoadFailed, needle);
}

// What a correct Optimum-contract engine for the default TinyLlama declares.
EngineDescription tiny_engine(int64_t max_batch = 8, int64_t max_tokens = 128, int64_t max_past = 896) {
  TinyLlama m;
  EngineDescription e;
  auto input = [&](std::string name, EngineDType t, std::vector<int64_t> shape, std::vector<int64_t> min,
                   std::vector<int64_t> max) {
    e.tensors.push_back({std::move(name), true, t, std::move(shape), min, min, std::move(max)});
  };
  auto output = [&](std::string name, EngineDType t, std::vector<int64_t> shape) {
    e.tensors.push_back({std::move(name), false, t, std::move(shape), {}, {}, {}});
  };
  input("input_ids", EngineDType::Int64, {-1, -1}, {1, 1}, {max_batch, max_tokens});
  input("attention_mask", EngineDType::Int64, {-1, -1}, {1, 1}, {max_batch, max_past + max_tokens});
  input("position_ids", EngineDType::Int64, {-1, -1}, {1, 1}, {max_batch, max_tokens});
  for (int l = 0; l < m.layers; ++l)
    for (const char* kv : {"key", "value"})
      input("past_key_values." + std::to_string(l) + "." + kv, EngineDType::Float16, {-1, m.kv_heads, -1, m.head_dim()},
            {1, m.kv_heads, 0, m.head_dim()}, {max_batch, m.kv_heads, max_past, m.head_dim()});
  output("logits", EngineDType::Float32, {-1, -1, m.vocab});
  for (int l = 0; l < m.layers; ++l)
    for (const char* kv : {"key", "value"})
      output("present." + std::to_string(l) + "." + kv, EngineDType::Float16, {-1, m.kv_heads, -1, m.head_dim()});
  return e;
}

EngineTensor& tensor(EngineDescription& e, const std::string& name) {
  for (EngineTensor& t : e.tensors)
    if (t.name == name) return t;
  throw std::runtime_error("no tensor " + name);
}

void expect_io_error(const std::function<void(EngineDescription&)>& break_it, const std::string& needle) {
  TempDir dir;
  write_engine_dir(dir.path());
  const EngineManifest m = load_engine_manifest(dir.path());
  EngineDescription e = tiny_engine();
  break_it(e);
  CHECK_THROWS(validate_engine_io(m, e), ErrorCode::ModelLoadFailed, needle);
}

// Environment for one test, restored after it.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const std::string& value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old, had_ = true;
    setenv(name, value.c_str(), 1);
  }
  ~ScopedEnv() {
    if (had_) setenv(name_, old_.c_str(), 1);
    else unsetenv(name_);
  }

 private:
  const char* name_;
  std::string old_;
  bool had_ = false;
};

ProviderOptions backend(const std::string& name) {
  ProviderOptions o;
  o.backend = name;
  o.threads = 1;
  return o;
}

}  // namespace

TEST("engine.manifest_reads_every_field_and_the_config_beside_it") {
  TempDir dir;
  write_engine_dir(dir.path(), manifest_with("io", R"({"logits": "lm_logits", "pastKey": "past.{i}.k"})"));
  CHECK(is_engine_dir(dir.path()));
  const EngineManifest m = load_engine_manifest(dir.path());
  CHECK_EQ(m.engine_file, dir.file("model-fp16.plan"));
  CHECK_EQ(m.precision, std::string("fp16"));
  CHECK_EQ(m.built_with.text(), std::string("10.8.0"));
  CHECK(!m.version_compatible);
  check_default_tiny_llama_config(m.config);
  CHECK_EQ(m.io.logits, std::string("lm_logits"));
  CHECK_EQ(EngineIoNames::layer(m.io.past_key, 7), std::string("past.7.k"));
  CHECK_EQ(EngineIoNames::layer(m.io.present_value, 1), std::string("present.1.value"));  // default kept
  CHECK_EQ(m.io.input_ids, std::string("input_ids"));
  TempDir plain;
  CHECK(!is_engine_dir(plain.path()));
  CHECK(!is_engine_dir(plain.file("missing")));
}

TEST("engine.manifest_rejects_each_malformed_field_naming_it") {
  expect_manifest_error("{\"format\": ", "neoserve.json: invalid JSON");
  expect_manifest_error("[1, 2]", "not a JSON object");
  expect_manifest_error(manifest_with("format", "\"onnx\""), "\"format\" must be \"neoserve-tensorrt\"");
  expect_manifest_error(manifest_with("formatVersion", "2"), "\"formatVersion\" must be 1");
  expect_manifest_error(manifest_without("engine"), "missing \"engine\"");
  expect_manifest_error(manifest_with("engine", "7"), "\"engine\" must be a string");
  expect_manifest_error(manifest_with("engine", "\"../outside.plan\""), "must not leave the directory");
  expect_manifest_error(manifest_with("engine", "\"/etc/passwd\""), "must be a file name inside the directory");
  expect_manifest_error(manifest_with("engine", "\"missing.plan\""), "does not exist");
  expect_manifest_error(manifest_with("precision", "\"fp8\""), "\"precision\" must be \"fp16\" or \"int8\"");
  expect_manifest_error(manifest_with("tensorrtVersion", "\"10.8\""), "must be major.minor.patch");
  expect_manifest_error(manifest_with("tensorrtVersion", "\"10.8.0-rc\""), "must be major.minor.patch");
  expect_manifest_error(manifest_with("tensorrtVersion", "\"8.6.1\""), "runs TensorRT 10 engines");
  expect_manifest_error(manifest_with("versionCompatible", "\"yes\""), "must be true or false");
  expect_manifest_error(manifest_with("io", "{\"inputs\": \"x\"}"), "unknown key \"inputs\"");
  expect_manifest_error(manifest_with("io", "{\"pastKey\": \"past_key\"}"), "io.pastKey must contain \"{i}\"");
  expect_manifest_error(manifest_with("io", "{\"logits\": \"logits.{i}\"}"), "io.logits is one tensor");
  expect_manifest_error(manifest_with("io", "{\"logits\": \"\"}"), "io.logits must be a non-empty string");
  expect_manifest_error(manifest_with("config", "\"other.json\""), "other.json: cannot open");
  {
    TempDir dir;
    write_engine_dir(dir.path());
    write_text(dir.file("model-fp16.plan"), "");
    CHECK_THROWS(load_engine_manifest(dir.path()), ErrorCode::ModelLoadFailed, "engine file is empty");
  }
  {
    TempDir dir;
    write_engine_dir(dir.path());
    std::string cfg = tiny_llama_config(TinyLlama{});
    const size_t at = cfg.find("\"vocab_size\"");
    cfg = cfg.substr(0, at) + cfg.substr(cfg.find(',', at) + 1);
    write_text(dir.file("config.json"), cfg);
    CHECK_THROWS(load_engine_manifest(dir.path()), ErrorCode::ModelLoadFailed, "vocab_size is required");
  }
}

TEST("engine.version_rules") {
  TempDir dir;
  write_engine_dir(dir.path());
  EngineManifest m = load_engine_manifest(dir.path());
  check_runtime_version(m, {10, 8, 0});
  CHECK_THROWS(check_runtime_version(m, {10, 9, 0}), ErrorCode::ProviderUnavailable,
               "built with TensorRT 10.8.0 but libnvinfer.so.10 is 10.9.0: rebuild the engine");
  CHECK_THROWS(check_runtime_version(m, {10, 8, 1}), ErrorCode::ProviderUnavailable, "--versionCompatible");
  m.version_compatible = true;
  check_runtime_version(m, {10, 8, 1});
  check_runtime_version(m, {10, 12, 0});
  CHECK_THROWS(check_runtime_version(m, {10, 7, 0}), ErrorCode::ProviderUnavailable, "10.8.0 or later 10.x");
  const TensorRtVersion v = TensorRtVersion::from_lib(101603);
  CHECK_EQ(v.text(), std::string("10.16.3"));
}

TEST("engine.io_contract_accepts_a_matching_engine_and_reads_its_limits") {
  TempDir dir;
  write_engine_dir(dir.path());
  const EngineManifest m = load_engine_manifest(dir.path());
  const EngineLimits limits = validate_engine_io(m, tiny_engine(8, 128, 896));
  CHECK_EQ(limits.max_batch, 8);
  CHECK_EQ(limits.max_tokens, 128);
  CHECK_EQ(limits.max_past, 896);
  CHECK_EQ(limits.min_past, 0);
  CHECK(limits.kv_dtype == EngineDType::Float16);
  CHECK(limits.logits_dtype == EngineDType::Float32);
  CHECK(limits.ids_dtype == EngineDType::Int64);
  // int32 ids and an fp32 KV cache are as good.
  EngineDescription e = tiny_engine();
  for (EngineTensor& t : e.tensors) {
    if (t.dtype == EngineDType::Int64) t.dtype = EngineDType::Int32;
    if (t.dtype == EngineDType::Float16) t.dtype = EngineDType::Float32;
  }
  const EngineLimits l32 = validate_engine_io(m, e);
  CHECK(l32.kv_dtype == EngineDType::Float32);
  CHECK(l32.ids_dtype == EngineDType::Int32);
}

TEST("engine.io_contract_names_each_mismatch") {
  expect_io_error([](EngineDescription& e) { e.tensors.erase(e.tensors.begin() + 3); },
                  "no input tensor \"past_key_values.0.key\"");
  expect_io_error([](EngineDescription& e) { tensor(e, "logits").name = "output"; }, "no output tensor \"logits\"");
  expect_io_error([](EngineDescription& e) { tensor(e, "position_ids").is_input = false; }, "position_ids: expected an input");
  expect_io_error([](EngineDescription& e) { tensor(e, "input_ids").dtype = EngineDType::Float32; },
                  "input_ids: dtype float32, expected int64 or int32");
  expect_io_error([](EngineDescription& e) { tensor(e, "position_ids").dtype = EngineDType::Int32; },
                  "position_ids: dtype int32, expected int64");
  expect_io_error([](EngineDescription& e) { tensor(e, "logits").shape = {-1, -1, 50257}; },
                  "logits: shape [-1, -1, 50257], expected [batch, tokens, vocab] with dimension 2 = 128");
  expect_io_error([](EngineDescription& e) { tensor(e, "past_key_values.1.value").shape[1] = 4; },
                  "past_key_values.1.value: shape [-1, 4, -1, 16]");
  expect_io_error([](EngineDescription& e) { tensor(e, "present.0.key").shape = {-1, 2, 16}; }, "has rank 3");
  expect_io_error([](EngineDescription& e) { tensor(e, "present.1.key").dtype = EngineDType::Float32; },
                  "present.1.key: dtype float32, expected float16");
  expect_io_error([](EngineDescription& e) { tensor(e, "past_key_values.0.value").dtype = EngineDType::Float32; },
                  "dtype differs from layer 0's past key");
  expect_io_error([](EngineDescription& e) { tensor(e, "input_ids").min = {1, 4}; },
                  "profile needs at least 4 tokens per call");
  expect_io_error([](EngineDescription& e) { tensor(e, "input_ids").min = {2, 1}; }, "profile needs a batch of at least 2");
  expect_io_error([](EngineDescription& e) { tensor(e, "attention_mask").max = {8, 512}; },
                  "attention_mask: profile allows at most 512 positions, but past (896) + tokens (128) can reach 1024");
  expect_io_error([](EngineDescription& e) { tensor(e, "past_key_values.0.key").max[0] = 4; },
                  "profile's batch range differs");
  expect_io_error([](EngineDescription& e) { tensor(e, "past_key_values.0.key").min[1] = 1; },
                  "profile allows dimension 1 in [1, 2], the model needs exactly 2");
  expect_io_error([](EngineDescription& e) { tensor(e, "input_ids").min.clear(); }, "no optimization profile range");
  expect_io_error([](EngineDescription& e) { e.tensors.push_back({"use_cache_branch", true, EngineDType::Bool, {1}, {1}, {1}, {1}}); },
                  "tensors the I/O contract does not feed: use_cache_branch");
  expect_io_error([](EngineDescription& e) { e.num_profiles = 0; }, "no optimization profile");
  // A profile whose past never reaches 0 is allowed: the provider pads with masked slots.
  TempDir dir;
  write_engine_dir(dir.path());
  EngineDescription e = tiny_engine();
  for (EngineTensor& t : e.tensors)
    if (t.name.rfind("past_key_values.", 0) == 0) t.min[2] = 1;
  CHECK_EQ(validate_engine_io(load_engine_manifest(dir.path()), e).min_past, 1);
}

TEST("engine.loading_reports_what_is_missing_in_order") {
  TempDir dir;
  write_engine_dir(dir.path());
  {
    ScopedEnv lib("NEOSERVE_NVINFER_LIBRARY", dir.file("no/libnvinfer.so.10"));
    CHECK_THROWS(load_engine(dir.path(), backend("tensorrt")), ErrorCode::ProviderUnavailable,
                 "TensorRT 10 is not installed or not on the library path: cannot load");
  }
  ScopedEnv lib("NEOSERVE_NVINFER_LIBRARY", NEOSERVE_FAKE_NVINFER_PATH);
  {
    ScopedEnv version("FAKE_NVINFER_VERSION", "100900");
    CHECK_THROWS(load_engine(dir.path(), backend("tensorrt")), ErrorCode::ProviderUnavailable,
                 "was built with TensorRT 10.8.0 but libnvinfer.so.10 is 10.9.0");
  }
  {
    ScopedEnv version("FAKE_NVINFER_VERSION", "80601");
    CHECK_THROWS(load_engine(dir.path(), backend("tensorrt")), ErrorCode::ProviderUnavailable, "is TensorRT 8.6.1");
  }
  {
    ScopedEnv provider("NEOSERVE_TENSORRT_PROVIDER", dir.file("no/neoserve_tensorrt.so"));
    CHECK_THROWS(load_engine(dir.path(), backend("tensorrt")), ErrorCode::ProviderUnavailable,
                 "this build has no TensorRT provider");
  }
  ScopedEnv provider("NEOSERVE_TENSORRT_PROVIDER", NEOSERVE_FAKE_TENSORRT_PROVIDER_PATH);
  {
    ScopedEnv abi("FAKE_PROVIDER_ABI", "99");
    CHECK_THROWS(load_engine(dir.path(), backend("tensorrt")), ErrorCode::ProviderUnavailable, "(ABI 99, expected 1)");
  }
  CHECK_THROWS(load_engine(dir.path(), backend("tensorrt")), ErrorCode::ProviderUnavailable, "no CUDA device");
  // "auto" has no checkpoint to fall back on here; "cpu" has nothing to run.
  CHECK_THROWS(load_engine(dir.path(), backend("auto")), ErrorCode::ProviderUnavailable, "found no checkpoint beside the engine");
  CHECK_THROWS(load_engine(dir.path(), backend("cpu")), ErrorCode::ModelLoadFailed, "the cpu backend has nothing to run");
  // A broken manifest is an error under "auto" too, never a silent fallback.
  write_text(dir.file("neoserve.json"), manifest_with("precision", "\"fp4\""));
  CHECK_THROWS(load_engine(dir.path(), backend("auto")), ErrorCode::ModelLoadFailed, "\"precision\" must be");
}

TEST("engine.auto_falls_back_to_the_checkpoint_beside_the_engine") {
  TempDir dir;
  write_engine_dir(dir.path(), kGoodManifest, /*checkpoint=*/true);
  ScopedEnv lib("NEOSERVE_NVINFER_LIBRARY", NEOSERVE_FAKE_NVINFER_PATH);
  ScopedEnv provider("NEOSERVE_TENSORRT_PROVIDER", NEOSERVE_FAKE_TENSORRT_PROVIDER_PATH);
  const LoadedEngine loaded = load_engine(dir.path(), backend("auto"));
  CHECK_EQ(loaded.provider->info().name, std::string("cpu"));
  CHECK(loaded.fallback_reason.find("no CUDA device") != std::string::npos);
  CHECK(loaded.weights->format == ModelFormat::HuggingFace);
  const LoadedEngine cpu = load_engine(dir.path(), backend("cpu"));
  CHECK_EQ(cpu.provider->info().name, std::string("cpu"));
  CHECK(cpu.fallback_reason.empty());
  CHECK_THROWS(load_engine(dir.path(), backend("tensorrt")), ErrorCode::ProviderUnavailable, "no CUDA device");
}

TEST("engine.checkpoints_and_options") {
  TempDir dir;
  TinyLlama m;
  write_hf_dir(dir.path(), m, tiny_llama_tensors(m));
  CHECK_THROWS(load_engine(dir.path(), backend("tensorrt")), ErrorCode::ProviderUnavailable,
               "the tensorrt backend runs engine directories");
  const LoadedEngine loaded = load_engine(dir.path(), backend("auto"));
  CHECK_EQ(loaded.provider->info().name, std::string("cpu"));
  CHECK(loaded.fallback_reason.empty());
  ProviderOptions gpu = backend("auto");
  gpu.device = "GPU-0000";
  CHECK_THROWS(load_engine(dir.path(), gpu), ErrorCode::InvalidRequest, "is for accelerators");
  CHECK_THROWS(load_engine(dir.path(), backend("cuda")), ErrorCode::InvalidRequest, "backend must be");
}

// Codes cross the TensorRT C entry as 1 + their value and reach JS by name:
// every value maps back to itself, every name is distinct, and nothing else
// passes for a code.
TEST("engine.error_codes_cross_boundaries_by_value_and_name") {
  std::set<std::string> names;
  for (int32_t i = 0; i < kErrorCodeCount; ++i) {
    const ErrorCode code = error_code_from_int(i);
    CHECK_EQ(static_cast<int32_t>(code), i);
    names.insert(error_code_name(code));
  }
  CHECK_EQ(names.size(), static_cast<size_t>(kErrorCodeCount));
  CHECK(error_code_from_int(-1) == ErrorCode::Internal);
  CHECK(error_code_from_int(kErrorCodeCount) == ErrorCode::Internal);
  CHECK(error_code_of(Error(ErrorCode::Disposed, "x")) == ErrorCode::Disposed);
  CHECK(error_code_of(std::bad_alloc()) == ErrorCode::OutOfMemory);
  CHECK(error_code_of(std::runtime_error("x")) == ErrorCode::Internal);
}
