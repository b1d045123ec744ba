// GPU telemetry through NVML loaded with dlopen, against the fake NVML
// (native/test/fake_nvml) in each of its layouts.
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <string>
#include <thread>

#include "core/telemetry/nvml_library.h"
#include "core/telemetry/sampler.h"
#include "core/telemetry/telemetry.h"
#include "harness.h"

using namespace neoserve::telemetry;

namespace {

bool contains(const std::string& s, const std::string& needle) { return s.find(needle) != std::string::npos; }

// Each test sets the layout, then opens its own library (the fake reads the layout at nvmlInit).
void set_layout(const char* layout) { setenv("FAKE_NVML_LAYOUT", layout, 1); }

}  // namespace

TEST("telemetry.h100_mig7_layout") {
  set_layout("h100-mig7");
  NvmlLibrary lib(NEOSERVE_FAKE_NVML_PATH);
  CHECK(lib.available());
  CHECK_EQ(lib.reason(), std::string());
  CHECK(lib.missing_functions().empty());
  const TelemetrySnapshot s = read_snapshot(&lib, 123);
  CHECK(s.available);
  CHECK(s.timestamp_ms > 1600000000000LL);
  CHECK_EQ(s.process.engine_bytes, 123u);
  CHECK_EQ(s.gpus.size(), 1u);
  if (s.gpus.size() != 1) return;
  const GpuTelemetry& g = s.gpus[0];
  CHECK_EQ(g.name, std::string("NVIDIA H100 80GB HBM3"));
  CHECK(contains(g.uuid, "GPU-"));
  CHECK_EQ(g.pci_bus_id, std::string("00000000:17:00.0"));
  CHECK(g.mig_mode);
  CHECK_EQ(*g.memory_total_bytes, 81559ull * 1024 * 1024);
  // As real NVML: no utilization for a GPU in MIG mode; the reason says so.
  CHECK(!g.utilization_gpu_pct.has_value());
  CHECK(contains(g.absent.at("utilization_gpu_pct"), "Not Supported"));
  CHECK(g.power_draw_w.has_value() && g.power_limit_w.has_value());
  CHECK_NEAR(g.power_limit_w.value_or(0), 700.0, 1e-9);
  CHECK_EQ(g.sm_clock_mhz.value_or(0), 1980u);
  CHECK_EQ(g.mem_clock_mhz.value_or(0), 2619u);
  CHECK_EQ(g.mig.size(), 7u);
  for (size_t i = 0; i < g.mig.size(); ++i) {
    const MigTelemetry& m = g.mig[i];
    CHECK_EQ(m.index, i);
    CHECK_EQ(m.profile, std::string("1g.10gb"));
    CHECK_EQ(m.name, std::string("NVIDIA H100 80GB HBM3 MIG 1g.10gb"));
    CHECK(contains(m.uuid, "MIG-"));
    CHECK_EQ(m.gpu_instance_id.value_or(999), 7u + i);
    CHECK_EQ(m.compute_instance_id.value_or(999), 0u);
    CHECK_EQ(m.memory_total_bytes.value_or(0), 9984ull * 1024 * 1024);
    CHECK(m.memory_used_bytes.value_or(0) > 0);
    CHECK_EQ(*m.memory_used_bytes + *m.memory_free_bytes, *m.memory_total_bytes);
    CHECK(!m.utilization_gpu_pct.has_value());
    CHECK(!m.utilization_memory_pct.has_value());
    CHECK(m.absent.count("utilization_gpu_pct") == 1);
    if (i > 0) CHECK(m.uuid != g.mig[i - 1].uuid);
  }
}

TEST("telemetry.two_gpus_all_fields") {
  set_layout("two-gpus");
  NvmlLibrary lib(NEOSERVE_FAKE_NVML_PATH);
  CHECK(lib.available());
  const TelemetrySnapshot s = read_snapshot(&lib);
  CHECK(s.available);
  CHECK_EQ(s.gpus.size(), 2u);
  for (size_t i = 0; i < s.gpus.size(); ++i) {
    const GpuTelemetry& g = s.gpus[i];
    CHECK_EQ(g.index, i);
    CHECK_EQ(g.name, std::string("NVIDIA A100-SXM4-40GB"));
    CHECK(!g.uuid.empty());
    CHECK(!g.pci_bus_id.empty());
    CHECK_EQ(g.memory_total_bytes.value_or(0), 40960ull * 1024 * 1024);
    CHECK(g.memory_used_bytes.has_value() && g.memory_free_bytes.has_value());
    CHECK(g.utilization_gpu_pct.has_value() && g.utilization_memory_pct.has_value());
    CHECK(g.utilization_gpu_pct.value_or(1000) <= 100);
    CHECK_EQ(g.temperature_c.value_or(0), 35u + i);
    CHECK_NEAR(g.power_draw_w.value_or(0), 85.25 + i, 1e-9);
    CHECK_NEAR(g.power_limit_w.value_or(0), 400.0, 1e-9);
    CHECK_EQ(g.sm_clock_mhz.value_or(0), 1410u);
    CHECK_EQ(g.mem_clock_mhz.value_or(0), 1215u);
    CHECK(!g.mig_mode);
    CHECK(g.mig.empty());
    CHECK(g.absent.empty());
    for (const auto& [field, why] : g.absent) std::fprintf(stderr, "  absent %s: %s\n", field.c_str(), why.c_str());
  }
  if (s.gpus.size() == 2) {
    CHECK(s.gpus[0].uuid != s.gpus[1].uuid);
    CHECK(s.gpus[0].pci_bus_id != s.gpus[1].pci_bus_id);
  }
  // Memory used moves between snapshots (the fake grows it per call).
  const TelemetrySnapshot s2 = read_snapshot(&lib);
  CHECK(!s2.gpus.empty() && s2.gpus[0].memory_used_bytes.value_or(0) > s.gpus[0].memory_used_bytes.value_or(0));
}

