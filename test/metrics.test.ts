// The metrics endpoint text parses as Prometheus exposition format (with a
// parser, not a regex) and its numbers agree with what the engine did.
import parsePrometheusTextFormat from "parse-prometheus-text-format";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Runtime, type Model } from "../src/index.js";
import { hfDir } from "./helpers/paths.js";
import { until } from "./helpers/waiting.js";

let runtime: Runtime;
let model: Model;
beforeAll(async () => {
  runtime = new Runtime({ pricePerHour: 2.5 });
  model = await runtime.loadModel(hfDir("tiny"), { backend: "cpu", threads: 2, name: "tiny" });
});
afterAll(() => runtime.dispose());

async function scrape() {
  const families = parsePrometheusTextFormat(await runtime.metrics().metrics());
  return new Map(families.map((f) => [f.name, f]));
}

describe("engine metrics", () => {
  it("report tokens, latencies, queue, KV and cost that agree with the engine", async () => {
    const results = await Promise.all(
      Array.from({ length: 6 }, (_, i) => model.generate({ tokens: [i + 1, 2, 3], maxTokens: 10, temperature: 0, ignoreEos: true }).result),
    );
    const early = model.generate({ tokens: [1], maxTokens: 5000, ignoreEos: true });
    early.cancel();
    await early.result;
    const m = await scrape();
    const value = (name: string, labels: Record<string, string> = { model: "tiny" }) =>
      Number(m.get(name)!.metrics.find((s) => Object.entries(labels).every(([k, v]) => s.labels?.[k] === v))!.value);

    expect(m.get("neoserve_tokens_generated_total")!.type).toBe("COUNTER");
    expect(value("neoserve_tokens_generated_total")).toBe(model.stats().tokensGenerated);
    expect(value("neoserve_tokens_generated_total")).toBeGreaterThanOrEqual(results.reduce((n, r) => n + r.tokens.length, 0));
    expect(value("neoserve_requests_ended_early_total", { model: "tiny", reason: "cancelled" })).toBe(1);
    expect(value("neoserve_queue_length")).toBe(0);
    expect(value("neoserve_kv_blocks_used")).toBe(0);
    expect(value("neoserve_kv_blocks_free")).toBe(model.info.kv.numBlocks);

    const ttft = m.get("neoserve_time_to_first_token_ms")!;
    expect(ttft.type).toBe("HISTOGRAM");
    // A histogram's +Inf bucket is its count of observations.
    const count = (name: string) => Number(m.get(name)!.metrics[0]!.buckets!["+Inf"]);
    expect(count("neoserve_time_to_first_token_ms")).toBeGreaterThanOrEqual(6);
    expect(count("neoserve_end_to_end_latency_ms")).toBe(6); // only requests that finished
    expect(count("neoserve_inter_token_latency_ms")).toBeGreaterThanOrEqual(6 * 9);

    // Every step is one observation of each batch histogram; their sums are the steps' sizes.
    expect(count("neoserve_batch_size")).toBe(model.stats().steps);
    expect(count("neoserve_batch_tokens")).toBe(model.stats().steps);
    expect(Number(m.get("neoserve_batch_size")!.metrics[0]!.buckets!["1"])).toBeLessThan(model.stats().steps); // 6 requests shared steps

    expect(value("neoserve_cost_per_1k_tokens")).toBeGreaterThan(0);
    expect(value("neoserve_cost_per_request")).toBeGreaterThan(0);
    // A model's own price overrides the runtime's: a slice priced at 0 costs nothing.
    const slice = await runtime.loadModel(hfDir("tiny"), { backend: "cpu", threads: 1, name: "slice", pricePerHour: 0 });
    await slice.generate({ tokens: [1], maxTokens: 4, ignoreEos: true }).result;
    const priced = await scrape();
    const costOf = (model: string) => Number(priced.get("neoserve_cost_per_request")!.metrics.find((s) => s.labels?.model === model)!.value);
    expect(costOf("slice")).toBe(0);
    expect(costOf("tiny")).toBeGreaterThan(0);
  });

  it("requests ended by a stop string are completions, not cancellations", async () => {
    const stopper = await runtime.loadModel(hfDir("tiny"), { backend: "cpu", threads: 1, name: "stopper" });
    const prompts = [[5, 6, 7], [8, 9], [10, 11, 12], [13]];
    for (const tokens of prompts) {
      const free = await stopper.generate({ tokens, maxTokens: 16, temperature: 0, ignoreEos: true }).result;
      const stop = free.text.slice(4, 7); // text the greedy run produces, so this run meets it
      expect(stop.length).toBeGreaterThan(0);
      const r = await stopper.generate({ tokens, maxTokens: 16, temperature: 0, ignoreEos: true, stop }).result;
      expect(r.finishReason).toBe("stop");
      expect(r.text).toBe(free.text.slice(0, free.text.indexOf(stop)));
    }
    // Every stop has reached the scheduler thread once nothing is running or waiting there.
    await until(() => stopper.stats().running + stopper.stats().waiting === 0, 5000);
    expect(stopper.stats().endedEarly.cancelled).toBe(0);
    const m = await scrape();
    const cancelled = m.get("neoserve_requests_ended_early_total")!.metrics.find((s) => s.labels?.model === "stopper" && s.labels?.reason === "cancelled");
    expect(Number(cancelled?.value ?? 0)).toBe(0);
  });

  it("counters never go down across scrapes", async () => {
    const first = await scrape();
    await model.generate({ tokens: [7], maxTokens: 5, temperature: 0, ignoreEos: true }).result;
    const second = await scrape();
    const total = (m: Map<string, { metrics: { value: string }[] }>) => Number(m.get("neoserve_tokens_generated_total")!.metrics[0]!.value);
    expect(total(second) - total(first)).toBe(5);
  });
});
