// Which CUDA device a provider runs on, from the `device` option:
//   "" or "0", "1", ...  a CUDA device index ("" is the first);
//   "GPU-<uuid>"         the device nvidia-smi lists with that UUID;
//   "MIG-<uuid>"         a MIG instance: CUDA only exposes it when the process
//                        was started with CUDA_VISIBLE_DEVICES=MIG-<uuid>, and
//                        then it is device 0.
#pragma once
#include <cuda_runtime_api.h>

#include <cstddef>
#include <string>

namespace neoserve::trt {

struct CudaDevice {
  int ordinal = 0;
  std::string name;   // "NVIDIA H100 80GB HBM3"
  std::string label;  // "GPU-<uuid> (NVIDIA H100 80GB HBM3)" or "MIG-<uuid> (...)"
  size_t total_memory = 0;
  int cc_major = 0, cc_minor = 0;
};

// "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx", lowercase, as nvidia-smi prints it after "GPU-".
std::string format_uuid(const cudaUUID_t& uuid);

// Throws ProviderUnavailable when no CUDA device or driver is usable, or the
// named device is not visible to this process; InvalidRequest for a string
// that names no device at all.
CudaDevice select_cuda_device(const std::string& spec);

}  // namespace neoserve::trt
