// One engine face: code written against Engine runs a Model and a ModelPool
// alike, and both reject the same requests with the same typed errors.
import { readFileSync } from "node:fs";
import { mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { addon } from "../src/addon.js";
import {
  InvalidRequestError,
  loadModel,
  ModelDisposedError,
  ModelPool,
  NATIVE_ERROR_CODES,
  type Engine,
  type FinishReason,
  type GenerateRequest,
  type LoadOptions,
  type Model,
} from "../src/index.js";
import { ggufFile, hfDir, repoRoot } from "./helpers/paths.js";

let model: Model;
let pool: ModelPool;
beforeAll(async () => {
  model = await loadModel(hfDir("tiny"), { backend: "cpu", threads: 1 });
  pool = await ModelPool.start({ model: hfDir("tiny"), slices: 1, load: { backend: "cpu", threads: 1 } });
});
afterAll(async () => {
  await model.dispose();
  await pool.dispose();
});

// Written against the interface only: what a server or router does with any engine.
async function complete(engine: Engine, request: GenerateRequest, read: "iterate" | "listen") {
  const stream = engine.generate(request);
  const texts: string[] = [];
  if (read === "iterate") for await (const t of stream) texts.push(t.text);
  else stream.onToken((t) => texts.push(t.text));
  const result = await stream.result;
  expect(texts.join("")).toBe(result.text);
  return result;
}

describe("Model and ModelPool are both an Engine", () => {
  const engines = () => [
    ["model", model],
    ["pool", pool],
  ] as const;

  it("describe the same model and stream the same tokens, read either way", async () => {
    expect(pool.info.config).toEqual(model.info.config);
    const request = { prompt: "Once upon a time", maxTokens: 12, temperature: 0.8, seed: 3 };
    const fromModel = await complete(model, request, "iterate");
    for (const [, engine] of engines()) {
      for (const read of ["iterate", "listen"] as const) {
        const r = await complete(engine, request, read);
        expect(r.tokens).toEqual(fromModel.tokens);
        expect(r.usage).toEqual(fromModel.usage);
      }
    }
    expect(pool.stats().inFlight).toBe(0);
    expect(model.stats().inFlight).toBe(0);
  });

  it("give the same log probabilities, streamed and in the result", async () => {
    const request = { prompt: "Once upon a time", maxTokens: 6, temperature: 0.8, seed: 5, logprobs: 3 };
    const fromModel = await model.generate(request).result;
    const stream = pool.generate(request);
    const streamed = [];
    for await (const t of stream) streamed.push(t.logprob);
    const fromPool = await stream.result;
    expect(fromModel.logprobs).toHaveLength(6);
    expect(fromPool.logprobs).toEqual(fromModel.logprobs);
    expect(streamed).toEqual(fromModel.logprobs);
    expect(fromPool.tokens).toEqual(fromModel.tokens);
  });

  it("throw the same typed error, with the same message, for each malformed request", () => {
    const bad: GenerateRequest[] = [
      { maxTokens: 4 },
      { prompt: "a", tokens: [1] },
      { tokens: [model.info.vocabSize] },
      { tokens: [1.5] },
      { prompt: "a", maxTokens: 0 },
      { prompt: "a", temperature: -1 },
      { prompt: "a", topP: 2 },
      { prompt: "a", stop: [""] },
      { prompt: "a", stopTokenIds: [-1] },
      { prompt: "a", seed: -3 },
      { tokens: Array.from({ length: model.info.maxContext }, () => 1) },
      { messages: [{ role: "user" } as never] },
      { prompt: "a", temperature: -1, signal: AbortSignal.abort() }, // aborted, but still checked
      { tokens: [1, 2], temperature: -1, signal: AbortSignal.abort() }, // ids too: never submitted, checked all the same
      { tokens: [1, 2], topP: 2 },
    ];
    for (const request of bad) {
      const thrown = engines().map(([, engine]) => {
        try {
          engine.generate(request);
        } catch (e) {
          return e as Error;
        }
        return undefined;
      });
      expect(thrown[0], JSON.stringify(request)).toBeInstanceOf(InvalidRequestError);
      expect(thrown[1]?.constructor, JSON.stringify(request)).toBe(thrown[0]!.constructor);
      expect(thrown[1]!.message).toBe(thrown[0]!.message);
    }
  });

  it("take the documented defaults from native code: 128 tokens, and a stop at the model's EOS unless ignored", async () => {
    for (const [, engine] of engines()) {
      const r = await engine.generate({ tokens: [1, 2], temperature: 0, ignoreEos: true }).result;
      expect(r.finishReason).toBe("length");
      expect(r.tokens).toHaveLength(addon().defaultMaxTokens);
    }
    // What src/types.ts tells users is the native default.
    const types = readFileSync(join(repoRoot, "src", "types.ts"), "utf8");
    expect(Number(/\/\*\* Default (\d+)\. \*\/\s*maxTokens\?:/.exec(types)![1])).toBe(addon().defaultMaxTokens);
  });

  it("stop at the EOS ids of generation_config.json, read by native code, unless the request ignores them", async () => {
    const greedy = await model.generate({ tokens: [1, 2], maxTokens: 3, temperature: 0, ignoreEos: true }).result;
    const second = greedy.tokens[1]!;
    // The tiny checkpoint beside a generation_config.json that makes its second greedy token an end of sequence.
    const dir = await mkdtemp(join(tmpdir(), "neoserve-eos-"));
    try {
      for (const f of ["config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"]) await symlink(join(hfDir("tiny"), f), join(dir, f));
      await writeFile(join(dir, "generation_config.json"), JSON.stringify({ eos_token_id: [second] }));
      const withEos = await loadModel(dir, { backend: "cpu", threads: 1 });
      try {
        expect(withEos.info.config.eosTokenIds).toContain(second);
        const stopped = await withEos.generate({ tokens: [1, 2], maxTokens: 3, temperature: 0 }).result;
        expect(stopped.finishReason).toBe("stop");
        expect(stopped.tokens).toEqual(greedy.tokens.slice(0, 2));
        const ignored = await withEos.generate({ tokens: [1, 2], maxTokens: 3, temperature: 0, ignoreEos: true }).result;
        expect(ignored.tokens).toEqual(greedy.tokens);
      } finally {
        await withEos.dispose();
      }
      // An id the vocabulary does not have is the file's error, named, at load.
      await writeFile(join(dir, "generation_config.json"), JSON.stringify({ eos_token_id: [2, model.info.vocabSize] }));
      await expect(loadModel(dir, { backend: "cpu", threads: 1 })).rejects.toThrow(/generation_config\.json: eos_token_id \d+ outside the vocabulary/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("end a request aborted before it starts as cancelled, with the same result on either engine", async () => {
    const results = [];
    for (const [, engine] of engines()) {
      const r = await engine.generate({ prompt: "Once upon", maxTokens: 4, signal: AbortSignal.abort() }).result;
      expect(r.finishReason).toBe("cancelled" satisfies FinishReason);
      results.push({ error: r.error, usage: r.usage, tokens: r.tokens });
    }
    expect(results[1]).toEqual(results[0]);
    expect(results[0]!.usage.promptTokens).toBe(0); // never tokenized, never run
  });
});

describe("a pool's load failures keep the class and code a Model's have", () => {
  it.each<[string, { model: string; load?: LoadOptions }]>([
    ["a missing model", { model: "/nonexistent/model" }],
    ["an option out of range", { model: hfDir("tiny"), load: { threads: -1 } }],
    ["a GGUF with an unknown option value", { model: ggufFile("tiny"), load: { precision: "int3" as never } }],
  ])("%s", async (_what, options) => {
    const direct = await loadModel(options.model, options.load).then(
      () => undefined,
      (e: unknown) => e as Error & { code: string },
    );
    const pooled = await ModelPool.start({ slices: 1, ...options }).then(
      () => undefined,
      (e: unknown) => e as Error & { code: string },
    );
    expect(direct).toBeDefined();
    expect(pooled?.constructor).toBe(direct!.constructor);
    expect(pooled!.code).toBe(direct!.code);
  });
});

describe("error codes and finish reasons cross the addon by name", () => {
  it("native code and src/errors.ts list the same error codes, in the same order", () => {
    expect(addon().errorCodes).toEqual([...NATIVE_ERROR_CODES]);
  });

  it("every native finish reason is a FinishReason", () => {
    const known: (FinishReason | "none")[] = ["none", "stop", "length", "cancelled", "error", "deadline_exceeded", "queue_timeout", "deadline_unmeetable"];
    expect(addon().finishReasons).toEqual(known);
  });

  it("a disposed model and a disposed pool both throw ModelDisposedError", async () => {
    const m = await loadModel(hfDir("tiny"), { backend: "cpu", threads: 1 });
    await m.dispose();
    expect(() => m.generate({ prompt: "x" })).toThrow(ModelDisposedError);
    const p = await ModelPool.start({ model: hfDir("tiny"), slices: 1, load: { backend: "cpu", threads: 1 } });
    await p.dispose();
    expect(() => p.generate({ prompt: "x" })).toThrow(ModelDisposedError);
  });
});
