/**
 * The process-wide entry point: loads models and pools, and exposes their
 * metrics as one Prometheus registry.
 */
import { Registry } from "prom-client";
import { EngineMetrics, type CostOptions } from "./metrics/engine-metrics.js";
import { loadModel, type LoadOptions, type Model } from "./model.js";
import { ModelPool, type PoolOptions } from "./pool/pool.js";

export interface RuntimeOptions extends CostOptions {}

export class Runtime {
  private readonly registry = new Registry();
  private readonly engine: EngineMetrics;
  private readonly models = new Set<Model>();
  private readonly pools = new Set<ModelPool>();

  constructor(options: RuntimeOptions = {}) {
    this.engine = new EngineMetrics(this.registry, options);
  }

  /** loadModel(), with the model's metrics reported under `name` (default: its path). */
  async loadModel(path: string, options: LoadOptions & { name?: string } = {}): Promise<Model> {
    const { name, ...load } = options;
    const model = await loadModel(path, load);
    this.models.add(model);
    this.engine.track(model, name ?? path);
    return model;
  }

  /** One worker process per slice, behind one generate(). */
  async pool(options: PoolOptions): Promise<ModelPool> {
    const pool = await ModelPool.start(options);
    this.pools.add(pool);
    return pool;
  }

  /** The Prometheus registry: `await runtime.metrics().metrics()` is the exposition text. */
  metrics(): Registry {
    return this.registry;
  }

  async dispose(): Promise<void> {
    await Promise.all([...this.models].map((m) => m.dispose()));
    this.models.clear();
    await Promise.all([...this.pools].map((p) => p.dispose()));
    this.pools.clear();
  }
}
