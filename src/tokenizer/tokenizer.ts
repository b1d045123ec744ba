/**
 * Text <-> token ids for a model: a Hugging Face tokenizer.json (run by the
 * pure-JS @huggingface/tokenizers), its tokenizer_config.json (special tokens,
 * chat template) and generation_config.json (end-of-sequence ids); or, for a
 * GGUF file with no tokenizer.json beside it, a byte-level BPE tokenizer built
 * from the file's tokenizer.ggml.* metadata.
 */
import { stat } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { Tokenizer } from "@huggingface/tokenizers";
import { addon } from "../addon.js";
import { fromNative, InvalidRequestError, ModelLoadError } from "../errors.js";
import { readRegularFile } from "../files.js";
import { byteLevelTable, measuredTable, type TokenBytes } from "./token-bytes.js";
import {
  type ChatMessage,
  ChatTemplate,
  type ChatTemplateOptions,
  chatTemplateSource,
  type RenderLimits,
  noChatTemplateError,
} from "./chat-template.js";

/** A GGUF file's tokenizer metadata (tokenizer.ggml.*), as the addon reads it. */
export interface GgufTokenizerMetadata {
  /** tokenizer.ggml.model; only "gpt2" (byte-level BPE) can be rebuilt. */
  model: string;
  /** tokenizer.ggml.pre: the pre-tokenizer ("gpt-2", "llama-bpe", "qwen2", "smollm", ...). */
  pre?: string;
  /** tokenizer.ggml.tokens, in id order. */
  tokens: readonly string[];
  /** tokenizer.ggml.merges, "a b" strings in priority order. */
  merges: readonly string[];
  /** tokenizer.ggml.token_type: 1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte. */
  tokenTypes?: ArrayLike<number>;
  /** tokenizer.ggml.bos_token_id */
  bosId?: number;
  /** tokenizer.ggml.eos_token_id */
  eosId?: number;
  /** tokenizer.ggml.eot_token_id: also ends generation */
  eotId?: number;
  /** tokenizer.ggml.add_bos_token */
  addBos?: boolean;
  /** tokenizer.chat_template */
  chatTemplate?: string;
}

export interface EncodeOptions {
  /** Add the model's special tokens (e.g. BOS) as its post-processor says. Default true. */
  addSpecialTokens?: boolean;
}

export interface DecodeOptions {
  /** Leave out special tokens (BOS, EOS, chat control tokens). Default false. */
  skipSpecialTokens?: boolean;
  /**
   * Remove spaces before punctuation and contractions (" ." → "."), as the
   * tokenizer's clean_up_tokenization_spaces says by default. Streams never do:
   * they are the tokens' own text, as vLLM streams it.
   */
  cleanUpSpaces?: boolean;
}

type Json = Record<string, unknown>;

/** What a tokenizer is built with, besides the tokenizers-library object. */
interface TokenizerInit {
  bosTokenId?: number;
  eosTokenIds: number[];
  chatTemplate?: string;
  cleanUpSpaces: boolean;
  /** Prepend BOS when adding special tokens (GGUF add_bos_token; tokenizer.json says it itself). */
  prependBos: boolean;
  /** tokenizer.json's decoder is exactly ByteLevel: each token is a fixed byte string. */
  byteLevelDecoder: boolean;
  /** The model's vocabulary size: every token id must be below it. */
  vocabLimit?: number;
}

/** Where a model's tokenizer comes from. */
export interface TokenizerSource {
  /** A model directory, tokenizer.json or .gguf, as TextTokenizer.fromModelPath takes it. */
  path: string;
  /** The GGUF file whose tokenizer metadata to build from when no tokenizer.json is found. */
  ggufPath?: string;
  /** The model's vocabulary size: every token id must be below it. */
  vocabLimit?: number;
}

/** A model's tokenizer. Create with TextTokenizer.fromModelPath() or fromSource(). */
export class TextTokenizer {
  /** Size of the id space: every vocabulary and added token id is below it. */
  readonly vocabSize: number;
  /** The beginning-of-sequence token, if the model has one. */
  readonly bosTokenId: number | undefined;
  /**
   * The tokenizer's own end tokens (tokenizer_config.json eos_token, generation_config.json),
   * deduplicated. Generation stops at the model's, which native code reads:
   * model.info.config.eosTokenIds (config.json and generation_config.json, or the GGUF's).
   */
  readonly eosTokenIds: readonly number[];
  /** The chat template's source text, if the model has one. */
  readonly chatTemplate: string | undefined;

