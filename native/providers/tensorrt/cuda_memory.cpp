#include "cuda_memory.h"

#include <cstdio>
#include <string>

#include "cuda_check.h"

namespace neoserve::trt {

namespace {

std::string mib(size_t bytes) {
  const double m = static_cast<double>(bytes) / (1024.0 * 1024.0);
  char text[64];
  std::snprintf(text, sizeof text, "%.1f MiB", m);
  return text;
}

}  // namespace

void DeviceBuffer::allocate(size_t bytes, const char* what) {
  reset();
  if (bytes == 0) return;
  void* p = nullptr;
  const cudaError_t e = cudaMalloc(&p, bytes);
  if (e != cudaSuccess) {
    (void)cudaGetLastError();
    size_t free_bytes = 0, total = 0;
    std::string free_text;
    if (cudaMemGetInfo(&free_bytes, &total) == cudaSuccess)
      free_text = " (" + mib(free_bytes) + " of " + mib(total) + " free)";
    (void)cudaGetLastError();
    out_of_memory("cannot allocate " + mib(bytes) + " of device memory for " + what + free_text + ": " + cuda_error_text(e));
  }
  ptr_ = p;
  bytes_ = bytes;
}

void DeviceBuffer::reset() {
  if (ptr_) (void)cudaFree(ptr_);
  ptr_ = nullptr;
  bytes_ = 0;
}

void PinnedBuffer::allocate(size_t bytes, const char* what) {
  reset();
  if (bytes == 0) return;
  void* p = nullptr;
  const cudaError_t e = cudaHostAlloc(&p, bytes, cudaHostAllocDefault);
  if (e != cudaSuccess) {
    (void)cudaGetLastError();
    out_of_memory("cannot allocate " + mib(bytes) + " of pinned host memory for " + what + ": " + cuda_error_text(e));
  }
  ptr_ = p;
  bytes_ = bytes;
}

void PinnedBuffer::reset() {
  if (ptr_) (void)cudaFreeHost(ptr_);
  ptr_ = nullptr;
  bytes_ = 0;
}

void CudaStream::create() {
  reset();
  cudaStream_t s = nullptr;
  cuda_check(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking), "cannot create a CUDA stream",
             ErrorCode::ProviderUnavailable);
  stream_ = s;
}

void CudaStream::reset() {
  if (stream_) (void)cudaStreamDestroy(stream_);
  stream_ = nullptr;
}

void CudaEvent::create() {
  reset();
  cudaEvent_t e = nullptr;
  cuda_check(cudaEventCreateWithFlags(&e, cudaEventDisableTiming), "cannot create a CUDA event",
             ErrorCode::ProviderUnavailable);
  event_ = e;
}

void CudaEvent::reset() {
  if (event_) (void)cudaEventDestroy(event_);
  event_ = nullptr;
}

}  // namespace neoserve::trt
