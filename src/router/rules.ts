/**
 * Routing rules, from the serve config, tried in order before the default
 * choice. Each names where matching requests go; every condition given must
 * hold (a comparison on a value the request did not give does not hold):
 *
 *   rules:
 *     - when: { privacy: private }
 *       route: local
 *     - when: { latency_budget_ms: { lte: 200 }, local_has_room: true }
 *       route: local
 *     - when: { prompt_chars: { gt: 4000 } }
 *       route: [gpu-pool, cloud]      # backend names
 *     - route: remote                 # no `when`: every request
 *
 * Conditions: privacy and tenant (a value or a list of them); latency_budget_ms,
 * deadline_ms, prompt_chars and max_tokens (a map of lt / lte / gt / gte / eq to numbers);
 * local_has_room (true or false: some eligible local backend has a free slot).
 * `route` is local, remote, or a list of backend names. A rule never overrides
 * eligibility: a private request still goes to local backends only.
 */
import { ConfigError } from "../errors.js";
import { PRIVACY_CLASSES, type PrivacyClass, type RouteInput } from "./route-decision.js";

type Comparison = Partial<Record<"lt" | "lte" | "gt" | "gte" | "eq", number>>;

export interface Rule {
  when: {
    privacy?: PrivacyClass[];
    tenant?: string[];
    latency_budget_ms?: Comparison;
    deadline_ms?: Comparison;
    prompt_chars?: Comparison;
    max_tokens?: Comparison;
    local_has_room?: boolean;
  };
  route: "local" | "remote" | string[];
}

const MAX_RULES = 256;
const COMPARATORS = ["lt", "lte", "gt", "gte", "eq"] as const;
const NUMERIC = ["latency_budget_ms", "deadline_ms", "prompt_chars", "max_tokens"] as const;

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);
const show = (v: unknown) => JSON.stringify(v)?.slice(0, 80);

function oneOrList(v: unknown, where: string, allowed?: readonly string[]): string[] {
  const list = Array.isArray(v) ? v : [v];
  if (list.length === 0 || list.length > 1024) throw new ConfigError(`${where} must be a value or a non-empty list`);
  for (const x of list) {
    if (typeof x !== "string" || x.length === 0 || x.length > 256) throw new ConfigError(`${where} must hold non-empty strings, got ${show(x)}`);
    if (allowed && !allowed.includes(x)) throw new ConfigError(`${where}: ${show(x)} is not one of ${allowed.join(", ")}`);
  }
  return list as string[];
}

function comparison(v: unknown, where: string): Comparison {
  if (!isObject(v) || Object.keys(v).length === 0) throw new ConfigError(`${where} must be a map of ${COMPARATORS.join(" / ")} to numbers`);
  for (const [op, n] of Object.entries(v)) {
    if (!(COMPARATORS as readonly string[]).includes(op)) throw new ConfigError(`${where}.${op} is not a comparison (${COMPARATORS.join(", ")})`);
    if (typeof n !== "number" || !Number.isFinite(n)) throw new ConfigError(`${where}.${op} must be a number, got ${show(n)}`);
  }
  return v as Comparison;
}

/** The rules of a config's `rules:` list; ConfigError naming the rule and field otherwise. `backends` are the names a route may give. */
export function parseRules(value: unknown, where: string, backends: readonly string[]): Rule[] {
  if (!Array.isArray(value) || value.length > MAX_RULES) throw new ConfigError(`${where} must be a list of at most ${MAX_RULES} rules`);
  return value.map((raw, i) => {
    const at = `${where}[${i}]`;
    if (!isObject(raw)) throw new ConfigError(`${at} must be a mapping with route (and when)`);
    for (const key of Object.keys(raw)) if (key !== "when" && key !== "route") throw new ConfigError(`${at}.${key} is not a rule field (when, route)`);
    const when: Rule["when"] = {};
    if (raw.when !== undefined) {
      if (!isObject(raw.when)) throw new ConfigError(`${at}.when must be a mapping of conditions`);
      for (const [key, v] of Object.entries(raw.when)) {
        const field = `${at}.when.${key}`;
        if (key === "privacy") when.privacy = oneOrList(v, field, PRIVACY_CLASSES) as PrivacyClass[];
        else if (key === "tenant") when.tenant = oneOrList(v, field);
        else if ((NUMERIC as readonly string[]).includes(key)) when[key as (typeof NUMERIC)[number]] = comparison(v, field);
        else if (key === "local_has_room") {
          if (typeof v !== "boolean") throw new ConfigError(`${field} must be true or false`);
          when.local_has_room = v;
        } else throw new ConfigError(`${field} is not a condition (privacy, tenant, ${NUMERIC.join(", ")}, local_has_room)`);
      }
    }
    let route: Rule["route"];
    if (raw.route === "local" || raw.route === "remote") route = raw.route;
    else if (raw.route === undefined) throw new ConfigError(`${at}.route is required (local, remote, or a list of backend names)`);
    else {
      route = oneOrList(raw.route, `${at}.route`);
      for (const name of route) if (!backends.includes(name)) throw new ConfigError(`${at}.route: no backend named ${show(name)} (known: ${backends.join(", ")})`);
    }
    return { when, route };
  });
}

function holds(c: Comparison | undefined, value: number | undefined): boolean {
  if (!c) return true;
  if (value === undefined) return false;
  return (
    (c.lt === undefined || value < c.lt) &&
    (c.lte === undefined || value <= c.lte) &&
    (c.gt === undefined || value > c.gt) &&
    (c.gte === undefined || value >= c.gte) &&
    (c.eq === undefined || value === c.eq)
  );
}

export function matches(rule: Rule, input: RouteInput, localHasRoom: boolean): boolean {
  const w = rule.when;
  return (
    (!w.privacy || w.privacy.includes(input.privacy)) &&
    (!w.tenant || (input.tenant !== undefined && w.tenant.includes(input.tenant))) &&
    holds(w.latency_budget_ms, input.latencyBudgetMs) &&
    holds(w.deadline_ms, input.deadlineMs) &&
    holds(w.prompt_chars, input.promptChars) &&
    holds(w.max_tokens, input.maxTokens) &&
    (w.local_has_room === undefined || w.local_has_room === localHasRoom)
  );
}
