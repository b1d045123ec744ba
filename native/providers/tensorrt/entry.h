// The C entry point of neoserve_tensorrt.so, the TensorRT provider library:
// the core addon dlopens it only when a TensorRT engine is loaded, so the
// addon itself never needs CUDA or TensorRT. Errors cross as a code and a
// message, never as exceptions.
#pragma once
#include <cstddef>
#include <cstdint>

#include "core/model/engine_manifest.h"
#include "core/provider.h"

namespace neoserve {

struct TensorRtLoadRequest {
  const EngineManifest* manifest = nullptr;
  void* nvinfer = nullptr;         // dlopen handle of libnvinfer.so.10, already version-checked
  const char* device = "";         // "" / "0" (an index), "GPU-<uuid>", "MIG-<uuid>"
  int32_t kv_block_size = 16;
  size_t kv_memory_bytes = 0;      // 0: the provider's default share of free device memory
};

}  // namespace neoserve

extern "C" {
// Version of this entry's structs: the loader refuses a library with another.
#define NEOSERVE_TENSORRT_ABI 1
typedef int (*neoserve_tensorrt_abi_fn)();
// Returns 0 and sets *out on success; otherwise 1 + the neoserve::ErrorCode
// value (ProviderUnavailable for a missing GPU, ModelLoadFailed for an engine
// that does not match its manifest) and a message in error[0, error_size).
typedef int (*neoserve_tensorrt_create_fn)(const neoserve::TensorRtLoadRequest* request, neoserve::Provider** out,
                                           char* error, size_t error_size);
}
