// tokenizer.json and tokenizer_config.json as an attacker writes them: seeded
// random mutations of the real files, each of which must build a tokenizer or
// fail with a ModelLoadError naming the file, in bounded time, never with an
// untyped error. (The native readers of model files have libFuzzer targets;
// these readers are TypeScript.)
import { describe, expect, it } from "vitest";
import { gpt2TokenizerConfig, gpt2TokenizerJson } from "../models/gpt2-tokenizer.js";
import { ModelLoadError } from "../src/errors.js";
import { TextTokenizer } from "../src/tokenizer/tokenizer.js";

type Json = Record<string, unknown>;

// A small deterministic generator, so a failure names a reproducible seed.
function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => ((s = (s * 1664525 + 1013904223) >>> 0) / 2 ** 32);
}

const hostileValues: unknown[] = [null, -1, 1e9, 2 ** 31, 1.5, Number.MAX_SAFE_INTEGER, "", "x".repeat(1000), [], {}, true, [1e9], { id: -3 }, { __proto__: 5 }];

// Where the readers make decisions: most mutations land on one of these.
// (A target an earlier mutation removed is skipped: mutateAt takes a missing node.)
const targets: { file: "tokenizer" | "config"; path: (json: Json, next: () => number) => [Json | undefined, string] }[] = [
  { file: "tokenizer", path: (j, n) => [Array.isArray(j.added_tokens) ? pick(j.added_tokens as Json[], n) : undefined, pick(["id", "content", "special"], n)] },
  { file: "tokenizer", path: (j) => [(j.model as Json | undefined)?.vocab as Json | undefined, "<|im_end|>"] },
  { file: "tokenizer", path: (j) => [(j.model as Json | undefined)?.vocab as Json | undefined, "hello"] },
  { file: "tokenizer", path: (j, n) => [j.model as Json | undefined, pick(["vocab", "merges", "type", "unk_token"], n)] },
  { file: "tokenizer", path: (j, n) => [j, pick(["added_tokens", "pre_tokenizer", "decoder", "normalizer", "post_processor", "model"], n)] },
  { file: "config", path: (j, n) => [j, pick(["chat_template", "eos_token", "bos_token", "clean_up_tokenization_spaces"], n)] },
];

function pick<T>(items: readonly T[], next: () => number): T {
  return items[Math.floor(next() * items.length)]!;
}

function mutateAt(node: Json | undefined, key: string, next: () => number): void {
  if (!node || typeof node !== "object" || Array.isArray(node)) return;
  if (next() < 0.2) delete node[key];
  else node[key] = pick(hostileValues, next);
}

// Replaces one value found by walking `json` at random (the top level, the model, its vocab, an added token, ...).
function mutate(json: Json, next: () => number): void {
  let node: unknown = json;
  for (let depth = 0; depth < 4; depth++) {
    if (node === null || typeof node !== "object") break;
    const keys = Object.keys(node as object);
    if (keys.length === 0) break;
    const key = keys[Math.floor(next() * Math.min(keys.length, 64))]!;
    const child = (node as Json)[key];
    if (depth === 3 || child === null || typeof child !== "object" || next() < 0.3) {
      const action = next();
      if (action < 0.2) delete (node as Json)[key];
      else (node as Json)[key] = hostileValues[Math.floor(next() * hostileValues.length)];
      return;
    }
    node = child;
  }
}

describe("mutated tokenizer files", () => {
  const cases = 60;
  it(`${cases} seeded mutations of tokenizer.json and tokenizer_config.json each load or fail with ModelLoadError`, () => {
    const base = JSON.stringify(gpt2TokenizerJson());
    const baseConfig = JSON.stringify(gpt2TokenizerConfig());
    const outcomes = { loaded: 0, refused: 0 };
    for (let seed = 1; seed <= cases; seed++) {
      const next = rng(seed);
      const json = JSON.parse(base) as Json;
      const config = JSON.parse(baseConfig) as Json;
      for (let m = 0; m < 1 + Math.floor(next() * 3); m++) {
        if (next() < 0.7) {
          const target = pick(targets, next);
          const [node, key] = target.path(target.file === "tokenizer" ? json : config, next);
          mutateAt(node, key, next);
        } else {
          mutate(next() < 0.75 ? json : config, next);
        }
      }
      const t0 = performance.now();
      try {
        const tok = TextTokenizer.fromJson(json, config, { source: `mutation ${seed}`, vocabLimit: 60_000 });
        tok.decode(tok.encode("Hello world"));
        outcomes.loaded++;
      } catch (e) {
        outcomes.refused++;
        if (!(e instanceof ModelLoadError) && !(e instanceof Error && e.name === "InvalidRequestError"))
          throw new Error(`seed ${seed}: untyped ${(e as Error)?.constructor?.name}: ${(e as Error)?.message}`);
        if (e instanceof ModelLoadError) expect(e.message, `seed ${seed}`).toContain(`mutation ${seed}`);
      }
      expect(performance.now() - t0, `seed ${seed}`).toBeLessThan(3000);
    }
    console.log(`tokenizer mutations: ${outcomes.loaded} loaded, ${outcomes.refused} refused with a typed error`);
    expect(outcomes.refused).toBeGreaterThan(0); // the mutations reach code that must refuse them
  });
});
