// Load options are defined once, in native/core/options.h: every knob's range
// is enforced with a typed error naming it, and what src/addon.ts documents
// (names, defaults) is what the native table says.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { addon, type RawLoadOptions, type RawOptionDescription } from "../src/addon.js";
import { InvalidRequestError, loadModel, OutOfMemoryError } from "../src/index.js";
import { hfDir, repoRoot } from "./helpers/paths.js";

const table = addon().optionTable();

// The doc comment above each field of RawLoadOptions in src/addon.ts.
function documentedFields(): Map<string, string> {
  const source = readFileSync(join(repoRoot, "src", "addon.ts"), "utf8");
  const body = /export interface RawLoadOptions \{([\s\S]*?)\n\}/.exec(source)![1]!;
  const fields = new Map<string, string>();
  for (const m of body.matchAll(/\/\*\*([\s\S]*?)\*\/\s*(\w+)\?:/g)) fields.set(m[2]!, m[1]!);
  return fields;
}

const load = (options: Partial<RawLoadOptions>) => loadModel(hfDir("tiny"), { backend: "cpu", threads: 1, scheduler: options });
const loadWith = (o: RawOptionDescription, value: unknown) =>
  ["backend", "precision", "threads", "device", "memoryLimitBytes", "weightCacheCheck"].includes(o.name)
    ? loadModel(hfDir("tiny"), { [o.name]: value } as never)
    : load({ [o.name]: value } as never);

describe("the load options table", () => {
  it("lists exactly the options src/addon.ts declares, and each documented default is the native one", () => {
    const docs = documentedFields();
    expect([...docs.keys()].sort()).toEqual(table.map((o) => o.name).sort());
    for (const o of table) {
      const doc = docs.get(o.name)!;
      const stated = /Default (?:"([^"]*)"|(-?\d+))/.exec(doc);
      if (o.kind === "text") continue; // device: "" = the first, said in words
      expect(stated, `${o.name}'s doc comment states its default`).not.toBeNull();
      expect(stated![1] ?? Number(stated![2]), o.name).toEqual(o.default);
    }
  });

  it("gives every numeric option a range that holds its default", () => {
    for (const o of table.filter((o) => o.kind !== "text" && o.kind !== "choice")) {
      expect(o.min, o.name).toBeLessThanOrEqual(o.default as number);
      expect(o.max, o.name).toBeGreaterThanOrEqual(o.default as number);
    }
    for (const o of table.filter((o) => o.kind === "choice")) expect(o.choices, o.name).toContain(o.default);
  });

  for (const o of table.filter((o) => o.kind !== "text")) {
    it(`${o.name}: values outside its range are an InvalidRequestError naming it`, async () => {
      const bad: unknown[] =
        o.kind === "choice"
          ? ["nope", 3]
          : [o.min! - 1, o.max! + (o.kind === "number" ? o.max! : 1), Number.NaN, "12", ...(o.kind === "number" ? [] : [o.min! + 0.5])];
      for (const value of bad) {
        const err = await loadWith(o, value).then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(err, `${o.name} = ${String(value)}`).toBeInstanceOf(InvalidRequestError);
        expect((err as Error).message).toContain(o.name);
      }
    });
  }

  it("accepts the bounds of the scheduler's ranges", async () => {
    for (const name of ["maxBatchSize", "maxBatchTokens", "kvBlockSize", "maxQueueSize", "maxQueueDelayMs", "itlCapMs"] as const) {
      const o = table.find((t) => t.name === name)!;
      for (const value of [o.min!, o.max!]) {
        const model = await load({ [name]: value });
        expect(model.info.backend).toBe("cpu");
        await model.dispose();
      }
    }
  });

  it("a KV cache that cannot be allocated is an OutOfMemoryError", async () => {
    await expect(load({ kvMemoryBytes: 2 ** 52 })).rejects.toBeInstanceOf(OutOfMemoryError);
  });
});

describe("working memory is planned and checked at load, before it is allocated", () => {
  const loadLimited = (memoryLimitBytes: number, scheduler: Partial<RawLoadOptions> = {}) =>
    loadModel(hfDir("tiny"), { backend: "cpu", threads: 1, memoryLimitBytes, scheduler });

  it("reports the plan: weights, KV cache and step scratch", async () => {
    const m = await loadModel(hfDir("tiny"), { backend: "cpu", threads: 1 });
    const { weightsBytes, kvBytes, scratchBytes } = m.info.memory;
    await m.dispose();
    expect(weightsBytes).toBeGreaterThan(0.9 * 27_000_000); // the tiny f32 checkpoint's ~27 MB of tensors
    expect(weightsBytes).toBeLessThan(28_000_000);
    expect(kvBytes).toBe(m.info.kv.numBlocks * m.info.kv.bytesPerBlock);
    expect(scratchBytes).toBeGreaterThan(0);
    expect(scratchBytes).toBeLessThan(weightsBytes); // one step of 512 tokens on a tiny model
  });

  it("an fp16 KV cache holds twice the positions in the same bytes, and generates", async () => {
    const kv = { kvMemoryBytes: 4 << 20 };
    const f32 = await loadModel(hfDir("tiny"), { backend: "cpu", threads: 1, scheduler: kv });
    const f16 = await loadModel(hfDir("tiny"), { backend: "cpu", threads: 1, scheduler: { ...kv, kvCacheDtype: "f16" } });
    try {
      expect(f16.info.kv.bytesPerBlock * 2).toBe(f32.info.kv.bytesPerBlock);
      expect(f16.info.kv.numBlocks).toBe(2 * f32.info.kv.numBlocks);
      const request = { tokens: [5, 6, 7, 8], maxTokens: 12, temperature: 0, ignoreEos: true };
      const [a, b] = [await f32.generate(request).result, await f16.generate(request).result];
      expect(b.tokens).toHaveLength(12);
      expect(b.tokens.slice(0, 4)).toEqual(a.tokens.slice(0, 4)); // greedy: fp16 keys and values barely move the logits
    } finally {
      await f32.dispose();
      await f16.dispose();
    }
    await expect(loadModel(hfDir("tiny"), { scheduler: { kvCacheDtype: "bf16" as never } })).rejects.toThrow(/kvCacheDtype/);
  });

  it.each([
    ["weights larger than the limit", 1 << 20, {}, /weights \d+.*memoryLimitBytes allows 1048576 bytes/],
    ["a KV cache larger than the limit", 60 << 20, { kvMemoryBytes: 64 << 20 }, /KV cache 6\d{7} from kvMemoryBytes/],
  ])("%s is an OutOfMemoryError naming the parts", async (_what, limit, scheduler, message) => {
    const attempt = loadLimited(limit, scheduler);
    await expect(attempt).rejects.toBeInstanceOf(OutOfMemoryError);
    await expect(attempt).rejects.toThrow(message);
  });

  it("steps of maxBatchTokens whose scratch does not fit beside the model are refused, naming maxBatchTokens", async () => {
    const probe = await loadModel(hfDir("tiny"), { backend: "cpu", threads: 1 });
    const { weightsBytes, kvBytes, scratchBytes } = probe.info.memory;
    await probe.dispose();
    const limit = weightsBytes + kvBytes + scratchBytes + (1 << 20); // room for the default 512-token steps, not 2^20
    const fits = await loadLimited(limit);
    await fits.dispose();
    const attempt = loadLimited(limit, { maxBatchTokens: 1 << 20 });
    await expect(attempt).rejects.toBeInstanceOf(OutOfMemoryError);
    await expect(attempt).rejects.toThrow(/for maxBatchTokens 1048576/);
  });
});
