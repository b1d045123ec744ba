/**
 * The routing decision: a pure function of one request's needs and a snapshot
 * of the backends, so it is tested without any engine and explained in full.
 *
 * Eligible backends serve the request's privacy class (a `private` request
 * never leaves `local` backends, whatever a rule says), are available (healthy,
 * breaker closed or probing), allowed for the tenant, and within its cost cap.
 * The first rule that matches and names an eligible backend puts its backends
 * first; then, by default, the cheapest backend predicted to meet the latency
 * budget and the deadline, else the fastest (to its end when a deadline is
 * given, else to its first token). The rest follow in the same order, as
 * fallbacks.
 */
import type { Rule } from "./rules.js";
import { matches } from "./rules.js";

export type PrivacyClass = "private" | "internal" | "public";
export const PRIVACY_CLASSES: readonly PrivacyClass[] = ["private", "internal", "public"];

export interface RouteInput {
  privacy: PrivacyClass;
  /** Time to first token the caller wants, ms. */
  latencyBudgetMs?: number;
  /** Time to the last token the caller wants, ms. */
  deadlineMs?: number;
  /** The most the caller pays per 1k tokens. */
  maxCostPer1k?: number;
  tenant?: string;
  /** Backends the tenant may use; absent = all. */
  allowed?: readonly string[];
  promptChars: number;
  maxTokens: number;
}

export interface Candidate {
  name: string;
  where: "local" | "remote";
  privacy: readonly PrivacyClass[];
  available: boolean;
  /** Predicted time to first token for this request, ms. */
  predictedTtftMs: number;
  /** Predicted time to its last token (maxTokens of them), ms. */
  predictedEndMs: number;
  /** Predicted cost per 1k tokens of this request. */
  costPer1k: number;
  /** A local engine with a free batch slot. */
  hasRoom: boolean;
}

export interface Decision {
  /** Backends to try, in order; empty when none is eligible. */
  order: string[];
  /** Why the first was chosen: "rule 2", "cheapest within budget" (or "... deadline", "... budget and deadline"), "fastest (none meets the budget)" (likewise), or why none is eligible. */
  reason: string;
  /** Every alias backend is remote and none is available, or local-only because no remote is: said in a header. */
  degraded: boolean;
}

/** Why `c` may not take the request, or undefined when it may. */
export function ineligible(input: RouteInput, c: Candidate): string | undefined {
  if (input.privacy === "private" && c.where !== "local") return "private requests stay local";
  if (!c.privacy.includes(input.privacy)) return `does not take ${input.privacy} requests`;
  if (input.allowed && !input.allowed.includes(c.name)) return "not allowed for the tenant";
  if (!c.available) return "unavailable";
  if (input.maxCostPer1k !== undefined && c.costPer1k > input.maxCostPer1k) return "over the cost cap";
  return undefined;
}

const meets = (input: RouteInput, c: Candidate) => c.predictedTtftMs <= (input.latencyBudgetMs ?? Infinity) && c.predictedEndMs <= (input.deadlineMs ?? Infinity);

// Cheapest of those that meet the budget and deadline first (ties: faster), then the rest, fastest first.
function byDefault(input: RouteInput, cs: Candidate[]): Candidate[] {
  const within = cs.filter((c) => meets(input, c)).sort((a, b) => a.costPer1k - b.costPer1k || a.predictedTtftMs - b.predictedTtftMs);
  const speed = (c: Candidate) => (input.deadlineMs === undefined ? c.predictedTtftMs : c.predictedEndMs);
  const over = cs.filter((c) => !meets(input, c)).sort((a, b) => speed(a) - speed(b) || a.predictedTtftMs - b.predictedTtftMs);
  return [...within, ...over];
}

// What the request asked for that the default choice weighs.
function targets(input: RouteInput): string {
  const named = [input.latencyBudgetMs !== undefined && "budget", input.deadlineMs !== undefined && "deadline"].filter(Boolean);
  return named.length === 2 ? "budget and deadline" : (named[0] || "budget");
}

export function decide(input: RouteInput, candidates: readonly Candidate[], rules: readonly Rule[] = []): Decision {
  const eligible = candidates.filter((c) => !ineligible(input, c));
  const remotes = candidates.filter((c) => c.where === "remote");
  const degraded = remotes.length > 0 && remotes.every((c) => !c.available);
  if (eligible.length === 0) {
    const why = candidates.map((c) => `${c.name}: ${ineligible(input, c)}`).join("; ");
    return { order: [], reason: `no eligible backend (${why || "none configured"})`, degraded };
  }
  const ordered = byDefault(input, eligible);
  const localHasRoom = eligible.some((c) => c.where === "local" && c.hasRoom);
  for (const [i, rule] of rules.entries()) {
    if (!matches(rule, input, localHasRoom)) continue;
    const chosen = ordered.filter((c) => rule.route === c.where || (Array.isArray(rule.route) && rule.route.includes(c.name)));
    if (chosen.length === 0) continue;
    return { order: [...chosen, ...ordered.filter((c) => !chosen.includes(c))].map((c) => c.name), reason: `rule ${i + 1}`, degraded };
  }
  const reason = meets(input, ordered[0]!) ? `cheapest within ${targets(input)}` : `fastest (none meets the ${targets(input)})`;
  return { order: ordered.map((c) => c.name), reason, degraded };
}
