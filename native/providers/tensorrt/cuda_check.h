// CUDA runtime errors as neoserve::Error, with cudaGetErrorString's text.
#pragma once
#include <cuda_runtime_api.h>

#include <string>

#include "core/error.h"

namespace neoserve::trt {

// "out of memory (cudaErrorMemoryAllocation)".
std::string cuda_error_text(cudaError_t e);

// Throws Error(code, "<what>: <CUDA error>"); ProviderUnavailable messages
// start with "provider unavailable: " as the core's do.
[[noreturn]] void cuda_fail(cudaError_t e, const char* what, ErrorCode code);

inline void cuda_check(cudaError_t e, const char* what, ErrorCode code = ErrorCode::Internal) {
  if (e != cudaSuccess) cuda_fail(e, what, code);
}

// Throws Error(ProviderUnavailable, "provider unavailable: <why>").
[[noreturn]] void unavailable(const std::string& why);
// Throws Error(OutOfMemory, "out of memory: <what>"): the code every backend
// uses for weights, KV cache or buffers that do not fit.
[[noreturn]] void out_of_memory(const std::string& what);

}  // namespace neoserve::trt
