#include "registry.h"

#include <filesystem>

#include "core/error.h"
#include "core/model/engine_manifest.h"
#include "cpu/cpu_provider.h"
#include "synthetic_provider.h"
#include "tensorrt_library.h"

namespace neoserve {

namespace {

LoadedEngine on_cpu(const std::string& path, const ProviderOptions& options) {
  LoadedEngine loaded;
  loaded.weights = load_model(path, LoadDepth::FileOrder);  // the CPU engine un-permutes what it converts (or maps its cache)
  loaded.provider = std::make_shared<cpu::CpuProvider>(loaded.weights, options);
  return loaded;
}

// An engine directory that is also a Hugging Face checkpoint can run on the CPU.
bool has_checkpoint(const std::string& dir) {
  std::error_code ec;
  const std::filesystem::path root(dir);
  return std::filesystem::exists(root / "model.safetensors", ec) ||
         std::filesystem::exists(root / "model.safetensors.index.json", ec);
}

LoadedEngine engine_directory(const std::string& dir, const ProviderOptions& options) {
  if (options.backend == "cpu") {
    if (!has_checkpoint(dir))
      throw_load_error(dir, "a TensorRT engine directory with no checkpoint (model.safetensors) beside neoserve.json: "
                            "the cpu backend has nothing to run; use backend \"tensorrt\"");
    return on_cpu(dir, options);
  }
  const EngineManifest manifest = load_engine_manifest(dir);  // a broken manifest is an error, never a fallback
  try {
    auto weights = std::make_shared<ModelWeights>();
    weights->source = dir;
    weights->format = ModelFormat::TensorRtEngine;
    weights->config = manifest.config;
    LoadedEngine loaded;
    loaded.provider = create_tensorrt_provider(manifest, options);
    loaded.weights = std::move(weights);
    return loaded;
  } catch (const Error& e) {
    // An engine that cannot run here, or does not fit this device, still runs on the CPU.
    const bool cannot_run_here = e.code() == ErrorCode::ProviderUnavailable || e.code() == ErrorCode::OutOfMemory;
    if (options.backend != "auto" || !cannot_run_here) throw;
    if (!has_checkpoint(dir))
      throw Error(e.code(), std::string(e.what()) + " (backend \"auto\" found no checkpoint beside the engine to run on the cpu)");
    LoadedEngine loaded = on_cpu(dir, options);
    loaded.fallback_reason = e.what();
    return loaded;
  }
}

}  // namespace

LoadedEngine load_engine(const std::string& path, const ProviderOptions& options) {
  validate(LoadOptions{options, {}});
  if (options.backend == "synthetic") {
    LoadedEngine loaded;
    loaded.weights = synthetic_model_weights();
    loaded.provider = std::make_shared<SyntheticProvider>(options.kv_block_size);
    return loaded;
  }
  if (is_engine_dir(path)) return engine_directory(path, options);
  if (options.backend == "tensorrt")
    throw Error(ErrorCode::ProviderUnavailable,
                "provider unavailable: the tensorrt backend runs engine directories (a neoserve.json beside a TensorRT "
                "engine; see models/tensorrt/README.md), and " + path + " is a checkpoint for the cpu backend");
  if (!options.device.empty() && options.device != "cpu")
    throw_invalid("device \"" + options.device + "\" is for accelerators; " + path + " runs on the cpu");
  return on_cpu(path, options);
}

}  // namespace neoserve
