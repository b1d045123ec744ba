/** Per-tenant metrics for cost dashboards: tokens, cost, and requests by outcome. */
import { Counter, type Registry } from "prom-client";

export class TenantMetrics {
  private readonly tokens: Counter<"tenant" | "kind">;
  private readonly cost: Counter<"tenant">;
  private readonly requests: Counter<"tenant" | "outcome">;

  constructor(registry: Registry) {
    const registers = [registry];
    this.tokens = new Counter({ name: "neoserve_tenant_tokens_total", help: "Tokens by tenant and kind (prompt, completion)", labelNames: ["tenant", "kind"], registers });
    this.cost = new Counter({ name: "neoserve_tenant_cost_total", help: "What a tenant's requests cost, in the configured prices' currency", labelNames: ["tenant"], registers });
    this.requests = new Counter({ name: "neoserve_tenant_requests_total", help: "Requests by tenant and outcome (ok, a finish reason, or the limit that refused it)", labelNames: ["tenant", "outcome"], registers });
  }

  observe(tenant: string, outcome: string, promptTokens: number, completionTokens: number, cost: number): void {
    this.requests.inc({ tenant, outcome });
    if (promptTokens) this.tokens.inc({ tenant, kind: "prompt" }, promptTokens);
    if (completionTokens) this.tokens.inc({ tenant, kind: "completion" }, completionTokens);
    if (cost > 0) this.cost.inc({ tenant }, cost);
  }
}
