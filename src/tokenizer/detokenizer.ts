/**
 * Incremental detokenization for streaming: token ids go in one at a time,
 * text comes out as soon as it is complete. Byte-level BPE splits one
 * character over several tokens (emoji, CJK), and SentencePiece decoders treat
 * a leading space by context, so text cannot be decoded token by token.
 *
 * As Hugging Face text-generation-inference and vLLM do: decode the window
 * [prefixOffset, end) and [prefixOffset, readOffset); the difference is the new
 * text, emitted only once it does not end in U+FFFD (an incomplete UTF-8
 * sequence). The offsets then move up, so each step decodes a few tokens only.
 * Concatenated, the pieces equal decode(allIds) with the same options and
 * no clean-up of spaces: a stream is the tokens' own text (" ." stays " ."),
 * as vLLM streams it, whatever clean_up_tokenization_spaces says.
 */
import { decodeWithTable, dropLeadingSpaces, type TokenBytes } from "./token-bytes.js";
import type { DecodeOptions } from "./tokenizer.js";

/** What detokenizing needs of a tokenizer: a TextTokenizer, or a table its text worker built (tableDecoder). */
export interface TokenDecoder {
  readonly vocabSize: number;
  tokenBytes(): TokenBytes | null;
  decode(ids: readonly number[], options: DecodeOptions): string;
}

/**
 * A decoder from a tokenizer's byte table alone, with no tokenizer on this
 * thread: special tokens have no bytes in the table, so it decodes as with
 * skipSpecialTokens.
 */
export function tableDecoder(vocabSize: number, table: TokenBytes): TokenDecoder {
  return { vocabSize, tokenBytes: () => table, decode: (ids) => decodeWithTable(table, ids) };
}

export interface DetokenizerOptions {
  /** Leave special tokens (EOS, chat control tokens) out of the text. Default true, as vLLM does. */
  skipSpecialTokens?: boolean;
}

const REPLACEMENT = "\uFFFD";
const STREAM = { stream: true };
const strictUtf8 = new TextDecoder("utf-8", { fatal: true });
const lossyUtf8 = new TextDecoder("utf-8");

/** The text of bytes that are whole, valid UTF-8 characters; null otherwise. */
function wholeCharacters(bytes: Uint8Array): string | null {
  try {
    return strictUtf8.decode(bytes);
  } catch {
    return null;
  }
}

export class IncrementalDetokenizer {
  private readonly ids: number[] = [];
  /** Start of the window decoded for context (its text was already emitted). */
  private prefixOffset = 0;
  /** End of the text already emitted. */
  private readOffset = 0;
  private readonly skipSpecialTokens: boolean;
  /** Byte-level fast path: each token's bytes into a streaming UTF-8 decoder. */
  private readonly bytes: TokenBytes | null;
  private readonly utf8 = new TextDecoder("utf-8");
  /** The streaming decoder holds no partial character. */
  private clean = true;
  /** Leading spaces the table's decoder still drops from the start of the text. */
  private stripLeft: number;

  constructor(
    private readonly tokenizer: TokenDecoder,
    options: DetokenizerOptions = {},
  ) {
    this.skipSpecialTokens = options.skipSpecialTokens ?? true;
    this.bytes = this.skipSpecialTokens ? tokenizer.tokenBytes() : null;
    this.stripLeft = this.bytes?.stripLeadingSpaces ?? 0;
  }

  /**
   * Adds one token; returns the text it completes (often "", e.g. within a
   * multi-byte character). An id outside the tokenizer's vocabulary (a model
   * whose embedding is padded past it) has no text and is skipped, as the Rust
   * tokenizers' decode skips it; it never throws.
   */
  push(id: number): string {
    if (!Number.isInteger(id) || id < 0 || id >= this.tokenizer.vocabSize) return "";
    this.ids.push(id);
    if (this.bytes) {
      const { bytes, offsets, texts } = this.bytes;
      const start = offsets[id]!, end = offsets[id + 1]!;
      if (end === start) return "";
      // Most tokens are whole characters: their text, decoded once per
      // tokenizer, is the answer whenever no partial character is pending.
      let whole = texts[id];
      if (whole === undefined) whole = texts[id] = wholeCharacters(bytes.subarray(start, end));
      if (whole !== null && this.clean) return this.atStart(whole);
      // Otherwise the streaming decoder, which holds an incomplete sequence back
      // by itself. A token of whole characters leaves nothing pending: its first
      // byte ends any partial sequence before it.
      this.clean = whole !== null;
      return this.atStart(this.utf8.decode(bytes.subarray(start, end), STREAM));
    }
    return this.advance(false);
  }

  /** Ends the stream: returns whatever is still held back (an incomplete character decodes to U+FFFD). */
  flush(): string {
    this.clean = true;
    return this.bytes ? this.atStart(this.utf8.decode()) : this.advance(true);
  }

  // The start of the text loses the leading spaces its decoder strips (SentencePiece's "▁Hello" → "Hello").
  private atStart(piece: string): string {
    if (this.stripLeft === 0 || piece.length === 0) return piece;
    const out = dropLeadingSpaces(piece, this.stripLeft);
    this.stripLeft = out.length === piece.length || out.length > 0 ? 0 : this.stripLeft - piece.length;
    return out;
  }

  /** A token's own text (lossy where its bytes are part of a character) and bytes, as logprobs report it. */
  piece(id: number): { piece: string; bytes: number[] } {
    if (!Number.isInteger(id) || id < 0 || id >= this.tokenizer.vocabSize) return { piece: "", bytes: [] };
    const table = this.bytes ?? this.tokenizer.tokenBytes();
    if (table) {
      const bytes = table.bytes.subarray(table.offsets[id]!, table.offsets[id + 1]!);
      return { piece: lossyUtf8.decode(bytes), bytes: Array.from(bytes) };
    }
    const piece = this.tokenizer.decode([id], { skipSpecialTokens: false, cleanUpSpaces: false });
    return { piece, bytes: Array.from(new TextEncoder().encode(piece)) };
  }

  /** All token ids pushed so far (those with text). */
  get tokenIds(): readonly number[] {
    return this.ids;
  }

  private advance(final: boolean): string {
    if (this.readOffset >= this.ids.length) return "";
    const options = { skipSpecialTokens: this.skipSpecialTokens, cleanUpSpaces: false };
    const prefixText = this.tokenizer.decode(this.ids.slice(this.prefixOffset, this.readOffset), options);
    const newText = this.tokenizer.decode(this.ids.slice(this.prefixOffset), options);
    if (!final && (newText.length <= prefixText.length || newText.endsWith(REPLACEMENT))) return "";
    // The window's text normally extends the prefix's; if a decoder rewrote the
    // boundary, emit from the first difference on (never slicing a surrogate pair).
    let start = prefixText.length;
    if (!newText.startsWith(prefixText)) start = commonPrefixLength(prefixText, newText);
    this.prefixOffset = this.readOffset;
    this.readOffset = this.ids.length;
    return newText.slice(start);
  }
}

function commonPrefixLength(a: string, b: string): number {
  let i = 0;
  while (i < a.length && i < b.length && a.charCodeAt(i) === b.charCodeAt(i)) i++;
  // Do not split a surrogate pair.
  if (i > 0 && i < b.length && isHighSurrogate(b.charCodeAt(i - 1))) i--;
  return i;
}

function isHighSurrogate(c: number): boolean {
  return c >= 0xd800 && c <= 0xdbff;
}
