#include "core/telemetry/telemetry.h"

#include <sys/resource.h>

#include <cctype>
#include <chrono>
#include <cstdio>
#include <cstring>

#include "core/telemetry/nvml_library.h"

namespace neoserve::telemetry {

namespace {

using nvml::nvmlDevice_t;
using nvml::nvmlReturn_t;

// Absent-field bookkeeping for one device.
struct Reader {
  const NvmlLibrary& lib;
  AbsentReasons& absent;

  // Records why `field` is absent when `fn` is missing or returns an error; true on success.
  template <typename Fn, typename... Args>
  bool call(const char* field, Fn fn, const char* symbol, Args... args) {
    if (fn == nullptr) {
      absent[field] = lib.missing_reason(symbol);
      return false;
    }
    const nvmlReturn_t rc = fn(args...);
    if (rc != nvml::NVML_SUCCESS) {
      absent[field] = std::string(symbol) + ": " + lib.error_string(rc);
      return false;
    }
    return true;
  }

  std::string string_field(const char* field, nvml::nvmlDeviceGetName_fn fn, const char* symbol, nvmlDevice_t dev) {
    char buf[NEOSERVE_NVML_NAME_BUFFER_SIZE] = {};
    if (!call(field, fn, symbol, dev, buf, static_cast<unsigned>(sizeof buf))) return {};
    buf[sizeof buf - 1] = '\0';
    return buf;
  }

