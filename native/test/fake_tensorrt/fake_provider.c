/* A stand-in for neoserve_tensorrt.so in tests: the entry points of
 * native/providers/tensorrt/entry.h with an ABI from $FAKE_PROVIDER_ABI
 * (default the real one) and a create that always fails the way a machine
 * without a GPU makes the real one fail. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

#define EXPORT __attribute__((visibility("default")))
#define PROVIDER_UNAVAILABLE 2 /* neoserve::ErrorCode::ProviderUnavailable */

EXPORT int neoserve_tensorrt_abi(unsigned long long loader_layout) {
  (void)loader_layout; /* a C stand-in has no C++ layouts to compare */
  const char* v = getenv("FAKE_PROVIDER_ABI");
  return v ? atoi(v) : 1;
}

EXPORT int neoserve_tensorrt_create(const void* request, void** out, char* error, size_t error_size) {
  (void)request;
  *out = NULL;
  snprintf(error, error_size, "provider unavailable: no CUDA device (fake provider: cudaErrorNoDevice)");
  return 1 + PROVIDER_UNAVAILABLE;
}
