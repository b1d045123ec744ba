/**
 * GPU metrics named as dcgm-exporter names them (DCGM_FI_DEV_*), with its
 * labels (gpu, UUID, modelName, GPU_I_ID, GPU_I_PROFILE), read from the latest
 * telemetry at scrape time. A value NVML does not give is not exported.
 */
import { Gauge, type Registry } from "prom-client";
import type { TelemetrySnapshot } from "../addon.js";

type Labels = "gpu" | "UUID" | "modelName" | "GPU_I_ID" | "GPU_I_PROFILE";

export function registerGpuMetrics(registry: Registry, latest: () => TelemetrySnapshot): void {
  const defs: [string, string, (g: TelemetrySnapshot["gpus"][number]) => number | undefined][] = [
    ["DCGM_FI_DEV_GPU_UTIL", "GPU utilization (in %)", (g) => g.utilizationGpuPct],
    ["DCGM_FI_DEV_FB_USED", "Framebuffer memory used (in MiB)", (g) => mib(g.memoryUsedBytes)],
    ["DCGM_FI_DEV_FB_FREE", "Framebuffer memory free (in MiB)", (g) => mib(g.memoryFreeBytes)],
    ["DCGM_FI_DEV_POWER_USAGE", "Power draw (in W)", (g) => g.powerDrawW],
    ["DCGM_FI_DEV_GPU_TEMP", "GPU temperature (in C)", (g) => g.temperatureC],
    ["DCGM_FI_DEV_SM_CLOCK", "SM clock frequency (in MHz)", (g) => g.smClockMhz],
    ["DCGM_FI_DEV_MEM_CLOCK", "Memory clock frequency (in MHz)", (g) => g.memClockMhz],
  ];
  for (const [name, help, read] of defs) {
    const gauge: Gauge<Labels> = new Gauge({
      name,
      help,
      labelNames: ["gpu", "UUID", "modelName", "GPU_I_ID", "GPU_I_PROFILE"],
      registers: [registry],
      collect: () => {
        gauge.reset();
        for (const g of latest().gpus) {
          const base = { gpu: String(g.index), UUID: g.uuid, modelName: g.name };
          const v = read(g);
          if (v !== undefined) gauge.set({ ...base, GPU_I_ID: "", GPU_I_PROFILE: "" }, v);
          if (name !== "DCGM_FI_DEV_FB_USED" && name !== "DCGM_FI_DEV_FB_FREE") continue;
          // Per MIG instance, NVML gives memory only (no utilization, power or clocks).
          for (const m of g.mig) {
            const mv = name === "DCGM_FI_DEV_FB_USED" ? mib(m.memoryUsedBytes) : mib(m.memoryFreeBytes);
            if (mv !== undefined)
              gauge.set({ ...base, GPU_I_ID: String(m.gpuInstanceId ?? ""), GPU_I_PROFILE: m.profile }, mv);
          }
        }
      },
    });
  }
}

function mib(bytes: number | undefined): number | undefined {
  return bytes === undefined ? undefined : bytes / 2 ** 20;
}