  private readonly parsedTemplate: ChatTemplate | undefined;
  private readonly templateError: unknown;
  private readonly cleanUpSpaces: boolean;
  private readonly specialIds: ReadonlySet<number>;
  /** Matches the text of any special token (undefined: the tokenizer has none). */
  private readonly specialText: RegExp | undefined;
  private readonly prependBos: boolean;
  private readonly byteLevelDecoder: boolean;
  private table: TokenBytes | null | undefined;

  private constructor(
    private readonly tokenizer: Tokenizer,
    private readonly source: string,
    init: TokenizerInit,
  ) {
    let maxId = -1;
    for (const id of tokenizer.get_vocab(true).values()) maxId = Math.max(maxId, id);
    if (maxId < 0) throw new ModelLoadError(`${source}: the vocabulary is empty`);
    // Checked before anything is sized by the largest id (the byte table below).
    if (init.vocabLimit !== undefined && maxId >= init.vocabLimit)
      throw new ModelLoadError(
        `${source}: token ${JSON.stringify(tokenizer.id_to_token(maxId))} has id ${maxId}, outside the model's vocabulary [0, ${init.vocabLimit})`,
      );
    this.vocabSize = maxId + 1;
    this.bosTokenId = init.bosTokenId;
    this.eosTokenIds = [...new Set(init.eosTokenIds)];
    this.cleanUpSpaces = init.cleanUpSpaces;
    this.prependBos = init.prependBos;
    this.specialIds = new Set([...tokenizer.get_added_tokens_decoder()].filter(([, t]) => t.special).map(([id]) => id));
    // One pass over a message finds any of them (models have hundreds of reserved special tokens).
    const specials = [...tokenizer.get_added_tokens_decoder().values()].filter((t) => t.special && t.content.length > 0);
    this.specialText = specials.length ? new RegExp(specials.map((t) => t.content.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")).join("|")) : undefined;
    this.byteLevelDecoder = init.byteLevelDecoder;
    this.chatTemplate = init.chatTemplate;
    if (init.chatTemplate !== undefined) {
      const tokenText = (id: number | undefined) => (id === undefined ? undefined : tokenizer.id_to_token(id));
      try {
        this.parsedTemplate = new ChatTemplate(init.chatTemplate, {
          bosToken: tokenText(init.bosTokenId),
          eosToken: tokenText(init.eosTokenIds[0]),
        });
      } catch (err) {
        // A broken template must not stop the model from loading: prompts still work.
        this.templateError = err;
      }
    }
  }

  /**
   * The bytes each id decodes to, when decoding (without clean-up of spaces)
   * is "concatenate the tokens' bytes" (see token-bytes.ts), special tokens
   * empty; null when decoding needs the tokenizer itself. Built on first use: a text worker builds it
   * and streams detokenize through it.
   */
  tokenBytes(): TokenBytes | null {
    if (this.table !== undefined) return this.table;
    const source = {
      vocabSize: this.vocabSize,
      isSpecial: (id: number) => this.specialIds.has(id),
      idToToken: (id: number) => this.tokenizer.id_to_token(id),
      decode: (ids: number[]) => this.decode(ids, { skipSpecialTokens: true, cleanUpSpaces: false }),
    };
    const added = [...this.tokenizer.get_added_tokens_decoder().values()];
    const byteLevel = this.byteLevelDecoder && added.every((t) => t.special) ? byteLevelTable(source) : null;
    this.table = byteLevel ?? measuredTable(source);
    return this.table;
  }

  /**
   * Loads the tokenizer of a model:
   * - a Hugging Face directory: tokenizer.json, optional tokenizer_config.json,
   *   chat_template.jinja and generation_config.json;
   * - a tokenizer.json file (its siblings are read the same way);
   * - a .gguf file: a tokenizer.json beside it if there is one, else `gguf`, the
   *   file's tokenizer metadata (or a function reading it, called only then).
   * Rejects with ModelLoadError naming the file when nothing usable is found.
   */
  static async fromModelPath(
    path: string,
    gguf?: GgufTokenizerMetadata | null | (() => GgufTokenizerMetadata | null),
    options: { vocabLimit?: number } = {},
  ): Promise<TextTokenizer> {
    const info = await stat(path).catch((err: unknown) => {
      throw new ModelLoadError(`${path}: cannot read the model path (${errMessage(err)})`, { cause: err });
    });
    const ggufMeta = () => (typeof gguf === "function" ? gguf() : gguf);
    let tokenizerJsonPath: string;
    if (info.isDirectory()) {
      tokenizerJsonPath = join(path, "tokenizer.json");
      if (!(await isFile(tokenizerJsonPath))) {
        const meta = ggufMeta();
        if (meta) return TextTokenizer.fromGguf(meta, path, options);
        throw new ModelLoadError(`${path}: no tokenizer.json in the model directory`);
      }
    } else if (path.toLowerCase().endsWith(".gguf")) {
      tokenizerJsonPath = join(dirname(path), "tokenizer.json");
      if (!(await isFile(tokenizerJsonPath))) {
        const meta = ggufMeta();
        if (meta) return TextTokenizer.fromGguf(meta, path, options);
        throw new ModelLoadError(
          `${path}: no tokenizer.json beside the GGUF file and no GGUF tokenizer metadata to build one from`,
        );
      }
    } else {
      tokenizerJsonPath = path; // a tokenizer.json given directly
    }

    const dir = dirname(tokenizerJsonPath);
    const tokenizerJson = await readJson(tokenizerJsonPath, true);
    const config = (await readJson(join(dir, "tokenizer_config.json"), false)) ?? {};
    const generationConfig = await readJson(join(dir, "generation_config.json"), false);
    const jinjaFile = join(dir, "chat_template.jinja");
    const jinja = (await readModelFile(jinjaFile)) ?? undefined;
    return TextTokenizer.fromJson(tokenizerJson!, config, {
      source: tokenizerJsonPath,
      generationConfig: generationConfig ?? undefined,
      chatTemplate: jinja,
      vocabLimit: options.vocabLimit,
    });
  }

  /**
   * Builds a tokenizer from tokenizer.json and tokenizer_config.json objects
   * (`extra.generationConfig` adds its eos_token_id; `extra.chatTemplate`
   * overrides the config's chat_template).
   */
  static fromJson(
    tokenizerJson: Json,
    tokenizerConfig: Json = {},
    extra: { source?: string; generationConfig?: Json; chatTemplate?: string; vocabLimit?: number } = {},
  ): TextTokenizer {
    const source = extra.source ?? "tokenizer.json";
    const config: Json = { ...tokenizerConfig };
    const cleanUpSpaces = config.clean_up_tokenization_spaces === true;
    config.clean_up_tokenization_spaces = cleanUpSpaces; // the Rust tokenizers default, not the JS port's `true`
    checkTokenIds(tokenizerJson, source, extra.vocabLimit ?? MAX_TOKENIZER_IDS);
    let tokenizer: Tokenizer;
    try {
      tokenizer = new Tokenizer(tokenizerJson, config);
    } catch (err) {
      throw new ModelLoadError(`${source}: not a tokenizer this library can run (${errMessage(err)})`, { cause: err });
    }
    const idOf = (token: unknown): number | undefined => {
      const text = specialTokenText(token);
      return text === undefined ? undefined : tokenizer.token_to_id(text);
    };
    const eos: number[] = [];
    const eosId = idOf(config.eos_token);
    if (eosId !== undefined) eos.push(eosId);
    const genEos = extra.generationConfig?.eos_token_id;
    for (const id of Array.isArray(genEos) ? genEos : [genEos]) if (Number.isInteger(id)) eos.push(id as number);
    let bos = idOf(config.bos_token);
    if (bos === undefined && Number.isInteger(extra.generationConfig?.bos_token_id))
      bos = extra.generationConfig!.bos_token_id as number;
    return TextTokenizer.build(tokenizer, source, {
      bosTokenId: bos,
      eosTokenIds: eos,
      chatTemplate: extra.chatTemplate ?? chatTemplateSource(config.chat_template),
      cleanUpSpaces,
      prependBos: false,
      byteLevelDecoder: isByteLevelDecoder(tokenizerJson),
      vocabLimit: extra.vocabLimit,
    });
  }

  /** The tokenizer `source` describes, its GGUF metadata read natively only if no tokenizer.json is found. */
  static fromSource(source: TokenizerSource): Promise<TextTokenizer> {
    const { path, ggufPath, vocabLimit } = source;
    const gguf = () => {
      if (ggufPath === undefined) return null;
      try {
        return addon().readGgufTokenizer(ggufPath);
      } catch (e) {
        throw fromNative(e);
      }
    };
    return TextTokenizer.fromModelPath(path, gguf, { vocabLimit });
  }

  /** Builds a byte-level BPE tokenizer from a GGUF file's tokenizer metadata. */
  static fromGguf(meta: GgufTokenizerMetadata, source = "GGUF tokenizer metadata", options: { vocabLimit?: number } = {}): TextTokenizer {
    const json = ggufToTokenizerJson(meta, source);
    let tokenizer: Tokenizer;
    try {
      tokenizer = new Tokenizer(json, { clean_up_tokenization_spaces: false });
    } catch (err) {
      throw new ModelLoadError(`${source}: cannot build a tokenizer from its metadata (${errMessage(err)})`, {
        cause: err,
      });
    }
    const n = meta.tokens.length;
    const inRange = (id: number | undefined) => (id !== undefined && Number.isInteger(id) && id >= 0 && id < n ? id : undefined);
    const eos = [inRange(meta.eosId), inRange(meta.eotId)].filter((id): id is number => id !== undefined);
    const bos = inRange(meta.bosId);
    return TextTokenizer.build(tokenizer, source, {
      bosTokenId: bos,
      eosTokenIds: eos,
      chatTemplate: meta.chatTemplate || undefined,
      cleanUpSpaces: false,
      prependBos: meta.addBos === true && bos !== undefined,
      byteLevelDecoder: isByteLevelDecoder(json),
      vocabLimit: options.vocabLimit,
    });
  }

  // Whatever a malformed tokenizer file makes the constructor throw, the caller gets a ModelLoadError naming the file.
  private static build(tokenizer: Tokenizer, source: string, init: TokenizerInit): TextTokenizer {
    try {
      return new TextTokenizer(tokenizer, source, init);
    } catch (err) {
      if (err instanceof ModelLoadError) throw err;
      throw new ModelLoadError(`${source}: not a tokenizer this library can run (${errMessage(err)})`, { cause: err });
    }
  }

  /** Text to token ids. Special-token text in `text` (e.g. "<|im_start|>") becomes its one id. */
  encode(text: string, options: EncodeOptions = {}): number[] {
    if (typeof text !== "string") throw new InvalidRequestError("the text to encode must be a string");
    const addSpecial = options.addSpecialTokens ?? true;
    const ids = this.tokenizer.encode(text, { add_special_tokens: addSpecial }).ids;
    if (addSpecial && this.prependBos && ids[0] !== this.bosTokenId) ids.unshift(this.bosTokenId!);
    return ids;
  }

  /** Token ids to text. Throws InvalidRequestError for an id outside [0, vocabSize). */
  decode(ids: readonly number[], options: DecodeOptions = {}): string {
    if (ids.length === 0) return "";
    for (const id of ids) {
      if (!Number.isInteger(id) || id < 0 || id >= this.vocabSize)
        throw new InvalidRequestError(`token id ${id} is outside the vocabulary [0, ${this.vocabSize})`);
    }
    let list = ids as number[];
    if (options.skipSpecialTokens) {
      list = list.filter((id) => !this.specialIds.has(id));
      if (list.length === 0) return "";
    }
    return this.tokenizer.decode(list, {
      skip_special_tokens: options.skipSpecialTokens ?? false,
      clean_up_tokenization_spaces: options.cleanUpSpaces ?? this.cleanUpSpaces,
    });
  }

  /** Whether `id` is a special (control) token. */
  isSpecialToken(id: number): boolean {
    return this.specialIds.has(id);
  }

  /** The token's string in the vocabulary (byte-level form for BPE), or undefined. */
  idToToken(id: number): string | undefined {
    return this.tokenizer.id_to_token(id);
  }

  /** The id of a token string, or undefined. */
  tokenToId(token: string): number | undefined {
    return this.tokenizer.token_to_id(token);
  }

  /**
   * Renders a conversation with the model's chat template. Throws
   * InvalidRequestError if the model has none or the messages are malformed.
   */
  applyChatTemplate(messages: readonly ChatMessage[], options: ChatTemplateOptions = {}): string {
    return this.template().render(messages, options);
  }

  /**
   * The conversation as the model's prompt ids. Special-token text inside a
   * message's content ("<|im_end|>" typed by a user) is read as plain text,
   * not as the control token, unless `parseSpecialTokens`: the template's own
   * control tokens alone delimit roles (transformers' split_special_tokens).
   */
  encodeChat(
    messages: readonly ChatMessage[],
    options: ChatTemplateOptions & { parseSpecialTokens?: boolean; limits?: RenderLimits } = {},
  ): number[] {
    const template = this.template();
    const text = template.render(messages, options, options.limits);
    if (options.parseSpecialTokens || !messages.some((m) => this.holdsSpecialText(m.content)))
      return this.encode(text, { addSpecialTokens: false }); // the common case: exactly what the rendered text encodes to
    // Render with a mark in place of each content, encode the template's text
    // around the marks as usual and each content as plain text.
    const mark = (i: number) => `\uE000${i}\uE001`;
    const skeleton = template.render(
      messages.map((m, i) => ({ ...m, content: mark(i) })),
      options,
      options.limits,
    );
    const ids: number[] = [];
    let at = 0;
    for (const [i, m] of messages.entries()) {
      const where = skeleton.indexOf(mark(i), at);
      if (where < 0 || skeleton.indexOf(mark(i), where + 1) >= 0)
        throw new InvalidRequestError(
          `messages[${i}].content holds special-token text, and the chat template does not place the content once, as given, for it to be read as plain text`,
        );
      ids.push(...this.encode(skeleton.slice(at, where), { addSpecialTokens: false }), ...this.encodePlain(m.content));
      at = where + mark(i).length;
    }
    ids.push(...this.encode(skeleton.slice(at), { addSpecialTokens: false }));
    return ids;
  }

  private template(): ChatTemplate {
    if (this.templateError !== undefined) throw this.templateError;
    if (!this.parsedTemplate) throw noChatTemplateError(this.source);
    return this.parsedTemplate;
  }

  private holdsSpecialText(text: string): boolean {
    return this.specialText?.test(text) ?? false;
  }

  // The tokenizer's own pipeline without its added-token splitter: normalizer,
  // pre-tokenizer, model. Internal to @huggingface/tokenizers (a test pins it).
  private encodePlain(text: string): number[] {
    if (text.length === 0) return [];
    const t = this.tokenizer as unknown as PipelineInternals;
    const normalized = t.normalizer ? t.normalizer(text) : text;
    const words = t.pre_tokenizer ? t.pre_tokenizer(normalized, { section_index: 0 }) : [normalized];
    return t.model(words).map((token) => {
      const id = this.tokenizer.token_to_id(token);
      if (id === undefined) throw new InvalidRequestError(`the tokenizer has no id for its own token ${JSON.stringify(token)}`);
      return id;
    });
  }
}

/** The callable stages of a @huggingface/tokenizers Tokenizer that encodePlain runs. */
interface PipelineInternals {
  normalizer: ((text: string) => string) | null;
  pre_tokenizer: ((text: string, options: { section_index: number }) => string[]) | null;
  model: (words: string[]) => string[];
}

// --- GGUF metadata -> tokenizer.json ------------------------------------------

// Pre-tokenizer regexes, as the models' own tokenizer.json files give them.
const LLAMA3_SPLIT =
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const QWEN2_SPLIT =
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

function byteLevel(useRegex: boolean): Json {
  return { type: "ByteLevel", add_prefix_space: false, trim_offsets: true, use_regex: useRegex };
}

function splitThenByteLevel(pattern: string): Json {
  return {
    type: "Sequence",
    pretokenizers: [
      { type: "Split", pattern: { Regex: pattern }, behavior: "Isolated", invert: false },
      byteLevel(false),
    ],
  };
}

function preTokenizerFor(pre: string | undefined, source: string): { pre_tokenizer: Json; normalizer: Json | null } {
  switch (pre ?? "default") {
    case "default":
    case "gpt-2":
    case "gpt2":
      return { pre_tokenizer: byteLevel(true), normalizer: null };
    case "smollm":
      return {
        pre_tokenizer: { type: "Sequence", pretokenizers: [{ type: "Digits", individual_digits: true }, byteLevel(true)] },
        normalizer: null,
      };
    case "llama-bpe":
    case "llama3":
      return { pre_tokenizer: splitThenByteLevel(LLAMA3_SPLIT), normalizer: null };
    case "qwen2":
      return { pre_tokenizer: splitThenByteLevel(QWEN2_SPLIT), normalizer: { type: "NFC" } };
    default:
      throw new ModelLoadError(
        `${source}: GGUF pre-tokenizer "${pre}" is not supported; put the model's tokenizer.json beside the file`,
      );
  }
}

/** The Hugging Face tokenizer.json equivalent of GGUF byte-level BPE metadata. */
export function ggufToTokenizerJson(meta: GgufTokenizerMetadata, source = "GGUF tokenizer metadata"): Json {
  if (meta.model !== "gpt2") {
    throw new ModelLoadError(
      `${source}: GGUF tokenizer model "${meta.model}" cannot be rebuilt here (only byte-level BPE, "gpt2"); ` +
        "put the model's tokenizer.json beside the file",
    );
  }
  if (!Array.isArray(meta.tokens) || meta.tokens.length === 0)
    throw new ModelLoadError(`${source}: GGUF tokenizer has no tokens`);
  const types = meta.tokenTypes;
  if (types && types.length !== meta.tokens.length)
    throw new ModelLoadError(
      `${source}: GGUF tokenizer has ${meta.tokens.length} tokens but ${types.length} token types`,
    );
  const vocab: Record<string, number> = Object.create(null) as Record<string, number>;
  const added: Json[] = [];
  meta.tokens.forEach((token, id) => {
    if (typeof token !== "string") throw new ModelLoadError(`${source}: GGUF token ${id} is not a string`);
    if (!(token in vocab)) vocab[token] = id;
    const type = types ? types[id] : 1;
    // Control tokens are special; user-defined ones are matched whole in text but decode as text.
    if (type === 3 || type === 4)
      added.push({ id, content: token, single_word: false, lstrip: false, rstrip: false, normalized: false, special: type === 3 });
  });
  const merges = meta.merges.map((m, i) => {
    if (typeof m !== "string" || m.split(" ").length !== 2)
      throw new ModelLoadError(`${source}: GGUF merge ${i} is not "a b": ${JSON.stringify(m)}`);
    return m;
  });
  const { pre_tokenizer, normalizer } = preTokenizerFor(meta.pre, source);
  return {
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: added,
    normalizer,
    pre_tokenizer,
    post_processor: null,
    decoder: { type: "ByteLevel", add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: "BPE",
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab,
      merges,
    },
  };
}

// --- helpers --------------------------------------------------------------------

function specialTokenText(token: unknown): string | undefined {
  if (typeof token === "string") return token;
  if (typeof token === "object" && token !== null && typeof (token as Json).content === "string")
    return (token as Json).content as string;
  return undefined;
}

/** Ids a tokenizer may use when no model says how many it has: more than any vocabulary published. */
const MAX_TOKENIZER_IDS = 1 << 24;

// Every id of tokenizer.json's vocabulary and added tokens is a whole number below
// `limit`: the tokenizers library sizes tables by the largest id before anything
// else could refuse it (an id of 1e9 takes minutes and gigabytes).
function checkTokenIds(json: Json, source: string, limit: number): void {
  const fail = (what: string, id: unknown) => {
    throw new ModelLoadError(`${source}: ${what} has id ${JSON.stringify(id)}, outside the model's vocabulary [0, ${limit})`);
  };
  const ok = (id: unknown) => typeof id === "number" && Number.isInteger(id) && id >= 0 && id < limit;
  const added = json.added_tokens;
  if (Array.isArray(added))
    for (const t of added as { id?: unknown; content?: unknown }[]) if (!ok(t?.id)) fail(`token ${JSON.stringify(t?.content)}`, t?.id);
  const vocab = (json.model as { vocab?: unknown } | undefined)?.vocab;
  if (vocab && typeof vocab === "object" && !Array.isArray(vocab))
    for (const [token, id] of Object.entries(vocab)) if (!ok(id)) fail(`token ${JSON.stringify(token)}`, id);
}

async function isFile(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isFile();
  } catch {
    return false;
  }
}

/** A model file's text; null when it does not exist (see readRegularFile). */
const readModelFile = (path: string) => readRegularFile(path, (message, cause) => new ModelLoadError(message, { cause }));

async function readJson(path: string, required: boolean): Promise<Json | null> {
  const text = await readModelFile(path);
  if (text === null) {
    if (!required) return null;
    throw new ModelLoadError(`${path}: cannot read ${basename(path)} (it does not exist)`);
  }
  try {
    const value: unknown = JSON.parse(text);
    if (typeof value !== "object" || value === null || Array.isArray(value))
      throw new Error("the top level is not an object");
    return value as Json;
  } catch (err) {
    throw new ModelLoadError(`${path}: malformed JSON (${errMessage(err)})`, { cause: err });
  }
}

function errMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function isByteLevelDecoder(json: unknown): boolean {
  return (json as { decoder?: { type?: unknown } } | null)?.decoder?.type === "ByteLevel";
}