TEST("telemetry.no_power_absent_rest_present") {
  set_layout("no-power");
  NvmlLibrary lib(NEOSERVE_FAKE_NVML_PATH);
  const TelemetrySnapshot s = read_snapshot(&lib);
  CHECK(s.available);
  CHECK_EQ(s.gpus.size(), 2u);
  for (const GpuTelemetry& g : s.gpus) {
    CHECK(!g.power_draw_w.has_value());
    CHECK(!g.power_limit_w.has_value());
    CHECK(contains(g.absent.at("power_draw_w"), "nvmlDeviceGetPowerUsage: Not Supported"));
    CHECK(contains(g.absent.at("power_limit_w"), "Not Supported"));
    CHECK_EQ(g.absent.size(), 2u);
    CHECK(!g.name.empty() && !g.uuid.empty() && !g.pci_bus_id.empty());
    CHECK(g.memory_total_bytes && g.memory_used_bytes && g.memory_free_bytes);
    CHECK(g.utilization_gpu_pct && g.utilization_memory_pct && g.temperature_c);
    CHECK(g.sm_clock_mhz && g.mem_clock_mhz);
  }
}

TEST("telemetry.old_driver_without_mig_symbols") {
  set_layout("no-mig-symbols");
  NvmlLibrary lib(NEOSERVE_FAKE_NVML_OLD_PATH);
  CHECK(lib.available());
  CHECK_EQ(lib.missing_functions().size(), 5u);
  CHECK(contains(lib.missing_reason("nvmlDeviceGetMigMode"), "not exported"));
  CHECK(lib.missing_reason("nvmlDeviceGetName").empty());
  CHECK(lib.fn().get_mig_mode == nullptr);
  const TelemetrySnapshot s = read_snapshot(&lib);
  CHECK(s.available);
  CHECK_EQ(s.gpus.size(), 1u);
  if (s.gpus.empty()) return;
  const GpuTelemetry& g = s.gpus[0];
  CHECK_EQ(g.name, std::string("Tesla V100-SXM2-16GB"));
  CHECK(!g.mig_mode);
  CHECK(g.mig.empty());
  CHECK(contains(g.absent.at("mig_mode"), "nvmlDeviceGetMigMode not exported by"));
  CHECK(g.memory_total_bytes && g.utilization_gpu_pct && g.power_draw_w && g.temperature_c);
}

TEST("telemetry.missing_library") {
  const std::string path = "/nonexistent/dir/libnvidia-ml.so.1";
  NvmlLibrary lib(path);
  CHECK(!lib.available());
  CHECK(contains(lib.reason(), path));
  CHECK_EQ(lib.path(), path);
  const TelemetrySnapshot s = read_snapshot(&lib, 7);
  CHECK(!s.available);
  CHECK(contains(s.reason, "libnvidia-ml.so.1"));
  CHECK(s.gpus.empty());
  CHECK(s.process.rss_bytes > 0);
  CHECK_EQ(s.process.engine_bytes, 7u);
  // No library at all.
  const TelemetrySnapshot none = read_snapshot(nullptr);
  CHECK(!none.available);
  CHECK(!none.reason.empty());
}

TEST("telemetry.library_path_from_env") {
  set_layout("two-gpus");
  setenv(NvmlLibrary::kPathEnv, NEOSERVE_FAKE_NVML_PATH, 1);
  {
    NvmlLibrary lib;
    CHECK_EQ(lib.path(), std::string(NEOSERVE_FAKE_NVML_PATH));
    CHECK(lib.available());
  }
  unsetenv(NvmlLibrary::kPathEnv);
  // A library that is not NVML: required entry points missing → unavailable, named.
  NvmlLibrary libc_lib("libc.so.6");
  CHECK(!libc_lib.available());
  CHECK(contains(libc_lib.reason(), "nvmlInit_v2"));
  CHECK(contains(libc_lib.reason(), "libc.so.6"));
}

