// The two C entry points of neoserve_tensorrt.so (see entry.h); the only
// symbols the library exports. No exception crosses them: errors become
// 1 + ErrorCode and a message.
#include "entry.h"

#include <cstdio>
#include <exception>
#include <memory>
#include <new>
#include <type_traits>

#include "core/error.h"
#include "tensorrt_provider.h"

#define NEOSERVE_TENSORRT_EXPORT __attribute__((visibility("default")))

namespace {

// Never allocates, so that it cannot throw while reporting an exception.
int report(neoserve::ErrorCode code, const char* message, char* error, size_t error_size, const char* prefix = "") {
  if (error && error_size > 0) std::snprintf(error, error_size, "%s%s", prefix, message ? message : "");
  return 1 + static_cast<int>(code);
}

}  // namespace

extern "C" NEOSERVE_TENSORRT_EXPORT int neoserve_tensorrt_abi(uint64_t loader_layout) {
  return loader_layout == neoserve::tensorrt_layout_fingerprint() ? NEOSERVE_TENSORRT_ABI : -1;
}

extern "C" NEOSERVE_TENSORRT_EXPORT int neoserve_tensorrt_create(const neoserve::TensorRtLoadRequest* request,
                                                                 neoserve::Provider** out, char* error, size_t error_size) {
  using neoserve::ErrorCode;
  if (error && error_size > 0) error[0] = '\0';
  if (!out) return report(ErrorCode::Internal, "neoserve_tensorrt_create: no output pointer", error, error_size);
  *out = nullptr;
  if (!request || !request->manifest)
    return report(ErrorCode::Internal, "neoserve_tensorrt_create: no load request or manifest", error, error_size);
  try {
    auto provider = std::make_unique<neoserve::trt::TensorRtProvider>(*request);
    *out = provider.release();
    return 0;
  } catch (const neoserve::Error& e) {
    return report(e.code(), e.what(), error, error_size);
  } catch (const std::bad_alloc&) {
    return report(ErrorCode::OutOfMemory, "out of memory: out of host memory while loading the TensorRT engine",
                  error, error_size);
  } catch (const std::exception& e) {
    return report(ErrorCode::Internal, e.what(), error, error_size, "tensorrt provider: ");
  } catch (...) {
    return report(ErrorCode::Internal, "tensorrt provider: unknown exception while loading", error, error_size);
  }
}

// The loader calls these through the typedefs of entry.h: keep them in step.
static_assert(std::is_same_v<decltype(&neoserve_tensorrt_abi), neoserve_tensorrt_abi_fn>);
static_assert(std::is_same_v<decltype(&neoserve_tensorrt_create), neoserve_tensorrt_create_fn>);
