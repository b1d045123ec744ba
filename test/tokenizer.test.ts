import { mkdtempSync, writeFileSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { encode as referenceEncode, decode as referenceDecode } from "gpt-3-encoder";
import { beforeAll, describe, expect, it } from "vitest";
import {
  GPT2_EOT_ID,
  IM_END_ID,
  IM_START_ID,
  GPT2_VOCAB_SIZE,
  gpt2GgufTokenizer,
  gpt2TokenizerConfig,
  gpt2TokenizerJson,
} from "../models/gpt2-tokenizer.js";
import { InvalidRequestError, ModelLoadError } from "../src/errors.js";
import { TextTokenizer, ggufToTokenizerJson } from "../src/tokenizer/tokenizer.js";
import { hfDir } from "./helpers/paths.js";
import { SAMPLE_TEXTS } from "./helpers/sample-texts.js";



let tok: TextTokenizer;
beforeAll(() => {
  tok = TextTokenizer.fromJson(gpt2TokenizerJson(), gpt2TokenizerConfig());
});

describe("TextTokenizer (GPT-2 tokenizer.json)", () => {
  it("encodes 'Hello world' as GPT-2 does", () => {
    expect(tok.encode("Hello world")).toEqual([15496, 995]);
    expect(tok.encode("Hello world", { addSpecialTokens: false })).toEqual([15496, 995]);
  });

  it("has GPT-2's special tokens and sizes", () => {
    expect(tok.vocabSize).toBe(GPT2_VOCAB_SIZE);
    expect(tok.bosTokenId).toBe(GPT2_EOT_ID);
    expect(tok.eosTokenIds).toEqual([GPT2_EOT_ID]);
    expect(tok.isSpecialToken(IM_START_ID)).toBe(true);
    expect(tok.isSpecialToken(15496)).toBe(false);
    expect(tok.idToToken(995)).toBe("Ġworld");
    expect(tok.tokenToId("Hello")).toBe(15496);
  });

  it("matches gpt-3-encoder's encode() on every sample", () => {
    for (const text of SAMPLE_TEXTS) expect(tok.encode(text), JSON.stringify(text)).toEqual(referenceEncode(text));
  });

  it("round-trips every sample and agrees with gpt-3-encoder's decode()", () => {
    for (const text of SAMPLE_TEXTS) {
      const ids = tok.encode(text);
      expect(tok.decode(ids), JSON.stringify(text)).toBe(text);
      expect(tok.decode(ids)).toBe(referenceDecode(ids));
    }
  });

  it("encodes special-token text as one id and can skip it when decoding", () => {
    const ids = tok.encode("<|im_start|>user\nHi<|im_end|>\n");
    expect(ids[0]).toBe(IM_START_ID);
    expect(ids).toContain(IM_END_ID);
    expect(ids).toEqual([IM_START_ID, ...tok.encode("user\nHi"), IM_END_ID, ...tok.encode("\n")]);
    expect(tok.decode(ids)).toBe("<|im_start|>user\nHi<|im_end|>\n");
    expect(tok.decode(ids, { skipSpecialTokens: true })).toBe("user\nHi\n");
    expect(tok.decode([GPT2_EOT_ID], { skipSpecialTokens: true })).toBe("");
  });

  it("decodes the empty list and rejects ids outside the vocabulary", () => {
    expect(tok.decode([])).toBe("");
    expect(() => tok.decode([GPT2_VOCAB_SIZE])).toThrow(InvalidRequestError);
    expect(() => tok.decode([-1])).toThrow(/outside the vocabulary/);
    expect(() => tok.decode([1.5])).toThrow(InvalidRequestError);
  });

  it("decodes a lone byte token of a multi-byte character as U+FFFD", () => {
    const ids = tok.encode("😀");
    expect(ids.length).toBeGreaterThan(1);
    expect(tok.decode(ids.slice(0, 1))).toContain("\uFFFD");
  });
});

describe("TextTokenizer.fromModelPath", () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "neoserve-tok-"));
    mkdirSync(join(dir, "hf"));
    writeFileSync(join(dir, "hf", "tokenizer.json"), JSON.stringify(gpt2TokenizerJson()));
    writeFileSync(join(dir, "hf", "tokenizer_config.json"), JSON.stringify(gpt2TokenizerConfig()));
    writeFileSync(join(dir, "hf", "generation_config.json"), JSON.stringify({ eos_token_id: [GPT2_EOT_ID, IM_END_ID] }));
    mkdirSync(join(dir, "gguf-only"));
    writeFileSync(join(dir, "gguf-only", "model.gguf"), "not read by the tokenizer");
    mkdirSync(join(dir, "gguf-beside"));
    writeFileSync(join(dir, "gguf-beside", "model.gguf"), "not read by the tokenizer");
    writeFileSync(join(dir, "gguf-beside", "tokenizer.json"), JSON.stringify(gpt2TokenizerJson()));
    mkdirSync(join(dir, "empty"));
    mkdirSync(join(dir, "bad"));
    writeFileSync(join(dir, "bad", "tokenizer.json"), "{ not json");
  });

  it("loads a Hugging Face directory with its configs", async () => {
    const t = await TextTokenizer.fromModelPath(join(dir, "hf"));
    expect(t.encode("Hello world")).toEqual([15496, 995]);
    expect(t.eosTokenIds).toEqual([GPT2_EOT_ID, IM_END_ID]);
    expect(t.chatTemplate).toContain("<|im_start|>");
  });

  it("loads a tokenizer.json path directly", async () => {
    const t = await TextTokenizer.fromModelPath(join(dir, "hf", "tokenizer.json"));
    expect(t.encode("Hello world")).toEqual([15496, 995]);
    expect(t.bosTokenId).toBe(GPT2_EOT_ID);
  });

  it("uses a tokenizer.json beside a GGUF file", async () => {
    const t = await TextTokenizer.fromModelPath(join(dir, "gguf-beside", "model.gguf"));
    expect(t.encode("Hello world")).toEqual([15496, 995]);
    expect(t.chatTemplate).toBeUndefined();
  });

  it("builds the tokenizer from GGUF metadata with the same ids as tokenizer.json", async () => {
    const meta = gpt2GgufTokenizer();
    const g = await TextTokenizer.fromModelPath(join(dir, "gguf-only", "model.gguf"), meta);
    const texts = [...SAMPLE_TEXTS, "<|im_start|>user\nHi<|im_end|>\n<|endoftext|>"];
    for (const text of texts) {
      const ids = g.encode(text);
      expect(ids, JSON.stringify(text)).toEqual(tok.encode(text));
      expect(g.decode(ids)).toBe(tok.decode(ids));
    }
    expect(g.vocabSize).toBe(GPT2_VOCAB_SIZE);
    expect(g.bosTokenId).toBe(GPT2_EOT_ID);
    expect(g.eosTokenIds).toEqual([GPT2_EOT_ID, IM_END_ID]);
    expect(g.isSpecialToken(IM_START_ID)).toBe(true);
    expect(g.applyChatTemplate([{ role: "user", content: "Hi" }])).toBe(
      "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n",
    );
    // add_bos_token prepends BOS when special tokens are added.
    const withBos = TextTokenizer.fromGguf({ ...meta, addBos: true });
    expect(withBos.encode("Hello world")).toEqual([GPT2_EOT_ID, 15496, 995]);
    expect(withBos.encode("Hello world", { addSpecialTokens: false })).toEqual([15496, 995]);
  });

  it("rejects GGUF tokenizers it cannot rebuild", () => {
    const meta = gpt2GgufTokenizer();
    expect(() => ggufToTokenizerJson({ ...meta, model: "llama" })).toThrow(ModelLoadError);
    expect(() => ggufToTokenizerJson({ ...meta, pre: "made-up" })).toThrow(/pre-tokenizer "made-up"/);
    expect(() => ggufToTokenizerJson({ ...meta, tokenTypes: new Int32Array(3) })).toThrow(/token types/);
  });

  it("loads the generated test model's tokenizer", async () => {
    const t = await TextTokenizer.fromModelPath(hfDir("tiny"));
    expect(t.encode("Hello world")).toEqual([15496, 995]);
    expect(t.eosTokenIds).toEqual([GPT2_EOT_ID, IM_END_ID]);
    expect(t.applyChatTemplate([{ role: "user", content: "Hi" }])).toBe(
      "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n",
    );
  });

  it("fails with ModelLoadError naming the path", async () => {
    await expect(TextTokenizer.fromModelPath(join(dir, "missing"))).rejects.toMatchObject({
      code: "model_load_failed",
      message: expect.stringContaining("missing"),
    });
    await expect(TextTokenizer.fromModelPath(join(dir, "empty"))).rejects.toThrow(/no tokenizer\.json/);
    await expect(TextTokenizer.fromModelPath(join(dir, "gguf-only", "model.gguf"))).rejects.toThrow(ModelLoadError);
    await expect(TextTokenizer.fromModelPath(join(dir, "bad"))).rejects.toThrow(/tokenizer\.json: malformed JSON/);
  });
});
