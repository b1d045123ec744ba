/* A fake NVML (built as libnvidia-ml.so.1) for the telemetry tests: it
 * exports the entry points neoserve looks up, with the layout chosen by
 * $FAKE_NVML_LAYOUT, read at each nvmlInit_v2 (dlopen of one path returns one
 * handle, so the layout cannot be fixed at load time):
 *   "two-gpus" (default)  two A100-SXM4-40GB, MIG capable but disabled
 *   "h100-mig7"           one H100 80GB HBM3 in MIG mode, 7 x 1g.10gb
 *   "no-power"            as two-gpus, power queries return NOT_SUPPORTED
 *   "no-mig-symbols"      one V100 (an old driver); meant for the variant built
 *                         with FAKE_NVML_NO_MIG, which does not export the MIG
 *                         entry points at all
 *   "init-fails"          nvmlInit_v2 returns NVML_ERROR_DRIVER_NOT_LOADED
 *   anything else         nvmlInit_v2 returns NVML_ERROR_UNKNOWN
 * Values are deterministic; memory used grows 1 MiB per nvmlDeviceGetMemoryInfo
 * call and utilization changes per call, so a sampler sees change. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/telemetry/nvml_api.h"

#define EXPORT __attribute__((visibility("default")))
#define MIB (1024ULL * 1024ULL)
#define MAX_GPUS 2
#define MAX_MIG 7

enum layout { L_TWO_GPUS, L_H100_MIG7, L_NO_POWER, L_NO_MIG_SYMBOLS };

struct nvmlDevice_st {
  int gpu;  /* parent GPU index */
  int mig;  /* MIG device index, -1 for the physical GPU */
};

static int g_init_count = 0;
static enum layout g_layout = L_TWO_GPUS;
static unsigned long long g_memory_calls = 0;
static unsigned g_util_calls = 0;
static struct nvmlDevice_st g_gpus[MAX_GPUS];
static struct nvmlDevice_st g_migs[MAX_GPUS][MAX_MIG];

static unsigned gpu_count(void) {
  return (g_layout == L_TWO_GPUS || g_layout == L_NO_POWER) ? 2u : 1u;
}
static int mig_enabled(void) { return g_layout == L_H100_MIG7; }

/* A handle this library gave out, or NULL. */
static const struct nvmlDevice_st* check(nvmlDevice_t d) {
  if (d == NULL) return NULL;
  for (int i = 0; i < MAX_GPUS; ++i) {
    if (d == &g_gpus[i]) return (unsigned)i < gpu_count() ? d : NULL;
    for (int j = 0; j < MAX_MIG; ++j)
      if (d == &g_migs[i][j]) return mig_enabled() && i == 0 ? d : NULL;
  }
  return NULL;
}

#define REQUIRE_INIT() \
  do { if (g_init_count == 0) return NVML_ERROR_UNINITIALIZED; } while (0)
#define REQUIRE_DEVICE(dev, out)                                            \
  const struct nvmlDevice_st* dev = check(device);                          \
  do {                                                                      \
    if (g_init_count == 0) return NVML_ERROR_UNINITIALIZED;                 \
    if (dev == NULL || (out) == NULL) return NVML_ERROR_INVALID_ARGUMENT;   \
  } while (0)

static nvmlReturn_t copy_string(const char* s, char* out, unsigned length) {
  if (strlen(s) + 1 > length) return NVML_ERROR_INSUFFICIENT_SIZE;
  memcpy(out, s, strlen(s) + 1);
  return NVML_SUCCESS;
}

EXPORT nvmlReturn_t nvmlInit_v2(void) {
  const char* env = getenv("FAKE_NVML_LAYOUT");
  enum layout l;
  if (env == NULL || *env == '\0' || strcmp(env, "two-gpus") == 0) l = L_TWO_GPUS;
  else if (strcmp(env, "h100-mig7") == 0) l = L_H100_MIG7;
  else if (strcmp(env, "no-power") == 0) l = L_NO_POWER;
  else if (strcmp(env, "no-mig-symbols") == 0) l = L_NO_MIG_SYMBOLS;
  else if (strcmp(env, "init-fails") == 0) return NVML_ERROR_DRIVER_NOT_LOADED;
  else return NVML_ERROR_UNKNOWN;
  g_layout = l;
  for (int i = 0; i < MAX_GPUS; ++i) {
    g_gpus[i].gpu = i;
    g_gpus[i].mig = -1;
    for (int j = 0; j < MAX_MIG; ++j) {
      g_migs[i][j].gpu = i;
      g_migs[i][j].mig = j;
    }
  }
  ++g_init_count;
  return NVML_SUCCESS;
}

EXPORT nvmlReturn_t nvmlShutdown(void) {
  REQUIRE_INIT();
  --g_init_count;
  return NVML_SUCCESS;
}

