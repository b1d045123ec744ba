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
  if (request === null || typeof request !== "object") throw new InvalidRequestError("generate() needs a request object");
  const prompt = promptTokens(request, tokenizer);
  const stop = typeof request.stop === "string" ? [request.stop] : [...(request.stop ?? [])];
  if (stop.some((s) => typeof s !== "string" || s.length === 0))
    throw new InvalidRequestError("stop must be a non-empty string or an array of them");
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

function promptTokens(request: GenerateRequest, tokenizer: TextTokenizer): number[] {
  const given = [request.prompt, request.tokens, request.messages].filter((x) => x !== undefined).length;
  if (given !== 1) throw new InvalidRequestError("give exactly one of prompt, tokens or messages");
  if (request.tokens !== undefined) {
    if (!Array.isArray(request.tokens) || !request.tokens.every((t) => Number.isInteger(t)))
      throw new InvalidRequestError("tokens must be an array of integer token ids");
    return [...request.tokens];
  }
  if (request.messages !== undefined) {
    const text = tokenizer.applyChatTemplate(request.messages, { addGenerationPrompt: true });
    return tokenizer.encode(text, { addSpecialTokens: false });
  }
  if (typeof request.prompt !== "string") throw new InvalidRequestError("prompt must be a string");
  return tokenizer.encode(request.prompt, { addSpecialTokens: true });
}