  void memory(nvmlDevice_t dev, std::optional<uint64_t>& total, std::optional<uint64_t>& used,
              std::optional<uint64_t>& free) {
    nvml::nvmlMemory_t m{};
    if (call("memory_total_bytes", lib.fn().get_memory_info, "nvmlDeviceGetMemoryInfo", dev, &m)) {
      total = m.total;
      used = m.used;
      free = m.free;
    } else {
      absent["memory_used_bytes"] = absent["memory_free_bytes"] = absent["memory_total_bytes"];
    }
  }
};

void read_mig_devices(const NvmlLibrary& lib, nvmlDevice_t parent, GpuTelemetry& gpu) {
  const auto& fn = lib.fn();
  Reader r{lib, gpu.absent};
  unsigned max_count = 0;
  if (!r.call("mig", fn.get_max_mig_device_count, "nvmlDeviceGetMaxMigDeviceCount", parent, &max_count)) return;
  if (fn.get_mig_device_handle_by_index == nullptr) {
    gpu.absent["mig"] = lib.missing_reason("nvmlDeviceGetMigDeviceHandleByIndex");
    return;
  }
  for (unsigned i = 0; i < max_count; ++i) {
    nvmlDevice_t dev = nullptr;
    const nvmlReturn_t rc = fn.get_mig_device_handle_by_index(parent, i, &dev);
    if (rc == nvml::NVML_ERROR_NOT_FOUND) continue;  // an empty slot
    if (rc != nvml::NVML_SUCCESS || dev == nullptr) {
      gpu.absent["mig[" + std::to_string(i) + "]"] =
          "nvmlDeviceGetMigDeviceHandleByIndex: " + lib.error_string(rc);
      continue;
    }
    MigTelemetry m;
    m.index = i;
    Reader mr{lib, m.absent};
    m.uuid = mr.string_field("uuid", fn.get_uuid, "nvmlDeviceGetUUID", dev);
    m.name = mr.string_field("name", fn.get_name, "nvmlDeviceGetName", dev);
    m.profile = parse_mig_profile(m.name);
    if (m.profile.empty() && !m.absent.count("name")) m.absent["profile"] = "no MIG profile in the device name";
    unsigned id = 0;
    if (mr.call("gpu_instance_id", fn.get_gpu_instance_id, "nvmlDeviceGetGpuInstanceId", dev, &id))
      m.gpu_instance_id = id;
    if (mr.call("compute_instance_id", fn.get_compute_instance_id, "nvmlDeviceGetComputeInstanceId", dev, &id))
      m.compute_instance_id = id;
    mr.memory(dev, m.memory_total_bytes, m.memory_used_bytes, m.memory_free_bytes);
    m.absent["utilization_gpu_pct"] = m.absent["utilization_memory_pct"] =
        "NVML reports no utilization per MIG instance";
    gpu.mig.push_back(std::move(m));
  }
}

GpuTelemetry read_gpu(const NvmlLibrary& lib, unsigned index, nvmlDevice_t dev) {
  const auto& fn = lib.fn();
  GpuTelemetry g;
  g.index = index;
  Reader r{lib, g.absent};
  g.name = r.string_field("name", fn.get_name, "nvmlDeviceGetName", dev);
  g.uuid = r.string_field("uuid", fn.get_uuid, "nvmlDeviceGetUUID", dev);
  nvml::nvmlPciInfo_t pci{};
  if (r.call("pci_bus_id", fn.get_pci_info, "nvmlDeviceGetPciInfo_v3", dev, &pci)) {
    pci.busId[sizeof pci.busId - 1] = '\0';
    g.pci_bus_id = pci.busId;
  }
  r.memory(dev, g.memory_total_bytes, g.memory_used_bytes, g.memory_free_bytes);
  nvml::nvmlUtilization_t u{};
  if (r.call("utilization_gpu_pct", fn.get_utilization_rates, "nvmlDeviceGetUtilizationRates", dev, &u)) {
    g.utilization_gpu_pct = u.gpu;
    g.utilization_memory_pct = u.memory;
  } else {
    g.absent["utilization_memory_pct"] = g.absent["utilization_gpu_pct"];
  }
  unsigned v = 0;
  if (r.call("temperature_c", fn.get_temperature, "nvmlDeviceGetTemperature", dev, nvml::NVML_TEMPERATURE_GPU, &v))
    g.temperature_c = v;
  if (r.call("power_draw_w", fn.get_power_usage, "nvmlDeviceGetPowerUsage", dev, &v)) g.power_draw_w = v / 1000.0;
  if (r.call("power_limit_w", fn.get_enforced_power_limit, "nvmlDeviceGetEnforcedPowerLimit", dev, &v))
    g.power_limit_w = v / 1000.0;
  if (r.call("sm_clock_mhz", fn.get_clock_info, "nvmlDeviceGetClockInfo", dev, nvml::NVML_CLOCK_SM, &v))
    g.sm_clock_mhz = v;
  if (r.call("mem_clock_mhz", fn.get_clock_info, "nvmlDeviceGetClockInfo", dev, nvml::NVML_CLOCK_MEM, &v))
    g.mem_clock_mhz = v;
  unsigned current = 0, pending = 0;
  if (r.call("mig_mode", fn.get_mig_mode, "nvmlDeviceGetMigMode", dev, &current, &pending)) {
    g.mig_mode = current == NEOSERVE_NVML_MIG_ENABLE;
    if (g.mig_mode) read_mig_devices(lib, dev, g);
  }
  return g;
}

uint64_t read_vm_rss_bytes() {
  std::FILE* f = std::fopen("/proc/self/status", "r");
  if (f == nullptr) return 0;
  char line[256];
  uint64_t kib = 0;
  while (std::fgets(line, sizeof line, f) != nullptr) {
    if (std::strncmp(line, "VmRSS:", 6) == 0) {
      unsigned long long v = 0;
      if (std::sscanf(line + 6, "%llu", &v) == 1) kib = v;
      break;
    }
  }
  std::fclose(f);
  return kib * 1024;
}

}  // namespace

std::string parse_mig_profile(std::string_view name) {
  // The last whitespace-separated token shaped like [<n>c.]<n>g.<n>gb[+suffix].
  size_t end = name.size();
  while (end > 0) {
    while (end > 0 && std::isspace(static_cast<unsigned char>(name[end - 1]))) --end;
    size_t begin = end;
    while (begin > 0 && !std::isspace(static_cast<unsigned char>(name[begin - 1]))) --begin;
    const std::string_view tok = name.substr(begin, end - begin);
    // Find "<digits>g.<digits>gb" inside the token.
    for (size_t i = 0; i < tok.size(); ++i) {
      size_t j = i;
      while (j < tok.size() && std::isdigit(static_cast<unsigned char>(tok[j]))) ++j;
      if (j == i || j + 1 >= tok.size() || tok[j] != 'g' || tok[j + 1] != '.') continue;
      size_t k = j + 2;
      const size_t mem_begin = k;
      while (k < tok.size() && std::isdigit(static_cast<unsigned char>(tok[k]))) ++k;
      if (k == mem_begin || tok.substr(k, 2) != "gb") continue;
      // The whole token is the profile (with any "<n>c." prefix or "+me" suffix).
      return std::string(tok);
    }
    end = begin;
  }
  return {};
}

ProcessTelemetry read_process_telemetry(uint64_t engine_bytes) {
  ProcessTelemetry p;
  p.engine_bytes = engine_bytes;
  rusage ru{};
  if (getrusage(RUSAGE_SELF, &ru) == 0) {
    p.cpu_user_s = static_cast<double>(ru.ru_utime.tv_sec) + ru.ru_utime.tv_usec / 1e6;
    p.cpu_system_s = static_cast<double>(ru.ru_stime.tv_sec) + ru.ru_stime.tv_usec / 1e6;
    p.rss_bytes = static_cast<uint64_t>(ru.ru_maxrss) * 1024;  // peak; replaced by VmRSS below
  }
  if (const uint64_t rss = read_vm_rss_bytes(); rss > 0) p.rss_bytes = rss;
  return p;
}

TelemetrySnapshot read_snapshot(NvmlLibrary* nvml, uint64_t engine_bytes) {
  TelemetrySnapshot s;
  s.timestamp_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                       .count();
  s.process = read_process_telemetry(engine_bytes);
  if (nvml == nullptr) {
    s.reason = "NVML not loaded";
    return s;
  }
  if (!nvml->available()) {
    s.reason = nvml->reason();
    return s;
  }
  unsigned count = 0;
  const nvmlReturn_t rc = nvml->fn().get_count(&count);
  if (rc != nvml::NVML_SUCCESS) {
    s.reason = "nvmlDeviceGetCount_v2: " + nvml->error_string(rc);
    return s;
  }
  s.available = true;
  for (unsigned i = 0; i < count; ++i) {
    nvmlDevice_t dev = nullptr;
    const nvmlReturn_t hrc = nvml->fn().get_handle_by_index(i, &dev);
    if (hrc != nvml::NVML_SUCCESS || dev == nullptr) {
      // A GPU NVML cannot open (e.g. no permission on its device node): listed with the reason.
      GpuTelemetry g;
      g.index = i;
      g.absent["device"] = "nvmlDeviceGetHandleByIndex_v2: " + nvml->error_string(hrc);
      s.gpus.push_back(std::move(g));
      continue;
    }
    s.gpus.push_back(read_gpu(*nvml, i, dev));
  }
  return s;
}

}  // namespace neoserve::telemetry