TEST("telemetry.init_failure") {
  set_layout("init-fails");
  NvmlLibrary lib(NEOSERVE_FAKE_NVML_PATH);
  CHECK(!lib.available());
  CHECK(contains(lib.reason(), "Driver Not Loaded"));
  CHECK(contains(lib.reason(), "nvmlInit_v2"));
  const TelemetrySnapshot s = read_snapshot(&lib);
  CHECK(!s.available);
  CHECK(contains(s.reason, "Driver Not Loaded"));
  CHECK(s.gpus.empty());
}

TEST("telemetry.parse_mig_profile") {
  CHECK_EQ(parse_mig_profile("NVIDIA H100 80GB HBM3 MIG 1g.10gb"), std::string("1g.10gb"));
  CHECK_EQ(parse_mig_profile("NVIDIA A100-SXM4-40GB MIG 3g.20gb"), std::string("3g.20gb"));
  CHECK_EQ(parse_mig_profile("NVIDIA H100 80GB HBM3 MIG 1g.10gb+me"), std::string("1g.10gb+me"));
  CHECK_EQ(parse_mig_profile("NVIDIA A100-SXM4-40GB MIG 1c.3g.20gb"), std::string("1c.3g.20gb"));
  CHECK_EQ(parse_mig_profile("NVIDIA H100 80GB HBM3"), std::string());
  CHECK_EQ(parse_mig_profile(""), std::string());
}

TEST("telemetry.process_rss") {
  const ProcessTelemetry p = read_process_telemetry(42);
  CHECK(p.rss_bytes > 0);
  CHECK(p.cpu_user_s >= 0 && p.cpu_system_s >= 0);
  CHECK_EQ(p.engine_bytes, 42u);
}

TEST("telemetry.sampler_period_ring_and_stop") {
  set_layout("two-gpus");
  NvmlLibrary lib(NEOSERVE_FAKE_NVML_PATH);
  std::atomic<int> callbacks{0};
  SamplerOptions opt;
  opt.period_ms = 20;
  opt.capacity = 4;
  opt.on_sample = [&](const TelemetrySnapshot& s) { if (s.available) ++callbacks; };
  opt.engine_bytes = [] { return uint64_t{99}; };
  const auto t0 = std::chrono::steady_clock::now();
  TelemetrySampler sampler(&lib, opt);
  CHECK_EQ(sampler.period_ms(), 20u);
  // Wait for ~8 periods (bounded, so a loaded machine cannot hang the test).
  while (sampler.samples_taken() < 8 && std::chrono::steady_clock::now() - t0 < std::chrono::seconds(10))
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  sampler.stop();
  const auto elapsed_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0).count();
  const uint64_t taken = sampler.samples_taken();
  CHECK(taken >= 8);
  // Taken at the period: the first at once, then one per 20 ms, so 8 need >= 140 ms.
  CHECK(elapsed_ms >= 140);
  CHECK(taken <= static_cast<uint64_t>(elapsed_ms / 20 + 2));
  CHECK(!sampler.running());
  CHECK_EQ(static_cast<uint64_t>(callbacks.load()), taken);
  const auto recent = sampler.recent();
  CHECK_EQ(recent.size(), 4u);
  const auto latest = sampler.latest();
  CHECK(latest.has_value());
  if (latest && recent.size() == 4) {
    CHECK_EQ(latest->timestamp_ms, recent.back().timestamp_ms);
    CHECK(recent.front().timestamp_ms <= recent.back().timestamp_ms);
    CHECK(recent.back().available);
    CHECK_EQ(recent.back().process.engine_bytes, 99u);
    // The sampler sees change: memory used grows between samples.
    CHECK(recent.back().gpus.at(0).memory_used_bytes.value() > recent.front().gpus.at(0).memory_used_bytes.value());
  }
  // Stopped: no more samples; stop is idempotent.
  std::this_thread::sleep_for(std::chrono::milliseconds(60));
  CHECK_EQ(sampler.samples_taken(), taken);
  sampler.stop();
}

TEST("telemetry.sampler_destructor_stops_promptly") {
  std::atomic<int> reads{0};
  const auto t0 = std::chrono::steady_clock::now();
  {
    SamplerOptions opt;
    opt.period_ms = 60000;  // a long sleep: the destructor must wake it, not wait it out
    TelemetrySampler sampler([&] { ++reads; return TelemetrySnapshot{}; }, opt);
    while (reads.load() == 0 && std::chrono::steady_clock::now() - t0 < std::chrono::seconds(5))
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    CHECK(sampler.running());
  }
  CHECK_EQ(reads.load(), 1);
  CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(5));
}
