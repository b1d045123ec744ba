// What a deserialized engine declares about its I/O tensors, and the check of
// that declaration against the manifest and the model config. The TensorRT
// provider fills an EngineDescription from ICudaEngine; tests fill one by
// hand, so every mismatch is exercised without TensorRT.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "engine_manifest.h"

namespace neoserve {

enum class EngineDType { Float32, Float16, BFloat16, Int8, Int32, Int64, Bool, Other };
const char* engine_dtype_name(EngineDType t);

struct EngineTensor {
  std::string name;
  bool is_input = false;
  EngineDType dtype = EngineDType::Other;
  std::vector<int64_t> shape;  // -1 for a dynamic dimension
  // Inputs: the optimization profile's range of each dimension.
  std::vector<int64_t> min, opt, max;
};

struct EngineDescription {
  std::vector<EngineTensor> tensors;
  int32_t num_profiles = 1;  // ranges above are profile 0's
};

// The batch limits an engine allows, read from its profile ranges.
struct EngineLimits {
  int64_t max_batch = 0;    // input_ids dim 0
  int64_t max_tokens = 0;   // input_ids dim 1: tokens per sequence per call
  int64_t max_past = 0;     // past_key_values dim 2
  int64_t min_past = 0;     // an engine whose profile has no empty past gets masked padding slots
  EngineDType kv_dtype = EngineDType::Float16;
  EngineDType logits_dtype = EngineDType::Float32;
  EngineDType ids_dtype = EngineDType::Int64;   // input_ids, position_ids
  EngineDType mask_dtype = EngineDType::Int64;  // attention_mask
};

// Checks names, count, dtypes, ranks, fixed dimensions (kv heads, head dim,
// vocab) and profile ranges; throws Error(ModelLoadFailed, "<engine file>:
// <tensor>: <what>") for the first mismatch. Returns the limits for batching.
EngineLimits validate_engine_io(const EngineManifest& manifest, const EngineDescription& engine);

}  // namespace neoserve