EXPORT const char* nvmlErrorString(nvmlReturn_t result) {
  switch (result) {
    case NVML_SUCCESS: return "Success";
    case NVML_ERROR_UNINITIALIZED: return "Uninitialized";
    case NVML_ERROR_INVALID_ARGUMENT: return "Invalid Argument";
    case NVML_ERROR_NOT_SUPPORTED: return "Not Supported";
    case NVML_ERROR_NO_PERMISSION: return "Insufficient Permissions";
    case NVML_ERROR_NOT_FOUND: return "Not Found";
    case NVML_ERROR_INSUFFICIENT_SIZE: return "Insufficient Size";
    case NVML_ERROR_DRIVER_NOT_LOADED: return "Driver Not Loaded";
    case NVML_ERROR_FUNCTION_NOT_FOUND: return "Function Not Found";
    default: return "Unknown Error";
  }
}

EXPORT nvmlReturn_t nvmlDeviceGetCount_v2(unsigned int* count) {
  REQUIRE_INIT();
  if (count == NULL) return NVML_ERROR_INVALID_ARGUMENT;
  *count = gpu_count();
  return NVML_SUCCESS;
}

EXPORT nvmlReturn_t nvmlDeviceGetHandleByIndex_v2(unsigned int index, nvmlDevice_t* device) {
  REQUIRE_INIT();
  if (device == NULL || index >= gpu_count()) return NVML_ERROR_INVALID_ARGUMENT;
  *device = &g_gpus[index];
  return NVML_SUCCESS;
}

static const char* gpu_name(void) {
  switch (g_layout) {
    case L_H100_MIG7: return "NVIDIA H100 80GB HBM3";
    case L_NO_MIG_SYMBOLS: return "Tesla V100-SXM2-16GB";
    default: return "NVIDIA A100-SXM4-40GB";
  }
}

EXPORT nvmlReturn_t nvmlDeviceGetName(nvmlDevice_t device, char* name, unsigned int length) {
  REQUIRE_DEVICE(d, name);
  char buf[NEOSERVE_NVML_NAME_BUFFER_SIZE];
  if (d->mig >= 0) snprintf(buf, sizeof buf, "%s MIG 1g.10gb", gpu_name());
  else snprintf(buf, sizeof buf, "%s", gpu_name());
  return copy_string(buf, name, length);
}

EXPORT nvmlReturn_t nvmlDeviceGetUUID(nvmlDevice_t device, char* uuid, unsigned int length) {
  REQUIRE_DEVICE(d, uuid);
  char buf[NEOSERVE_NVML_UUID_BUFFER_SIZE];
  if (d->mig >= 0) snprintf(buf, sizeof buf, "MIG-fa4e0000-0000-4000-8000-0000000000%d%d", d->gpu, d->mig);
  else snprintf(buf, sizeof buf, "GPU-fa4e0000-0000-4000-8000-%012d", d->gpu + (int)g_layout * 10);
  return copy_string(buf, uuid, length);
}

EXPORT nvmlReturn_t nvmlDeviceGetPciInfo_v3(nvmlDevice_t device, nvmlPciInfo_t* pci) {
  REQUIRE_DEVICE(d, pci);
  if (d->mig >= 0) return NVML_ERROR_NOT_SUPPORTED;
  memset(pci, 0, sizeof *pci);
  pci->domain = 0;
  pci->bus = 0x17 + 0x20 * (unsigned)d->gpu;
  pci->device = 0;
  pci->pciDeviceId = g_layout == L_H100_MIG7 ? 0x233010DEu : 0x20B010DEu;
  snprintf(pci->busIdLegacy, sizeof pci->busIdLegacy, "0000:%02X:00.0", pci->bus);
  snprintf(pci->busId, sizeof pci->busId, "00000000:%02X:00.0", pci->bus);
  return NVML_SUCCESS;
}

EXPORT nvmlReturn_t nvmlDeviceGetMemoryInfo(nvmlDevice_t device, nvmlMemory_t* memory) {
  REQUIRE_DEVICE(d, memory);
  unsigned long long total;
  if (d->mig >= 0) total = 9984ULL * MIB; /* 1g.10gb: ~9.75 GiB usable */
  else if (g_layout == L_H100_MIG7) total = 81559ULL * MIB;
  else if (g_layout == L_NO_MIG_SYMBOLS) total = 16384ULL * MIB;
  else total = 40960ULL * MIB;
  ++g_memory_calls;
  memory->total = total;
  memory->used = 512ULL * MIB + (unsigned long long)d->gpu * 100 * MIB + (unsigned long long)(d->mig + 1) * MIB +
                 g_memory_calls * MIB;
  if (memory->used > total) memory->used = total;
  memory->free = total - memory->used;
  return NVML_SUCCESS;
}

EXPORT nvmlReturn_t nvmlDeviceGetUtilizationRates(nvmlDevice_t device, nvmlUtilization_t* utilization) {
  REQUIRE_DEVICE(d, utilization);
  /* As real NVML: no utilization for a GPU in MIG mode or for a MIG device. */
  if (d->mig >= 0 || mig_enabled()) return NVML_ERROR_NOT_SUPPORTED;
  ++g_util_calls;
  utilization->gpu = (g_util_calls * 7u + (unsigned)d->gpu * 10u) % 101u;
  utilization->memory = (g_util_calls * 3u) % 101u;
  return NVML_SUCCESS;
}

