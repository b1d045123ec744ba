/**
 * The process-wide entry point: loads models and pools, connects remote
 * backends, builds routers over them, reads GPU telemetry (NVML through
 * dlopen), and exposes it all as one Prometheus registry.
 */
import { Registry } from "prom-client";
import { addon, type GpuTelemetry, type RawTelemetry, type TelemetrySnapshot } from "./addon.js";
import { ProviderUnavailableError } from "./errors.js";
import { registerGpuMetrics } from "./metrics/gpu-metrics.js";
import { EngineMetrics, type CostOptions } from "./metrics/engine-metrics.js";
import { loadModel, type LoadOptions, type Model } from "./model.js";
import { RouterMetrics } from "./metrics/router-metrics.js";
import { ModelPool, type PoolOptions } from "./pool/pool.js";
import { RemoteBackend, type RemoteBackendOptions } from "./router/remote-backend.js";
import { Router, type RouterOptions } from "./router/router.js";

export interface RuntimeOptions extends CostOptions {
  /** Path of libnvidia-ml.so.1 (default: $NEOSERVE_NVML_LIBRARY, else the system's). */
  nvmlLibrary?: string;
}

export class Runtime {
  private readonly registry = new Registry();
  private readonly engine: EngineMetrics;
  private readonly models = new Set<Model>();
  private readonly pools = new Set<ModelPool>();
  private readonly remotes = new Set<RemoteBackend>();
  private readonly routers = new Set<Router>();
  private routing: RouterMetrics | undefined;

  private readonly nvml: RawTelemetry;
  private readonly sampleListeners = new Set<(s: TelemetrySnapshot) => void>();

  constructor(options: RuntimeOptions = {}) {
    this.engine = new EngineMetrics(this.registry, options);
    this.nvml = new (addon().TelemetryHandle)(options.nvmlLibrary);
    registerGpuMetrics(this.registry, () => this.telemetry());
  }

  /** Device ids for CUDA_VISIBLE_DEVICES: MIG-<uuid> per instance of a MIG-mode GPU, GPU-<uuid> otherwise. */
  allSlices(): string[] {
    const snap = this.telemetry();
    if (!snap.available) throw new ProviderUnavailableError(`no GPU slices to pool: ${snap.reason}`);
    const slices = snap.gpus.flatMap((g) => (g.migMode ? g.mig.map((m) => m.uuid) : [g.uuid]));
    if (slices.length === 0) throw new ProviderUnavailableError("no GPU slices to pool: NVML reports no GPU");
    return slices;
  }

  /** GPUs and their MIG instances, as NVML reports them ([] without NVML). */
  devices(): GpuTelemetry[] {
    return this.telemetry().gpus;
  }

  /** A snapshot now: GPUs (absent values stay absent), MIG instances, this process. */
  telemetry(): TelemetrySnapshot {
    return this.nvml.snapshot(this.engineBytes());
  }

  /** What the loaded models' engines hold: their KV caches (weights are mapped from their files). */
  private engineBytes(): number {
    let bytes = 0;
    for (const m of this.models) if (!m.isDisposed) bytes += m.info.kv.numBlocks * m.info.kv.bytesPerBlock;
    return bytes;
  }

  /**
   * Samples every `periodMs` (the first iterator's period sets it for all),
   * read on a native thread, until the loop ends (break or return stops the
   * sampler once no other loop uses it).
   */
  async *samples(periodMs = 1000): AsyncGenerator<TelemetrySnapshot> {
    const queue: TelemetrySnapshot[] = [];
    let wake: (() => void) | undefined;
    const listener = (s: TelemetrySnapshot) => {
      queue.push(s);
      wake?.();
    };
    this.sampleListeners.add(listener);
    if (this.sampleListeners.size === 1)
      this.nvml.startSampler(periodMs, (s) => {
        for (const l of this.sampleListeners) l(s);
      });
    try {
      for (;;) {
        while (queue.length) yield queue.shift()!;
        await new Promise<void>((r) => (wake = r));
      }
    } finally {
      this.sampleListeners.delete(listener);
      if (this.sampleListeners.size === 0) this.nvml.close();
    }
  }

  /**
   * loadModel(), with the model's metrics reported under `name` (default: its
   * path); `pricePerHour` overrides the runtime's for this model (a slice's price).
   */
  async loadModel(path: string, options: LoadOptions & { name?: string; pricePerHour?: number } = {}): Promise<Model> {
    const { name, pricePerHour, ...load } = options;
    const model = await loadModel(path, load);
    this.models.add(model);
    this.engine.track(model, name ?? path, pricePerHour);
    return model;
  }

  /**
   * One worker process per slice, behind one generate(). `slices: "all"`
   * takes every MIG instance of GPUs in MIG mode and every other GPU whole.
   */
  async pool(options: Omit<PoolOptions, "slices"> & { slices: PoolOptions["slices"] | "all" }): Promise<ModelPool> {
    const slices = options.slices === "all" ? this.allSlices() : options.slices;
    const pool = await ModelPool.start({ ...options, slices });
    this.pools.add(pool);
    return pool;
  }

  /** Another OpenAI-compatible server as an Engine; it is health-checked once before this returns. */
  async remote(options: RemoteBackendOptions): Promise<RemoteBackend> {
    const remote = new RemoteBackend(options);
    this.remotes.add(remote);
    await remote.checkHealth();
    return remote;
  }

  /** A router over backends (this runtime's or the caller's); each request's route is counted in neoserve_routed_total. */
  router(options: RouterOptions): Router {
    this.routing ??= new RouterMetrics(this.registry);
    const metrics = this.routing;
    const router = new Router({
      ...options,
      onRouted: (route, result) => {
        metrics.observe(route);
        options.onRouted?.(route, result);
      },
      onShadow: (report) => {
        metrics.shadow(report);
        options.onShadow?.(report);
      },
    });
    this.routers.add(router);
    return router;
  }

  /** The Prometheus registry: `await runtime.metrics().metrics()` is the exposition text. */
  metrics(): Registry {
    return this.registry;
  }

  async dispose(): Promise<void> {
    await Promise.all([...this.routers].map((r) => r.dispose()));
    this.routers.clear();
    await Promise.all([...this.remotes].map((r) => r.dispose()));
    this.remotes.clear();
    await Promise.all([...this.models].map((m) => m.dispose()));
    this.models.clear();
    await Promise.all([...this.pools].map((p) => p.dispose()));
    this.pools.clear();
    this.nvml.close();
  }
}
