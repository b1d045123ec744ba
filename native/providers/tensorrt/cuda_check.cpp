#include "cuda_check.h"

namespace neoserve::trt {

std::string cuda_error_text(cudaError_t e) {
  const char* text = cudaGetErrorString(e);
  const char* name = cudaGetErrorName(e);
  return std::string(text ? text : "unknown CUDA error") + " (" + (name ? name : "cudaError " + std::to_string(e)) + ")";
}

void cuda_fail(cudaError_t e, const char* what, ErrorCode code) {
  // Clears a non-sticky error so that it does not resurface in the next unrelated check.
  (void)cudaGetLastError();
  const std::string message = std::string(what) + ": " + cuda_error_text(e);
  if (code == ErrorCode::ProviderUnavailable) unavailable(message);
  throw Error(code, "tensorrt provider: " + message);
}

void unavailable(const std::string& why) { throw Error(ErrorCode::ProviderUnavailable, "provider unavailable: " + why); }

void out_of_memory(const std::string& what) { throw Error(ErrorCode::OutOfMemory, "out of memory: " + what); }

}  // namespace neoserve::trt