EXPORT nvmlReturn_t nvmlDeviceGetTemperature(nvmlDevice_t device, nvmlTemperatureSensors_t sensor,
                                             unsigned int* temp) {
  REQUIRE_DEVICE(d, temp);
  if (d->mig >= 0) return NVML_ERROR_NOT_SUPPORTED;
  if (sensor != NVML_TEMPERATURE_GPU) return NVML_ERROR_INVALID_ARGUMENT;
  *temp = 35u + (unsigned)d->gpu;
  return NVML_SUCCESS;
}

EXPORT nvmlReturn_t nvmlDeviceGetPowerUsage(nvmlDevice_t device, unsigned int* power) {
  REQUIRE_DEVICE(d, power);
  if (d->mig >= 0 || g_layout == L_NO_POWER) return NVML_ERROR_NOT_SUPPORTED;
  *power = 85250u + 1000u * (unsigned)d->gpu; /* milliwatts */
  return NVML_SUCCESS;
}

EXPORT nvmlReturn_t nvmlDeviceGetEnforcedPowerLimit(nvmlDevice_t device, unsigned int* limit) {
  REQUIRE_DEVICE(d, limit);
  if (d->mig >= 0 || g_layout == L_NO_POWER) return NVML_ERROR_NOT_SUPPORTED;
  *limit = g_layout == L_H100_MIG7 ? 700000u : g_layout == L_NO_MIG_SYMBOLS ? 300000u : 400000u;
  return NVML_SUCCESS;
}

EXPORT nvmlReturn_t nvmlDeviceGetClockInfo(nvmlDevice_t device, nvmlClockType_t type, unsigned int* clock) {
  REQUIRE_DEVICE(d, clock);
  if (d->mig >= 0) return NVML_ERROR_NOT_SUPPORTED;
  const int h100 = g_layout == L_H100_MIG7;
  switch (type) {
    case NVML_CLOCK_SM: *clock = h100 ? 1980u : 1410u; return NVML_SUCCESS;
    case NVML_CLOCK_MEM: *clock = h100 ? 2619u : 1215u; return NVML_SUCCESS;
    default: return NVML_ERROR_NOT_SUPPORTED;
  }
}

#ifndef FAKE_NVML_NO_MIG
EXPORT nvmlReturn_t nvmlDeviceGetMigMode(nvmlDevice_t device, unsigned int* current_mode, unsigned int* pending_mode) {
  REQUIRE_DEVICE(d, current_mode);
  if (pending_mode == NULL) return NVML_ERROR_INVALID_ARGUMENT;
  if (d->mig >= 0 || g_layout == L_NO_MIG_SYMBOLS) return NVML_ERROR_NOT_SUPPORTED;
  *current_mode = *pending_mode = mig_enabled() ? NEOSERVE_NVML_MIG_ENABLE : NEOSERVE_NVML_MIG_DISABLE;
  return NVML_SUCCESS;
}

EXPORT nvmlReturn_t nvmlDeviceGetMaxMigDeviceCount(nvmlDevice_t device, unsigned int* count) {
  REQUIRE_DEVICE(d, count);
  if (d->mig >= 0 || g_layout == L_NO_MIG_SYMBOLS) return NVML_ERROR_NOT_SUPPORTED;
  *count = MAX_MIG;
  return NVML_SUCCESS;
}

EXPORT nvmlReturn_t nvmlDeviceGetMigDeviceHandleByIndex(nvmlDevice_t device, unsigned int index,
                                                        nvmlDevice_t* mig_device) {
  REQUIRE_DEVICE(d, mig_device);
  if (d->mig >= 0) return NVML_ERROR_INVALID_ARGUMENT;
  if (!mig_enabled()) return NVML_ERROR_NOT_SUPPORTED;
  if (index >= MAX_MIG) return NVML_ERROR_INVALID_ARGUMENT;
  *mig_device = &g_migs[d->gpu][index];
  return NVML_SUCCESS;
}

/* H100 1g.10gb GPU instances get ids 7..13 when created one by one; one compute instance each. */
EXPORT nvmlReturn_t nvmlDeviceGetGpuInstanceId(nvmlDevice_t device, unsigned int* id) {
  REQUIRE_DEVICE(d, id);
  if (d->mig < 0) return NVML_ERROR_NOT_SUPPORTED;
  *id = 7u + (unsigned)d->mig;
  return NVML_SUCCESS;
}

EXPORT nvmlReturn_t nvmlDeviceGetComputeInstanceId(nvmlDevice_t device, unsigned int* id) {
  REQUIRE_DEVICE(d, id);
  if (d->mig < 0) return NVML_ERROR_NOT_SUPPORTED;
  *id = 0;
  return NVML_SUCCESS;
}
#endif
