#include "core/telemetry/nvml_library.h"

#include <dlfcn.h>

#include <cstdlib>
#include <type_traits>
#include <utility>

namespace neoserve::telemetry {

namespace {

template <typename Fn>
Fn lookup(void* handle, const char* symbol) {
  dlerror();
  void* p = dlsym(handle, symbol);
  // Function pointers from void*: the POSIX-sanctioned conversion.
  return reinterpret_cast<Fn>(p);
}

}  // namespace

NvmlLibrary::NvmlLibrary(std::string path) : path_(std::move(path)) {
  if (path_.empty()) {
    const char* env = std::getenv(kPathEnv);
    path_ = (env != nullptr && *env != '\0') ? env : kDefaultPath;
  }

  dlerror();
  handle_ = dlopen(path_.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (handle_ == nullptr) {
    const char* err = dlerror();
    reason_ = "cannot load NVML library '" + path_ + "': " + (err != nullptr ? err : "dlopen failed");
    return;
  }

  // Required: without these there is nothing to report.
  fn_.init = lookup<nvml::nvmlInit_v2_fn>(handle_, "nvmlInit_v2");
  fn_.shutdown = lookup<nvml::nvmlShutdown_fn>(handle_, "nvmlShutdown");
  fn_.get_count = lookup<nvml::nvmlDeviceGetCount_v2_fn>(handle_, "nvmlDeviceGetCount_v2");
  fn_.get_handle_by_index = lookup<nvml::nvmlDeviceGetHandleByIndex_v2_fn>(handle_, "nvmlDeviceGetHandleByIndex_v2");
  std::string missing_required;
  const std::pair<const void*, const char*> required[] = {
      {reinterpret_cast<const void*>(fn_.init), "nvmlInit_v2"},
      {reinterpret_cast<const void*>(fn_.shutdown), "nvmlShutdown"},
      {reinterpret_cast<const void*>(fn_.get_count), "nvmlDeviceGetCount_v2"},
      {reinterpret_cast<const void*>(fn_.get_handle_by_index), "nvmlDeviceGetHandleByIndex_v2"},
  };
  for (const auto& [p, name] : required) {
    if (p == nullptr) missing_required += (missing_required.empty() ? "" : ", ") + std::string(name);
  }

  // Optional: a missing one only makes the fields it feeds absent.
  auto optional = [&](auto& slot, const char* symbol) {
    using Fn = std::remove_reference_t<decltype(slot)>;
    slot = lookup<Fn>(handle_, symbol);
    if (slot == nullptr) missing_.emplace_back(symbol);
  };
  optional(fn_.error_string, "nvmlErrorString");
  optional(fn_.get_name, "nvmlDeviceGetName");
  optional(fn_.get_uuid, "nvmlDeviceGetUUID");
  optional(fn_.get_pci_info, "nvmlDeviceGetPciInfo_v3");
  optional(fn_.get_memory_info, "nvmlDeviceGetMemoryInfo");
  optional(fn_.get_utilization_rates, "nvmlDeviceGetUtilizationRates");
  optional(fn_.get_temperature, "nvmlDeviceGetTemperature");
  optional(fn_.get_power_usage, "nvmlDeviceGetPowerUsage");
  optional(fn_.get_enforced_power_limit, "nvmlDeviceGetEnforcedPowerLimit");
  optional(fn_.get_clock_info, "nvmlDeviceGetClockInfo");
  optional(fn_.get_mig_mode, "nvmlDeviceGetMigMode");
  optional(fn_.get_max_mig_device_count, "nvmlDeviceGetMaxMigDeviceCount");
  optional(fn_.get_mig_device_handle_by_index, "nvmlDeviceGetMigDeviceHandleByIndex");
  optional(fn_.get_gpu_instance_id, "nvmlDeviceGetGpuInstanceId");
  optional(fn_.get_compute_instance_id, "nvmlDeviceGetComputeInstanceId");

  if (!missing_required.empty()) {
    reason_ = "NVML library '" + path_ + "' does not export " + missing_required;
    return;
  }

  const nvml::nvmlReturn_t rc = fn_.init();
  if (rc != nvml::NVML_SUCCESS) {
    reason_ = "nvmlInit_v2 failed (" + path_ + "): " + error_string(rc);
    return;
  }
  initialized_ = true;
  available_ = true;
}

NvmlLibrary::~NvmlLibrary() {
  if (initialized_ && fn_.shutdown != nullptr) fn_.shutdown();
  if (handle_ != nullptr) dlclose(handle_);
}

std::string NvmlLibrary::error_string(nvml::nvmlReturn_t code) const {
  if (fn_.error_string != nullptr) {
    const char* s = fn_.error_string(code);
    if (s != nullptr) return s;
  }
  return "NVML error " + std::to_string(static_cast<int>(code));
}

std::string NvmlLibrary::missing_reason(const std::string& symbol) const {
  for (const std::string& m : missing_) {
    if (m == symbol) return symbol + " not exported by " + path_;
  }
  return {};
}

}  // namespace neoserve::telemetry
