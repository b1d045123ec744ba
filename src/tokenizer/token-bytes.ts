/**
 * The byte table of streaming detokenization: each token id's bytes, when a
 * tokenizer's decode is "concatenate the tokens' bytes" (then, at most, drop a
 * leading space of the whole text). Streams decode through it with no
 * tokenizer code on the event loop; a text worker builds it and sends it over.
 *
 * Byte-level BPE (GPT-2, Llama 3, Qwen) reads it off the vocabulary. Any other
 * decoder (SentencePiece's Replace/ByteFallback/Fuse/Strip, Metaspace) is
 * measured: each token's text is what it adds after a fixed first token, and
 * the table is kept only if it then decodes sampled sequences exactly as the
 * tokenizer does. Decoders it cannot describe (clean-up of spaces before
 * punctuation, ...) get no table.
 */

/** Every token's bytes in one buffer: id i is bytes[offsets[i], offsets[i + 1]). */
export interface TokenBytes {
  bytes: Uint8Array;
  offsets: Uint32Array;
  /** Spaces the decoder drops from the start of the whole text (SentencePiece's Strip), at most. */
  stripLeadingSpaces: number;
  /** Per id, filled on first use: its text when its bytes are whole UTF-8 characters, else null. */
  texts: (string | null | undefined)[];
}

/** What a table is made from: the tokenizer's view of its vocabulary and its own decode. */
export interface TableSource {
  vocabSize: number;
  /** Ids that decode to nothing when special tokens are skipped. */
  isSpecial(id: number): boolean;
  idToToken(id: number): string | undefined;
  decode(ids: number[]): string;
}

const utf8 = new TextEncoder();

/** Byte-level BPE: each vocabulary string maps character by character to bytes (GPT-2's bytes_to_unicode). */
export function byteLevelTable(source: TableSource): TokenBytes | null {
  const byteOf = unicodeToByte();
  const chunks: Uint8Array[] = [];
  for (let id = 0; id < source.vocabSize; id++) {
    const token = source.isSpecial(id) ? "" : (source.idToToken(id) ?? "");
    const bytes = new Uint8Array(token.length); // one byte per character in a byte-level vocabulary
    for (let i = 0; i < token.length; i++) {
      const b = byteOf.get(token[i]!);
      if (b === undefined) return null; // not a byte-level vocabulary after all
      bytes[i] = b;
    }
    chunks.push(bytes);
  }
  return pack(chunks, 0);
}

/** Any other decoder, measured token by token and kept only if it reproduces the tokenizer's decode. */
export function measuredTable(source: TableSource): TokenBytes | null {
  const plain: number[] = [];
  for (let id = 0; id < source.vocabSize; id++) if (!source.isSpecial(id) && source.idToToken(id) !== undefined) plain.push(id);
  // A first token of plain letters: what a token adds after it is its text mid-sentence.
  const anchor = plain.find((id) => /^[A-Za-z]+$/.test(source.decode([id])));
  if (anchor === undefined) return null;
  const base = source.decode([anchor]);
  const chunks: Uint8Array[] = [];
  for (let id = 0; id < source.vocabSize; id++) {
    if (source.isSpecial(id) || source.idToToken(id) === undefined) {
      chunks.push(new Uint8Array(0));
      continue;
    }
    const byte = /^<0x([0-9A-Fa-f]{2})>$/.exec(source.idToToken(id)!); // byte-fallback tokens: one raw byte
    if (byte) {
      chunks.push(Uint8Array.of(parseInt(byte[1]!, 16)));
      continue;
    }
    const both = source.decode([anchor, id]);
    if (!both.startsWith(base)) return null;
    const text = both.slice(base.length);
    if (text.includes("\uFFFD")) return null;
    chunks.push(utf8.encode(text));
  }
  // The start-of-text rule: how many leading spaces a lone token loses.
  let strip = 0;
  for (const id of plain.slice(0, 2000)) {
    const whole = new TextDecoder().decode(chunks[id]);
    const alone = source.decode([id]);
    if (alone === whole) continue;
    const lost = whole.length - alone.length;
    if (lost <= 0 || whole.slice(lost) !== alone || whole.slice(0, lost).trim() !== "") return null;
    strip = Math.max(strip, lost);
  }
  const table = pack(chunks, strip);
  return agreesWithDecode(table, source, plain) ? table : null;
}

// The table decodes seeded random sequences (specials mixed in) exactly as the tokenizer does.
function agreesWithDecode(table: TokenBytes, source: TableSource, plain: readonly number[]): boolean {
  let seed = 0x9e3779b9;
  const next = () => ((seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) >>> 8);
  for (let s = 0; s < 200; s++) {
    const ids = Array.from({ length: 1 + (next() % 24) }, () => (next() % 8 === 0 ? next() % source.vocabSize : plain[next() % plain.length]!));
    if (decodeWithTable(table, ids) !== source.decode(ids)) return false;
  }
  return true;
}

/** The text of `ids` through `table`: their bytes joined, the leading spaces dropped, as decode with skipped specials gives. */
export function decodeWithTable(table: TokenBytes, ids: readonly number[]): string {
  const n = table.offsets.length - 1;
  const parts = ids.filter((id) => id >= 0 && id < n).map((id) => table.bytes.subarray(table.offsets[id]!, table.offsets[id + 1]!));
  const joined = new Uint8Array(parts.reduce((k, p) => k + p.length, 0));
  let at = 0;
  for (const p of parts) (joined.set(p, at), (at += p.length));
  return dropLeadingSpaces(new TextDecoder().decode(joined), table.stripLeadingSpaces);
}

/** `text` less up to `n` leading spaces. */
export function dropLeadingSpaces(text: string, n: number): string {
  let i = 0;
  while (i < n && text[i] === " ") i++;
  return text.slice(i);
}

function pack(chunks: readonly Uint8Array[], stripLeadingSpaces: number): TokenBytes {
  const offsets = new Uint32Array(chunks.length + 1);
  let total = 0;
  chunks.forEach((c, i) => {
    offsets[i] = total;
    total += c.length;
  });
  offsets[chunks.length] = total;
  const bytes = new Uint8Array(total);
  chunks.forEach((c, i) => bytes.set(c, offsets[i]!));
  return { bytes, offsets, stripLeadingSpaces, texts: new Array<string | null | undefined>(chunks.length) };
}

// GPT-2's byte ↔ unicode map (bytes_to_unicode): printable bytes stand for
// themselves, the others are shifted to U+0100 onwards.
let byteDecoder: Map<string, number> | undefined;
function unicodeToByte(): Map<string, number> {
  if (byteDecoder) return byteDecoder;
  const visible = (b: number) => (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
  byteDecoder = new Map();
  let shifted = 0;
  for (let b = 0; b < 256; b++) byteDecoder.set(String.fromCodePoint(visible(b) ? b : 256 + shifted++), b);
  return byteDecoder;
}
