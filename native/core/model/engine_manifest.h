// neoserve.json: the manifest of a TensorRT engine directory. It names the
// engine file, its precision, the TensorRT version that built it, the model
// config (an HF config.json beside it) and the engine's I/O tensor names.
// Plain C++: parsed and checked on any machine, with or without TensorRT.
#pragma once
#include <string>

#include "llama_config.h"

namespace neoserve {

// I/O tensor names. Defaults: the contract Hugging Face Optimum uses for
// text-generation-with-past exports. "{i}" stands for the layer index.
struct EngineIoNames {
  std::string input_ids = "input_ids";            // [batch, tokens] int64 or int32
  std::string attention_mask = "attention_mask";  // [batch, past + tokens]
  std::string position_ids = "position_ids";      // [batch, tokens]
  std::string past_key = "past_key_values.{i}.key";    // [batch, kv_heads, past, head_dim]
  std::string past_value = "past_key_values.{i}.value";
  std::string logits = "logits";                  // [batch, tokens, vocab]
  std::string present_key = "present.{i}.key";    // [batch, kv_heads, past + tokens, head_dim]
  std::string present_value = "present.{i}.value";

  // A per-layer name with "{i}" replaced by `layer`.
  static std::string layer(const std::string& pattern, int32_t layer);
};

struct TensorRtVersion {
  int32_t major = 0, minor = 0, patch = 0;
  std::string text() const;
  // From getInferLibVersion(): major * 10000 + minor * 100 + patch (TensorRT 10).
  static TensorRtVersion from_lib(int32_t encoded);
};

struct EngineManifest {
  std::string dir;            // the engine directory
  std::string path;           // dir/neoserve.json (every error names it)
  std::string engine_file;    // dir/<engine>: a regular, non-empty file
  std::string precision;      // "fp16" or "int8"
  TensorRtVersion built_with;
  bool version_compatible = false;  // built with --versionCompatible: runs on later 10.x runtimes
  LlamaConfig config;
  EngineIoNames io;
};

// True when `path` is a directory holding a neoserve.json.
bool is_engine_dir(const std::string& path);

// Reads and checks dir/neoserve.json and the config it names. Throws
// Error(ModelLoadFailed, "<dir>/neoserve.json: <what>") for each problem.
EngineManifest load_engine_manifest(const std::string& dir);

// Throws ProviderUnavailable, naming both versions and the fix, when an engine
// built with `manifest.built_with` cannot be deserialized by `runtime`.
void check_runtime_version(const EngineManifest& manifest, const TensorRtVersion& runtime);

}  // namespace neoserve
