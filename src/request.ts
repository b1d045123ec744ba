/**
 * A GenerateRequest made ready for an engine: its prompt as token ids and its
 * parameters as the addon reads them. Model and ModelPool both prepare
 * requests here, so both reject the same requests with the same errors.
 */
import type { RawModelInfo, RawRequest, RawRequestLimits } from "./addon.js";
import { InvalidRequestError } from "./errors.js";
import type { TextTokenizer } from "./tokenizer/tokenizer.js";
import type { GenerateRequest } from "./types.js";

export interface PreparedRequest {
  prompt: number[];
  /** Stop strings, matched on the streamed text. */
  stop: string[];
  raw: RawRequest;
}

export function prepareRequest(request: GenerateRequest, tokenizer: TextTokenizer): PreparedRequest {
  if (request === null || typeof request !== "object" || Array.isArray(request))
    throw new InvalidRequestError("generate() needs a request object");
  if (request.signal !== undefined && !(request.signal instanceof AbortSignal))
    throw new InvalidRequestError("signal must be an AbortSignal");
  const prompt = promptTokens(request, tokenizer);
  const stop = stopStrings(request.stop);
  const raw: RawRequest = {
    tokens: Int32Array.from(prompt),
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
    priority: request.priority,
    deadlineMs: request.deadlineMs,
  };
  return { prompt, stop, raw };
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

function promptTokens(request: GenerateRequest, tokenizer: TextTokenizer): number[] {
  const given = [request.prompt, request.tokens, request.messages].filter((x) => x !== undefined).length;
  if (given !== 1) throw new InvalidRequestError("give exactly one of prompt, tokens or messages");
  if (request.tokens !== undefined) {
    // Checked before Int32Array.from, which would wrap 2^32 + 5 to 5.
    if (!Array.isArray(request.tokens) || !request.tokens.every((t) => Number.isInteger(t) && t >= 0 && t <= 0x7fffffff))
      throw new InvalidRequestError("tokens must be an array of token ids (integers in [0, 2^31))");
    return [...request.tokens];
  }
  if (request.messages !== undefined)
    return tokenizer.encodeChat(request.messages, { addGenerationPrompt: true, parseSpecialTokens: request.parseSpecialTokens === true });
  if (typeof request.prompt !== "string") throw new InvalidRequestError("prompt must be a string");
  return tokenizer.encode(request.prompt, { addSpecialTokens: true });
}
