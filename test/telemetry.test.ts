// GPU telemetry from JS against the fake libnvidia-ml.so.1 the C++ build makes
// (layouts chosen by FAKE_NVML_LAYOUT, read at nvmlInit): devices, MIG
// instances, absent values, a missing NVML, sampling, and DCGM-named metrics.
import { join } from "node:path";
import parsePrometheusTextFormat from "parse-prometheus-text-format";
import { afterEach, describe, expect, it } from "vitest";
import { Runtime } from "../src/index.js";
import { hfDir, repoRoot } from "./helpers/paths.js";

const hfDirTiny = () => hfDir("tiny");

const fakeNvml = join(repoRoot, "build", "fake_nvml", "libnvidia-ml.so.1");
const runtimes: Runtime[] = [];
function runtime(layout: string, nvmlLibrary = fakeNvml): Runtime {
  process.env.FAKE_NVML_LAYOUT = layout;
  const r = new Runtime({ nvmlLibrary });
  runtimes.push(r);
  return r;
}
afterEach(async () => {
  await Promise.all(runtimes.splice(0).map((r) => r.dispose()));
});

describe("telemetry", () => {
  it("an H100 in MIG mode shows its 7 × 1g.10gb instances, with utilization absent, not zero", () => {
    const [gpu, ...rest] = runtime("h100-mig7").devices();
    expect(rest).toHaveLength(0);
    expect(gpu!.name).toMatch(/H100/);
    expect(gpu!.migMode).toBe(true);
    expect(gpu!.mig).toHaveLength(7);
    for (const m of gpu!.mig) {
      expect(m.profile).toBe("1g.10gb");
      expect(m.uuid).toMatch(/^MIG-/);
      expect(m.gpuInstanceId).toBeTypeOf("number");
      expect(m.memoryTotalBytes).toBeGreaterThan(0);
      expect(m.utilizationGpuPct).toBeUndefined();
      expect(m.absent.utilization_gpu_pct).toBeTruthy();
    }
  });

  it("two GPUs without MIG report every field", () => {
    const snap = runtime("two-gpus").telemetry();
    expect(snap.available).toBe(true);
    expect(snap.gpus).toHaveLength(2);
    for (const g of snap.gpus) {
      expect(g.migMode).toBe(false);
      for (const k of ["memoryUsedBytes", "utilizationGpuPct", "temperatureC", "powerDrawW", "powerLimitW", "smClockMhz"] as const)
        expect(g[k]).toBeTypeOf("number");
    }
    expect(snap.process.rssBytes).toBeGreaterThan(0);
  });

  it("a driver that refuses power reports power absent with the reason, and the rest present", () => {
    const [g] = runtime("no-power").devices();
    expect(g!.powerDrawW).toBeUndefined();
    expect(g!.absent.power_draw_w).toMatch(/Not Supported/);
    expect(g!.memoryUsedBytes).toBeTypeOf("number");
  });

  it("no NVML is available: false with a reason, and no crash", () => {
    const snap = runtime("two-gpus", "/nonexistent/libnvidia-ml.so.1").telemetry();
    expect(snap.available).toBe(false);
    expect(snap.reason).toMatch(/nonexistent/);
    expect(snap.gpus).toEqual([]);
    expect(snap.process.rssBytes).toBeGreaterThan(0);
  });

  it("process telemetry counts the engines' KV caches as the engine's own memory", async () => {
    const r = runtime("two-gpus");
    expect(r.telemetry().process.engineBytes).toBe(0);
    const m = await r.loadModel(hfDir("tiny"), { backend: "cpu", threads: 1 });
    expect(r.telemetry().process.engineBytes).toBe(m.info.kv.numBlocks * m.info.kv.bytesPerBlock);
    expect(r.telemetry().process.engineBytes).toBeGreaterThan(0);
  });

  it("samples arrive from the native sampler at its period", async () => {
    const r = runtime("two-gpus");
    const seen = [];
    for await (const s of r.samples(20)) {
      seen.push(s);
      if (seen.length === 3) break;
    }
    expect(seen[2]!.timestampMs).toBeGreaterThan(seen[0]!.timestampMs);
    expect(seen[2]!.gpus[0]!.memoryUsedBytes).toBeGreaterThan(seen[0]!.gpus[0]!.memoryUsedBytes!); // the fake's memory grows per read
  });

  it("GPU metrics use dcgm-exporter names and labels, per MIG instance for memory", async () => {
    const families = parsePrometheusTextFormat(await runtime("h100-mig7").metrics().metrics());
    const byName = new Map(families.map((f) => [f.name, f]));
    const fb = byName.get("DCGM_FI_DEV_FB_USED")!;
    expect(fb.type).toBe("GAUGE");
    const mig = fb.metrics.filter((s) => s.labels?.GPU_I_PROFILE === "1g.10gb");
    expect(mig).toHaveLength(7);
    expect(mig[0]!.labels!.UUID).toMatch(/^GPU-/);
    expect(mig[0]!.labels!.modelName).toMatch(/H100/);
    expect(byName.get("DCGM_FI_DEV_GPU_TEMP")!.metrics).toHaveLength(1);
    // The parent GPU of a MIG layout reports no utilization: the series is absent, not 0.
    expect(byName.get("DCGM_FI_DEV_GPU_UTIL")?.metrics ?? []).toHaveLength(0);
  });
});

describe("pools over discovered slices", () => {
  it('slices: "all" starts one worker per GPU (CPU workers here), each told its device', async () => {
    const r = runtime("two-gpus");
    const uuids = r.devices().map((g) => g.uuid);
    expect(r.allSlices()).toEqual(uuids);
    const pool = await r.pool({ model: hfDirTiny(), slices: "all", load: { backend: "cpu", threads: 1 } });
    expect(pool.stats().slices.map((s) => s.slice)).toEqual(uuids);
    expect(pool.stats().slices.map((s) => s.visibleDevices)).toEqual(uuids); // CUDA_VISIBLE_DEVICES=<uuid> per worker
    expect(pool.stats().slices.every((s) => s.backend === "cpu")).toBe(true);
    const res = await pool.generate({ tokens: [1, 2, 3], maxTokens: 4, slice: uuids[1] }).result;
    expect(res.finishReason).not.toBe("error");
  });

  it("MIG mode yields one slice per instance; no NVML is a clear error", () => {
    expect(runtime("h100-mig7").allSlices()).toHaveLength(7);
    expect(() => runtime("two-gpus", "/nonexistent/libnvidia-ml.so.1").allSlices()).toThrow(/no GPU slices/);
  });
});
