import { beforeAll, describe, expect, it } from "vitest";
import { GPT2_EOT_ID, IM_END_ID, gpt2TokenizerConfig, gpt2TokenizerJson } from "../models/gpt2-tokenizer.js";
import { IncrementalDetokenizer } from "../src/tokenizer/detokenizer.js";
import { TextTokenizer } from "../src/tokenizer/tokenizer.js";
import { SAMPLE_TEXTS } from "./helpers/sample-texts.js";



const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

let tok: TextTokenizer;
beforeAll(() => {
  tok = TextTokenizer.fromJson(gpt2TokenizerJson(), gpt2TokenizerConfig());
});

/** Pushes `ids` one by one, checking the invariants at every step; returns the text after flush(). */
function stream(ids: readonly number[], skipSpecialTokens = true, t: TextTokenizer = tok): string {
  const tok = t;
  const opts = { skipSpecialTokens, cleanUpSpaces: false };
  const detok = new IncrementalDetokenizer(tok, opts);
  let out = "";
  for (let k = 1; k <= ids.length; k++) {
    const piece = detok.push(ids[k - 1]!);
    expect(LONE_SURROGATE.test(piece)).toBe(false);
    out += piece;
    const full = tok.decode(ids.slice(0, k), opts);
    // What was emitted is always a prefix of the full decode...
    expect(full.startsWith(out), `${JSON.stringify(out)} vs ${JSON.stringify(full)}`).toBe(true);
    // ...never shows a replacement character the full decode does not have there...
    if (out.includes("\uFFFD")) expect(full.slice(0, out.length)).toContain("\uFFFD");
    // ...and is all of it whenever the full text is complete (no trailing partial character).
    if (!full.endsWith("\uFFFD")) expect(out).toBe(full);
  }
  out += detok.flush();
  expect(out).toBe(tok.decode([...ids], opts));
  expect(detok.flush()).toBe("");
  return out;
}

describe("IncrementalDetokenizer", () => {
  it("streams every sample to exactly its decode, at every prefix", () => {
    for (const text of SAMPLE_TEXTS) {
      const ids = tok.encode(text);
      for (let k = 0; k <= ids.length; k++) stream(ids.slice(0, k));
      expect(stream(ids)).toBe(text);
    }
  });

  it("holds back a character split over byte-level tokens until it is complete", () => {
    const ids = tok.encode("😀");
    expect(ids.length).toBe(2);
    const detok = new IncrementalDetokenizer(tok);
    expect(detok.push(ids[0]!)).toBe("");
    expect(detok.push(ids[1]!)).toBe("😀");
    expect(detok.flush()).toBe("");
  });

  it("keeps spaces between words and before multi-byte characters", () => {
    const text = " a  b\t c\n 日本 😀 x ";
    const ids = tok.encode(text);
    const detok = new IncrementalDetokenizer(tok);
    const pieces = ids.map((id) => detok.push(id));
    expect(pieces.join("") + detok.flush()).toBe(text);
    expect(pieces.filter((p) => p !== "").length).toBeGreaterThan(5);
  });

  it("flushes an incomplete trailing character as the full decode does", () => {
    const ids = tok.encode("ok 😀").slice(0, -1);
    const detok = new IncrementalDetokenizer(tok);
    const pushed = ids.map((id) => detok.push(id)).join("");
    // Every complete character is out ("ok", and the space once the byte-level path sees it); no half one.
    expect(pushed.trimEnd()).toBe("ok");
    expect(pushed).not.toContain("\uFFFD");
    const rest = detok.flush();
    expect(pushed + rest).toBe(tok.decode(ids));
    expect(rest).toContain("\uFFFD");
  });

  it("skips special tokens by default and can keep them", () => {
    const ids = [...tok.encode("Hi"), IM_END_ID, ...tok.encode(" there"), GPT2_EOT_ID];
    expect(stream(ids)).toBe("Hi there");
    expect(stream(ids, false)).toBe("Hi<|im_end|> there<|endoftext|>");
  });

  it("skips ids past the tokenizer's vocabulary instead of throwing", () => {
    const detok = new IncrementalDetokenizer(tok);
    const ids = tok.encode("Hi there");
    const out = detok.push(ids[0]!) + detok.push(tok.vocabSize + 7) + detok.push(-1) + detok.push(ids[1]!) + detok.flush();
    expect(out).toBe("Hi there");
    expect(detok.tokenIds).toEqual(ids);
  });

  it("handles arbitrary token sequences, including invalid UTF-8", () => {
    // A deterministic pseudo-random walk over the vocabulary, biased to byte tokens (ids < 256)
    // so that characters are split, left incomplete and interleaved.
    let state = 12345;
    const next = () => (state = (state * 1103515245 + 12345) % 2 ** 31);
    for (let trial = 0; trial < 40; trial++) {
      const ids: number[] = [];
      const len = 1 + (next() % 24);
      for (let i = 0; i < len; i++) ids.push(next() % 3 === 0 ? next() % 50257 : next() % 256);
      stream(ids);
    }
  });

  it("keeps the leading-space rule of SentencePiece-style decoders (the reason for the prefix window)", () => {
    // A Llama-2-style tokenizer: "▁" marks a space, byte-fallback tokens, and a decoder that strips the
    // one leading space of the whole text, so a token's text depends on whether it starts the text.
    const tokens = ["<unk>", "<s>", "</s>", "▁Hello", "▁world", "▁", "<0xE6>", "<0x97>", "<0xA5>", "!", "▁▁", "x"];
    const vocab = Object.fromEntries(tokens.map((t, i) => [t, i]));
    const special = (id: number) => ({
      id, content: tokens[id], single_word: false, lstrip: false, rstrip: false, normalized: false, special: true,
    });
    const llama = TextTokenizer.fromJson(
      {
        version: "1.0",
        added_tokens: [special(0), special(1), special(2)],
        normalizer: null,
        pre_tokenizer: null,
        post_processor: null,
        decoder: {
          type: "Sequence",
          decoders: [
            { type: "Replace", pattern: { String: "▁" }, content: " " },
            { type: "ByteFallback" },
            { type: "Fuse" },
            { type: "Strip", content: " ", start: 1, stop: 0 },
          ],
        },
        model: { type: "BPE", unk_token: "<unk>", byte_fallback: true, fuse_unk: true, vocab, merges: [] },
      },
      { bos_token: "<s>", eos_token: "</s>" },
    );
    const ids = [1, 3, 4, 5, 6, 7, 8, 9, 10, 11, 4, 2];
    expect(llama.decode(ids, { skipSpecialTokens: true })).toBe("Hello world 日!  x world");
    // Streams go through a measured byte table (no tokenizer on the event loop), with the leading-space rule.
    expect(llama.tokenBytes()).toMatchObject({ stripLeadingSpaces: 1 });
    expect(llama.decode([4])).toBe("world");
    for (let k = 0; k <= ids.length; k++) stream(ids.slice(0, k), true, llama);
    const detok = new IncrementalDetokenizer(llama);
    expect(ids.map((id) => detok.push(id))).toEqual(["", "Hello", " world", " ", "", "", "日", "!", "  ", "x", " world", ""]);
  });
});

