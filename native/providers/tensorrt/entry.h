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
  int32_t kv_block_size = kDefaultKvBlockSize;
  size_t kv_memory_bytes = 0;      // 0: the provider's default share of free device memory
};

// The sizes of the C++ types that cross the library boundary, as each side
// compiled them: a library built from other headers is refused rather than
// reading memory laid out differently.
constexpr uint64_t tensorrt_layout_fingerprint() {
  uint64_t h = 1469598103934665603ull;  // FNV-1a over the sizes
  for (uint64_t size : {sizeof(TensorRtLoadRequest), sizeof(EngineManifest), sizeof(EngineIoNames), sizeof(LlamaConfig),
                        sizeof(RopeScaling), sizeof(TensorRtVersion), sizeof(SeqStep), sizeof(LogitsOut),
                        sizeof(ProviderInfo), sizeof(KvGeometry), sizeof(Provider)})
    h = (h ^ size) * 1099511628211ull;
  return h;
}

}  // namespace neoserve

extern "C" {
// Version of this entry's structs: the loader refuses a library with another.
#define NEOSERVE_TENSORRT_ABI 1
// Given the loader's tensorrt_layout_fingerprint(): the library's ABI version,
// or -1 when the library was compiled with other layouts.
typedef int (*neoserve_tensorrt_abi_fn)(uint64_t loader_layout);
// Returns 0 and sets *out on success; otherwise 1 + the neoserve::ErrorCode
// value (ProviderUnavailable for a missing GPU, ModelLoadFailed for an engine
// that does not match its manifest, OutOfMemory for buffers that do not fit)
// and a message in error[0, error_size).
typedef int (*neoserve_tensorrt_create_fn)(const neoserve::TensorRtLoadRequest* request, neoserve::Provider** out,
                                           char* error, size_t error_size);
}
