// NVML loaded at run time with dlopen (libnvidia-ml.so.1), so neoserve builds
// and runs on machines without an NVIDIA driver. Required entry points
// (nvmlInit_v2, nvmlShutdown, nvmlDeviceGetCount_v2,
// nvmlDeviceGetHandleByIndex_v2) missing → available() is false with a
// reason; an optional one missing (e.g. the MIG queries on an old driver) →
// its pointer is null and missing_reason(name) says why, so the telemetry
// fields it feeds are reported absent. nvmlInit on construction, nvmlShutdown
// and dlclose on destruction. NVML itself is thread-safe: one NvmlLibrary may
// be read from several threads.
#pragma once
#include <string>
#include <vector>

#include "core/telemetry/nvml_api.h"

namespace neoserve::telemetry {

class NvmlLibrary {
 public:
  static constexpr const char* kDefaultPath = "libnvidia-ml.so.1";
  static constexpr const char* kPathEnv = "NEOSERVE_NVML_LIBRARY";

  // The entry points; null where the library does not export them.
  struct Functions {
    nvml::nvmlInit_v2_fn init = nullptr;
    nvml::nvmlShutdown_fn shutdown = nullptr;
    nvml::nvmlErrorString_fn error_string = nullptr;
    nvml::nvmlDeviceGetCount_v2_fn get_count = nullptr;
    nvml::nvmlDeviceGetHandleByIndex_v2_fn get_handle_by_index = nullptr;
    nvml::nvmlDeviceGetName_fn get_name = nullptr;
    nvml::nvmlDeviceGetUUID_fn get_uuid = nullptr;
    nvml::nvmlDeviceGetPciInfo_v3_fn get_pci_info = nullptr;
    nvml::nvmlDeviceGetMemoryInfo_fn get_memory_info = nullptr;
    nvml::nvmlDeviceGetUtilizationRates_fn get_utilization_rates = nullptr;
    nvml::nvmlDeviceGetTemperature_fn get_temperature = nullptr;
    nvml::nvmlDeviceGetPowerUsage_fn get_power_usage = nullptr;
    nvml::nvmlDeviceGetEnforcedPowerLimit_fn get_enforced_power_limit = nullptr;
    nvml::nvmlDeviceGetClockInfo_fn get_clock_info = nullptr;
    nvml::nvmlDeviceGetMigMode_fn get_mig_mode = nullptr;
    nvml::nvmlDeviceGetMaxMigDeviceCount_fn get_max_mig_device_count = nullptr;
    nvml::nvmlDeviceGetMigDeviceHandleByIndex_fn get_mig_device_handle_by_index = nullptr;
    nvml::nvmlDeviceGetGpuInstanceId_fn get_gpu_instance_id = nullptr;
    nvml::nvmlDeviceGetComputeInstanceId_fn get_compute_instance_id = nullptr;
  };

  // `path` empty → $NEOSERVE_NVML_LIBRARY if set, else kDefaultPath (found
  // through the loader's search path). Never throws: failures show in
  // available()/reason().
  explicit NvmlLibrary(std::string path = {});
  ~NvmlLibrary();
  NvmlLibrary(const NvmlLibrary&) = delete;
  NvmlLibrary& operator=(const NvmlLibrary&) = delete;

  // Loaded, required entry points found and nvmlInit_v2 succeeded.
  bool available() const { return available_; }
  // Why not available (names the library path and the failing step); empty when available.
  const std::string& reason() const { return reason_; }
  // The path that was (or would have been) dlopen'ed.
  const std::string& path() const { return path_; }
  const Functions& fn() const { return fn_; }

  // NVML's text for a return code ("Not Supported"), or "NVML error <n>" without nvmlErrorString.
  std::string error_string(nvml::nvmlReturn_t code) const;
  // "<symbol> not exported by <path>" for an optional entry point that is
  // missing; empty when `symbol` was found (or is not one NvmlLibrary looks up).
  std::string missing_reason(const std::string& symbol) const;
  // Symbols (NVML's names) of the optional entry points that were not found.
  const std::vector<std::string>& missing_functions() const { return missing_; }

 private:
  std::string path_;
  void* handle_ = nullptr;
  bool initialized_ = false;  // nvmlInit_v2 succeeded: nvmlShutdown is owed
  bool available_ = false;
  std::string reason_;
  Functions fn_;
  std::vector<std::string> missing_;
};

}  // namespace neoserve::telemetry
