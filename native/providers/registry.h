// Picks and builds the engine for a model path. The CPU engine is linked in;
// TensorRT is a shared library loaded at run time (tensorrt_library.h).
#pragma once
#include <memory>
#include <string>

#include "core/model/model_weights.h"
#include "core/provider.h"

namespace neoserve {

struct ProviderOptions {
  std::string backend = "auto";      // "auto", "cpu", "tensorrt", "synthetic" (no model work; benchmarks)
  std::string precision = "auto";    // "auto" (the weights' own), "f32", "int8"
  int32_t threads = 0;               // 0 = the machine's cores
  int32_t kv_block_size = 16;
  size_t kv_memory_bytes = 0;        // 0 = the provider's default
  std::string device;                // accelerators: "" (the first), an index, "GPU-<uuid>", "MIG-<uuid>"
};

struct LoadedEngine {
  std::shared_ptr<const ModelWeights> weights;  // what the provider runs (config only for an engine)
  std::shared_ptr<Provider> provider;
  std::string fallback_reason;  // set when "auto" could not use the accelerator it was given
};

// `path`: a checkpoint (HF directory or .gguf), a TensorRT engine directory
// (neoserve.json), or anything for "synthetic". With "auto", an engine
// directory whose engine cannot run here falls back to the CPU on the
// checkpoint beside it (model.safetensors), when there is one.
// Throws ModelLoadFailed, ProviderUnavailable naming what is missing, or
// InvalidRequest for a bad option.
LoadedEngine load_engine(const std::string& path, const ProviderOptions& options);

}  // namespace neoserve
