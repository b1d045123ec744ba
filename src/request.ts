/**
 * A GenerateRequest made ready for an engine: its shape checked, its prompt as
 * token ids or as text to tokenize, its parameters as the addon reads them.
 * Model and ModelPool both prepare requests here, so both reject the same
 * requests with the same errors.
 */
import { addon, type RawModelInfo, type RawRequest, type RawRequestLimits } from "./addon.js";
import { fromNative, InvalidRequestError, NeoserveError } from "./errors.js";
import { validateMessages } from "./tokenizer/chat-template.js";
import type { GenerationStream } from "./generation-stream.js";
import type { TextInput, TextWorkers } from "./tokenizer/text-workers.js";
import type { FinishReason, GenerateRequest } from "./types.js";

export interface ParsedRequest {
  /** The prompt: token ids as given, or text the model's text workers tokenize. */
  input: { tokens: number[] } | TextInput;
  /** Stop strings, matched on the streamed text. */
  stop: string[];
  /** The request as the addon reads it, its prompt tokens empty until known (withPrompt). */
  raw: RawRequest;
}

/** Checks a request's shape and types; throws InvalidRequestError. Needs no tokenizer. */
export function parseRequest(request: GenerateRequest): ParsedRequest {
  if (request === null || typeof request !== "object" || Array.isArray(request))
    throw new InvalidRequestError("generate() needs a request object");
  if (request.signal !== undefined && !(request.signal instanceof AbortSignal))
    throw new InvalidRequestError("signal must be an AbortSignal");
  const input = promptInput(request);
  const stop = stopStrings(request.stop);
  const raw: RawRequest = {
    tokens: "tokens" in input ? Int32Array.from(input.tokens) : new Int32Array(0),
    maxTokens: request.maxTokens,
    temperature: request.temperature,
    topK: request.topK,
    topP: request.topP,
    minP: request.minP,
    repetitionPenalty: request.repetitionPenalty,
    frequencyPenalty: request.frequencyPenalty,
    presencePenalty: request.presencePenalty,
    seed: request.seed,
    stopTokenIds: request.stopTokenIds, // the addon checks each is a 32-bit integer
    ignoreEos: request.ignoreEos,
    returnLogits: request.returnLogits,
    logprobs: request.logprobs, // native code checks it is an integer in [0, 20]
    priority: request.priority,
    deadlineMs: request.deadlineMs,
  };
  return { input, stop, raw };
}

/**
 * Throws, as the engine would, what is wrong with the request's parameters and,
 * when it came as ids, its prompt; a text prompt is checked once tokenized.
 */
export function checkAtOnce(parsed: ParsedRequest, limits: RawRequestLimits): void {
  const raw = "tokens" in parsed.input ? parsed.raw : { ...parsed.raw, tokens: Int32Array.of(0) };
  try {
    addon().checkRequest(raw, limits);
  } catch (err) {
    throw fromNative(err);
  }
}

// The request with its prompt, `elapsedMs` after generate() was called: a
// deadline counts from generate(), tokenizing included. Null when it has passed.
function withPrompt(raw: RawRequest, ids: Int32Array, elapsedMs: number): RawRequest | null {
  const budget = raw.deadlineMs ?? 0; // 0: no deadline
  if (budget > 0 && budget <= elapsedMs) return null;
  return { ...raw, tokens: ids, deadlineMs: budget > 0 ? budget - elapsedMs : raw.deadlineMs };
}

/**
 * Gives `start` the request, its prompt ids filled in, once they are known: at
 * once when the request came with ids (a refusal is thrown to generate()'s
 * caller), else when the text workers have tokenized its text (a refusal,
 * theirs or start's, ends the stream and rejects `stream.accepted`). `start`
 * queues the request, or returns why it cannot; the stream is then admitted.
 * A deadline counts from `startedAt` (generate()), tokenizing included.
 */
export function admitWhenTokenized(
  parsed: ParsedRequest,
  text: TextWorkers,
  stream: GenerationStream,
  startedAt: number,
  start: (raw: RawRequest) => NeoserveError | undefined,
): void {
  const submit = (ids: Int32Array): NeoserveError | undefined => {
    const raw = withPrompt(parsed.raw, ids, performance.now() - startedAt);
    const refused = raw ? start(raw) : new NeoserveError("deadline_exceeded", "the deadline passed while the prompt was tokenized");
    if (!refused) stream.admit(ids.length);
    return refused;
  };
  if ("tokens" in parsed.input) {
    const refused = submit(parsed.raw.tokens);
    if (refused) throw refused;
    return;
  }
  const refuse = (err: NeoserveError) => stream.refuse(err, refusalReason(err));
  text.encode(parsed.input, () => stream.finished).then((ids) => {
    if (stream.finished) return; // cancelled while its text was tokenized
    const refused = submit(ids);
    if (refused) refuse(refused);
  }, refuse);
}

/** The finish reason of a request its engine refused with `error`. */
function refusalReason(error: NeoserveError): FinishReason {
  if (error.code === "queue_full" || error.code === "cancelled" || error.code === "deadline_exceeded") return error.code;
  return error.code === "disposed" ? "cancelled" : "error";
}

/** What the model can take, for addon().checkRequest. */
export function requestLimits(info: RawModelInfo): RawRequestLimits {
  return { vocabSize: info.vocabSize, maxContext: info.maxContext, kvBlockSize: info.kv.blockSize, kvBlocks: info.kv.numBlocks };
}

function stopStrings(stop: unknown): string[] {
  const list = typeof stop === "string" ? [stop] : stop === undefined ? [] : stop;
  if (!Array.isArray(list) || list.some((s) => typeof s !== "string" || s.length === 0))
    throw new InvalidRequestError("stop must be a non-empty string or an array of them");
  return [...list];
}

function promptInput(request: GenerateRequest): ParsedRequest["input"] {
  const given = [request.prompt, request.tokens, request.messages].filter((x) => x !== undefined).length;
  if (given !== 1) throw new InvalidRequestError("give exactly one of prompt, tokens or messages");
  if (request.tokens !== undefined) {
    // Checked before Int32Array.from, which would wrap 2^32 + 5 to 5.
    if (!Array.isArray(request.tokens) || !request.tokens.every((t) => Number.isInteger(t) && t >= 0 && t <= 0x7fffffff))
      throw new InvalidRequestError("tokens must be an array of token ids (integers in [0, 2^31))");
    return { tokens: [...request.tokens] };
  }
  if (request.messages !== undefined) {
    validateMessages(request.messages);
    return { messages: request.messages.map((m) => ({ role: m.role, content: m.content })), parseSpecialTokens: request.parseSpecialTokens === true };
  }
  if (typeof request.prompt !== "string") throw new InvalidRequestError("prompt must be a string");
  return { prompt: request.prompt };
}

/**
 * A request's size before it is tokenized, for routing and rate limits: its
 * prompt in characters (ids count 4 each) and in tokens (ids exactly, text at
 * about 4 characters a token), and the tokens it may generate.
 */
export function requestSize(request: GenerateRequest): { promptChars: number; promptTokens: number; maxTokens: number } {
  const maxTokens = request.maxTokens ?? addon().defaultMaxTokens;
  if (request.tokens) return { promptChars: request.tokens.length * 4, promptTokens: request.tokens.length, maxTokens };
  const chars = request.prompt?.length ?? request.messages?.reduce((n, m) => n + m.content.length, 0) ?? 0;
  return { promptChars: chars, promptTokens: Math.ceil(chars / 4), maxTokens };
}
