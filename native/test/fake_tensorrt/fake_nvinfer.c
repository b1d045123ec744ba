/* A stand-in for libnvinfer.so.10 in tests: reports the TensorRT version in
 * $FAKE_NVINFER_VERSION (major * 10000 + minor * 100 + patch; default 10.8.0)
 * and creates no runtime. Enough for the loader's library and version checks. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#define EXPORT __attribute__((visibility("default")))

EXPORT int32_t getInferLibVersion(void) {
  const char* v = getenv("FAKE_NVINFER_VERSION");
  return v ? (int32_t)atoi(v) : 100800;
}

EXPORT void* createInferRuntime_INTERNAL(void* logger, int32_t version) {
  (void)logger;
  (void)version;
  return NULL;
}
