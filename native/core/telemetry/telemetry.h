// One snapshot of GPU (NVML) and process telemetry. Every NVML value is
// optional: a value NVML refuses (NOT_SUPPORTED, NO_PERMISSION, ...) or whose
// entry point the driver lacks is absent, and `absent[field]` says why.
// Field names follow dcgm-exporter's metrics where one exists
// (DCGM_FI_DEV_FB_USED → memory_used_bytes, DCGM_FI_DEV_GPU_UTIL →
// utilization_gpu_pct, DCGM_FI_DEV_POWER_USAGE → power_draw_w, ...).
#pragma once
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace neoserve::telemetry {

class NvmlLibrary;

// Field name → why it is absent ("nvmlDeviceGetPowerUsage: Not Supported").
using AbsentReasons = std::map<std::string, std::string>;

// One MIG device (GPU instance + compute instance) of a GPU in MIG mode.
struct MigTelemetry {
  uint32_t index = 0;  // MIG device index on its parent GPU
  std::string uuid;    // "MIG-..." (CUDA_VISIBLE_DEVICES=MIG-<uuid>)
  std::string name;    // e.g. "NVIDIA H100 80GB HBM3 MIG 1g.10gb"
  std::optional<uint32_t> gpu_instance_id;
  std::optional<uint32_t> compute_instance_id;
  std::string profile;  // "1g.10gb", parsed from the name; empty if not found
  std::optional<uint64_t> memory_total_bytes;
  std::optional<uint64_t> memory_used_bytes;
  std::optional<uint64_t> memory_free_bytes;
  // NVML has no per-MIG-instance utilization: always absent (see `absent`).
  std::optional<uint32_t> utilization_gpu_pct;
  std::optional<uint32_t> utilization_memory_pct;
  AbsentReasons absent;
};

struct GpuTelemetry {
  uint32_t index = 0;
  std::string name;
  std::string uuid;        // "GPU-..."
  std::string pci_bus_id;  // "00000000:17:00.0"
  std::optional<uint64_t> memory_total_bytes;
  std::optional<uint64_t> memory_used_bytes;
  std::optional<uint64_t> memory_free_bytes;
  std::optional<uint32_t> utilization_gpu_pct;
  std::optional<uint32_t> utilization_memory_pct;
  std::optional<uint32_t> temperature_c;
  std::optional<double> power_draw_w;
  std::optional<double> power_limit_w;  // the enforced limit
  std::optional<uint32_t> sm_clock_mhz;
  std::optional<uint32_t> mem_clock_mhz;
  bool mig_mode = false;  // MIG currently enabled
  std::vector<MigTelemetry> mig;
  AbsentReasons absent;  // keys are the field names above ("power_draw_w", "name", "mig_mode", ...)
};

struct ProcessTelemetry {
  double cpu_user_s = 0;
  double cpu_system_s = 0;
  uint64_t rss_bytes = 0;     // current resident set (VmRSS), else peak from getrusage
  uint64_t engine_bytes = 0;  // passed in by the caller (weights + KV cache it owns)
};

struct TelemetrySnapshot {
  int64_t timestamp_ms = 0;  // Unix epoch milliseconds
  bool available = false;    // NVML usable (process telemetry is filled either way)
  std::string reason;        // why not available
  std::vector<GpuTelemetry> gpus;
  ProcessTelemetry process;
};

// Reads every GPU (and its MIG devices) through `nvml`; `nvml` null or not
// available → available=false with the reason. Never throws for NVML errors.
TelemetrySnapshot read_snapshot(NvmlLibrary* nvml, uint64_t engine_bytes = 0);

// CPU times and RSS of this process.
ProcessTelemetry read_process_telemetry(uint64_t engine_bytes = 0);

// "NVIDIA H100 80GB HBM3 MIG 1g.10gb" → "1g.10gb" (also "3g.40gb", "1g.10gb+me",
// "1c.3g.40gb"); "" when the name holds no profile.
std::string parse_mig_profile(std::string_view name);

}  // namespace neoserve::telemetry