describe("the byte table", () => {
  it("streams the tokens' own text when the tokenizer cleans up spaces in decode()", () => {
    const cleaning = TextTokenizer.fromJson(gpt2TokenizerJson(), { ...gpt2TokenizerConfig(), clean_up_tokenization_spaces: true });
    const ids = cleaning.encode("Hello , world .");
    expect(cleaning.decode(ids)).toBe("Hello, world.");
    expect(cleaning.tokenBytes()).not.toBeNull();
    expect(stream(ids, true, cleaning)).toBe("Hello , world .");
  });

  it("is none when what a token adds depends on its neighbours, as the sampled decodes show", () => {
    // A Replace decoder that joins across tokens ("ab" → "X"): differencing alone would take "a" and "b" at face value.
    const tokens = ["<s>", "a", "b", "c", "Hello"];
    const joining = TextTokenizer.fromJson(
      {
        version: "1.0",
        added_tokens: [{ id: 0, content: "<s>", single_word: false, lstrip: false, rstrip: false, normalized: false, special: true }],
        normalizer: null,
        pre_tokenizer: null,
        post_processor: null,
        decoder: { type: "Sequence", decoders: [{ type: "Fuse" }, { type: "Replace", pattern: { String: "ab" }, content: "X" }] },
        model: { type: "BPE", unk_token: null, vocab: Object.fromEntries(tokens.map((t, i) => [t, i])), merges: [] },
      },
      {},
    );
    expect(joining.decode([1, 2])).toBe("X");
    expect(joining.tokenBytes()).toBeNull();
  });
});

describe("the byte-level fast path", () => {
  it("is taken for GPT-2's tokenizer and agrees with decode on every prefix of every sample", () => {
    expect(tok.tokenBytes()).not.toBeNull();
    for (const text of SAMPLE_TEXTS) {
      const ids = tok.encode(text);
      const detok = new IncrementalDetokenizer(tok);
      let out = "";
      ids.forEach((id, i) => {
        out += detok.push(id);
        expect(tok.decode(ids.slice(0, i + 1)).startsWith(out)).toBe(true);
      });
      expect(out + detok.flush()).toBe(tok.decode(ids));
    }
  });
});
