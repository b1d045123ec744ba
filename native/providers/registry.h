// Picks and builds the engine for a model path. The CPU engine is linked in;
// TensorRT is a shared library loaded at run time (tensorrt_library.h).
#pragma once
#include <memory>
#include <string>

#include "core/model/model_weights.h"
#include "core/options.h"
#include "core/provider.h"

namespace neoserve {

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
