/**
 * Who pays for each completion, and the record of it: a tenant's request is
 * admitted against its limits (403 for a model it may not use, 429 with the
 * limit's code and Retry-After), carries the tenant's routing defaults, and
 * when it ends is settled (slot, unused tokens, cost against the budgets),
 * counted in the tenant metrics and written to the audit trail.
 */
import type { AuditLog } from "../audit/audit-log.js";
import { sha256 } from "../audit/audit-log.js";
import type { Engine } from "../engine.js";
import { reasonKind } from "../metrics/router-metrics.js";
import type { TenantMetrics } from "../metrics/tenant-metrics.js";
import { type Price, requestCost } from "../router/cost.js";
import type { PrivacyClass } from "../router/route-decision.js";
import { requestSize } from "../request.js";
import type { Admission, Tenant } from "../tenants/tenants.js";
import type { RunSummary } from "./completion-run.js";
import { HttpError } from "./http-errors.js";
import type { CompletionPlan } from "./openai-requests.js";

export interface Ticket {
  requestId: string;
  model: string;
  tenant: Tenant | undefined;
  admission: Admission | undefined;
  plan: CompletionPlan;
}

export class Accounting {
  constructor(
    private readonly options: { audit?: AuditLog; metrics?: TenantMetrics; log: (err: unknown) => void },
  ) {}

  /** Lets the request in for its tenant (and sets the tenant's routing defaults on it), or throws the 403/429. */
  admit(requestId: string, model: string, tenant: Tenant | undefined, plan: CompletionPlan): Ticket {
    if (!tenant) return { requestId, model, tenant, admission: undefined, plan };
    if (!tenant.mayUse(model)) throw new HttpError(403, `tenant ${tenant.name} may not use model ${JSON.stringify(model)}`, "model", "model_not_allowed");
    const estimate = plan.requests.reduce((n, r) => {
      const size = requestSize(r);
      return n + size.promptTokens + size.maxTokens;
    }, 0);
    const admitted = tenant.admit(estimate);
    if ("code" in admitted) {
      this.record({ requestId, model, tenant, admission: undefined, plan }, undefined, 429, admitted.code);
      throw new HttpError(429, admitted.message, null, admitted.code, admitted.retryAfterSeconds);
    }
    for (const r of plan.requests)
      r.route = { ...r.route, tenant: tenant.name, privacy: stricter(r.route?.privacy, tenant.config.privacy), allowedBackends: tenant.config.backends };
    return { requestId, model, tenant, admission: admitted, plan };
  }

  /** The request ended (summary undefined: it failed before any engine took it, with `status`). */
  settle(ticket: Ticket, engine: Engine | undefined, price: Price | undefined, summary: RunSummary | undefined, status: number): void {
    const cost = summary ? summary.results.reduce((sum, r, i) => sum + (summary.routes[i]?.cost ?? requestCost(price, r.usage, engine)), 0) : 0;
    if (ticket.tenant && ticket.admission) ticket.tenant.settle(ticket.admission, (summary?.promptTokens ?? 0) + (summary?.completionTokens ?? 0), cost);
    this.record(ticket, summary, summary?.status ?? status, summary ? (summary.finishReasons[0] ?? "ok") : `status_${status}`, cost);
  }

  private record(ticket: Ticket, summary: RunSummary | undefined, status: number, outcome: string, cost = 0): void {
    const promptTokens = summary?.promptTokens ?? 0;
    const completionTokens = summary?.completionTokens ?? 0;
    if (ticket.tenant) this.options.metrics?.observe(ticket.tenant.name, status === 200 ? "ok" : outcome, promptTokens, completionTokens, cost);
    if (!this.options.audit) return;
    const route = summary?.routes[0];
    const prompt = JSON.stringify(ticket.plan.requests.map((r) => r.messages ?? r.prompt ?? r.tokens));
    const output = JSON.stringify(summary?.results.map((r) => r.text) ?? []);
    const withText = ticket.tenant?.config.auditText === true;
    this.options.audit
      .append({
        time: new Date().toISOString(),
        requestId: ticket.requestId,
        tenant: ticket.tenant?.name ?? null,
        model: ticket.model,
        backend: route?.backend ?? (summary ? ticket.model : null),
        reason: route ? reasonKind(route) : null,
        // The decision's own words ("rule 2", "fallback from cloud") and how many backends it took.
        why: route?.reason ?? null,
        attempts: route?.attempts ?? null,
        privacy: route?.privacy ?? ticket.plan.requests[0]?.route?.privacy ?? null,
        promptTokens,
        completionTokens,
        cost,
        finishReason: outcome,
        status,
        promptSha256: sha256(prompt),
        outputSha256: sha256(output),
        ...(withText ? { prompt, output } : {}),
      })
      .catch((err: unknown) => this.options.log(err));
  }
}

// A tenant's privacy class is a floor: a request may ask for more care, never for less.
const OPENNESS: Record<PrivacyClass, number> = { private: 0, internal: 1, public: 2 };
function stricter(asked: PrivacyClass | undefined, floor: PrivacyClass | undefined): PrivacyClass | undefined {
  if (asked === undefined || floor === undefined) return asked ?? floor;
  return OPENNESS[asked] <= OPENNESS[floor] ? asked : floor;
}
