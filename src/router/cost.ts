/**
 * What a request costs on a backend: local hardware by the hour, spread over
 * the tokens it generates per second of engine time (Model.stats()
 * tokensPerSecond); a remote by its price per 1k prompt and completion tokens.
 * A local engine that has not generated yet has no rate: it costs 0.
 */
import type { Engine, EngineStats } from "../engine.js";

export interface Price {
  perHour?: number;
  per1kPrompt?: number;
  per1kCompletion?: number;
}

const perToken = (price: Price, tokensPerSecond: number | undefined) =>
  price.perHour !== undefined && tokensPerSecond && tokensPerSecond > 0 ? price.perHour / (tokensPerSecond * 3600) : 0;

/** Expected cost per 1k tokens of a request of this shape, for routing. */
export function costPer1k(price: Price | undefined, tokensPerSecond: number | undefined, promptTokens: number, maxTokens: number): number {
  if (!price) return 0;
  if (price.perHour !== undefined) return perToken(price, tokensPerSecond) * 1000;
  const total = promptTokens + maxTokens;
  return total > 0 ? ((price.per1kPrompt ?? 0) * promptTokens + (price.per1kCompletion ?? 0) * maxTokens) / total : 0;
}

/** An engine's generated tokens per second of engine time, when it measures it (a Model does). */
export const tokensPerSecond = (stats: EngineStats): number | undefined => (stats as EngineStats & { tokensPerSecond?: number }).tokensPerSecond;

/** What a finished request cost on `engine` (whose rate is read only for a price by the hour). */
export function requestCost(price: Price | undefined, usage: { promptTokens: number; completionTokens: number }, engine: Engine | undefined): number {
  if (!price) return 0;
  if (price.perHour !== undefined) return perToken(price, engine && tokensPerSecond(engine.stats())) * usage.completionTokens;
  return ((price.per1kPrompt ?? 0) * usage.promptTokens + (price.per1kCompletion ?? 0) * usage.completionTokens) / 1000;
}
