#include "registry.h"

#include "core/error.h"
#include "cpu/cpu_provider.h"
#include "synthetic_provider.h"

namespace neoserve {

CreatedProvider create_provider(std::shared_ptr<const ModelWeights> weights, const ProviderOptions& options) {
  const std::string& backend = options.backend;
  if (backend != "auto" && backend != "cpu" && backend != "tensorrt" && backend != "synthetic")
    throw_invalid("backend must be \"auto\", \"cpu\", \"tensorrt\" or \"synthetic\", got \"" + backend + "\"");
  if (options.precision != "auto" && options.precision != "f32" && options.precision != "int8")
    throw_invalid("precision must be \"auto\", \"f32\" or \"int8\" for a checkpoint, got \"" + options.precision + "\"");
  if (options.threads < 0) throw_invalid("threads must be 0 (all cores) or more");

  CreatedProvider created;
  if (backend == "synthetic") {
    created.provider = std::make_shared<SyntheticProvider>();
    return created;
  }
  if (backend == "tensorrt")
    throw Error(ErrorCode::ProviderUnavailable,
                "provider unavailable: tensorrt engines load from a neoserve.json engine directory, and this build "
                "has no TensorRT provider; " + weights->source + " is a checkpoint for the cpu backend");
  if (backend == "auto") created.fallback_reason = "checkpoints run on the cpu provider";

  cpu::CpuProviderOptions cpu;
  cpu.threads = options.threads;
  cpu.precision = options.precision;
  cpu.kv_block_size = options.kv_block_size;
  cpu.kv_memory_bytes = options.kv_memory_bytes;
  created.provider = std::make_shared<cpu::CpuProvider>(std::move(weights), cpu);
  return created;
}

}  // namespace neoserve

namespace neoserve {

std::shared_ptr<const ModelWeights> load_weights_for(const std::string& path, const ProviderOptions& options) {
  if (options.backend == "synthetic") return synthetic_model_weights();
  return load_model(path);
}

}  // namespace neoserve
