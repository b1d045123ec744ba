// Picks and builds the engine for a loaded model. The CPU engine is linked in;
// others (TensorRT) are shared libraries loaded at run time.
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
};

struct CreatedProvider {
  std::shared_ptr<Provider> provider;
  std::string fallback_reason;  // set when "auto" could not use an accelerator
};

// Throws ProviderUnavailable naming what is missing, InvalidRequest for a bad option.
CreatedProvider create_provider(std::shared_ptr<const ModelWeights> weights, const ProviderOptions& options);

// Loads what `options.backend` runs from `path`: a checkpoint, or nothing for "synthetic".
std::shared_ptr<const ModelWeights> load_weights_for(const std::string& path, const ProviderOptions& options);

}  // namespace neoserve
