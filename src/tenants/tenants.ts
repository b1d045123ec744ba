/**
 * Tenants: who a request comes from (its API key, stored as a SHA-256 hash),
 * what it may use (aliases, backends, a privacy class its requests never go
 * below) and its limits:
 * requests and tokens per minute (token buckets: a request reserves its
 * prompt estimate plus max_tokens, at most a minute's allowance, gets back
 * what it did not use and is charged what it used beyond),
 * concurrent requests, and a budget per UTC day and month in the currency of
 * the configured prices. Spend is kept in memory (the audit trail has every
 * request's cost).
 */
import { createHash } from "node:crypto";
import type { PrivacyClass } from "../router/route-decision.js";
import { TokenBucket } from "./token-bucket.js";

export interface TenantConfig {
  /** SHA-256 hashes (hex) of the tenant's API keys: `neoserve keys hash KEY` prints one. */
  keys: string[];
  /** Model names (aliases) it may call; absent: all. */
  models?: string[];
  /** Backends its routed requests may reach; absent: all. */
  backends?: string[];
  /** Its requests' privacy class when they name none, and the floor when they do (a request may ask for more care, not less). */
  privacy?: PrivacyClass;
  requestsPerMinute?: number;
  tokensPerMinute?: number;
  maxConcurrent?: number;
  budgetPerDay?: number;
  budgetPerMonth?: number;
  /** Keep prompt and output text in the audit trail (otherwise only their hashes). */
  auditText?: boolean;
  /** Its share in fair queueing, relative to other tenants. Default 1. */
  weight?: number;
}

/** Why a tenant's request is refused: a 429 with this code and Retry-After. */
export interface LimitRefusal {
  code: "rate_limit_exceeded" | "concurrency_limit_exceeded" | "budget_exceeded";
  message: string;
  retryAfterSeconds: number;
}

/** A request a tenant was allowed: give it back to settle(). */
export interface Admission {
  reservedTokens: number;
}

export const hashKey = (key: string) => createHash("sha256").update(key).digest("hex");

const dayOf = (t: Date) => t.toISOString().slice(0, 10);
const monthOf = (t: Date) => t.toISOString().slice(0, 7);
const secondsUntil = (t: Date, next: Date) => Math.max(1, Math.ceil((next.getTime() - t.getTime()) / 1000));

export class Tenant {
  private readonly requests: TokenBucket | undefined;
  private readonly tokens: TokenBucket | undefined;
  private inFlight = 0;
  private day = "";
  private month = "";
  private spentDay = 0;
  private spentMonth = 0;

  constructor(
    readonly name: string,
    readonly config: TenantConfig,
    private readonly clock: { now(): number; date(): Date } = { now: () => performance.now(), date: () => new Date() },
  ) {
    if (config.requestsPerMinute !== undefined) this.requests = new TokenBucket(config.requestsPerMinute, clock.now);
    if (config.tokensPerMinute !== undefined) this.tokens = new TokenBucket(config.tokensPerMinute, clock.now);
  }

  mayUse(model: string): boolean {
    return !this.config.models || this.config.models.includes(model);
  }

  /** Lets a request in, or says which limit refuses it; nothing is taken from a refused request. */
  admit(estimatedTokens: number): Admission | LimitRefusal {
    const now = this.clock.date();
    this.rollOver(now);
    const c = this.config;
    if (c.budgetPerDay !== undefined && this.spentDay >= c.budgetPerDay) {
      const tomorrow = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate() + 1));
      return { code: "budget_exceeded", message: `tenant ${this.name} has spent its daily budget (${c.budgetPerDay})`, retryAfterSeconds: secondsUntil(now, tomorrow) };
    }
    if (c.budgetPerMonth !== undefined && this.spentMonth >= c.budgetPerMonth) {
      const next = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + 1, 1));
      return { code: "budget_exceeded", message: `tenant ${this.name} has spent its monthly budget (${c.budgetPerMonth})`, retryAfterSeconds: secondsUntil(now, next) };
    }
    if (c.maxConcurrent !== undefined && this.inFlight >= c.maxConcurrent)
      return { code: "concurrency_limit_exceeded", message: `tenant ${this.name} has ${this.inFlight} requests in flight (at most ${c.maxConcurrent})`, retryAfterSeconds: 1 };
    const waitRequests = this.requests?.take(1) ?? 0;
    if (waitRequests > 0) return { code: "rate_limit_exceeded", message: `tenant ${this.name}: over ${c.requestsPerMinute} requests per minute`, retryAfterSeconds: Math.ceil(waitRequests / 1000) };
    // A reservation is what the bucket can hold; what the request uses beyond it is charged when it ends.
    const reserve = Math.min(estimatedTokens, this.tokens?.capacity ?? estimatedTokens);
    const waitTokens = this.tokens?.take(reserve) ?? 0;
    if (waitTokens > 0) {
      this.requests?.give(1);
      return { code: "rate_limit_exceeded", message: `tenant ${this.name}: over ${c.tokensPerMinute} tokens per minute`, retryAfterSeconds: Math.ceil(waitTokens / 1000) };
    }
    this.inFlight++;
    return { reservedTokens: reserve };
  }

  /** The request ended: its slot is free, unused tokens return to the bucket, its cost counts against the budgets. */
  settle(admission: Admission, usedTokens: number, cost: number): void {
    this.inFlight--;
    if (usedTokens < admission.reservedTokens) this.tokens?.give(admission.reservedTokens - usedTokens);
    else this.tokens?.charge(usedTokens - admission.reservedTokens);
    this.rollOver(this.clock.date());
    this.spentDay += cost;
    this.spentMonth += cost;
  }

  /** Spend so far this UTC day and month, and requests in flight. */
  usage(): { spentDay: number; spentMonth: number; inFlight: number } {
    this.rollOver(this.clock.date());
    return { spentDay: this.spentDay, spentMonth: this.spentMonth, inFlight: this.inFlight };
  }

  private rollOver(now: Date): void {
    if (dayOf(now) !== this.day) [this.day, this.spentDay] = [dayOf(now), 0];
    if (monthOf(now) !== this.month) [this.month, this.spentMonth] = [monthOf(now), 0];
  }
}

export class TenantRegistry {
  private readonly byHash = new Map<string, Tenant>();
  readonly tenants: Tenant[];

  constructor(configs: Record<string, TenantConfig>, clock?: ConstructorParameters<typeof Tenant>[2]) {
    this.tenants = Object.entries(configs).map(([name, c]) => new Tenant(name, c, clock));
    for (const t of this.tenants) for (const h of t.config.keys) this.byHash.set(h.toLowerCase(), t);
  }

  /** A tenant's share in fair queueing (1 for requests of no tenant). */
  weightOf(name: string): number {
    return this.tenants.find((t) => t.name === name)?.config.weight ?? 1;
  }

  /** The tenant whose key this is (looked up by the key's hash: a lookup's timing tells nothing of a key). */
  byKey(key: string): Tenant | undefined {
    return this.byHash.get(hashKey(key));
  }
}
