/**
 * Routing metrics: requests by alias, the backend that served them and why it
 * was chosen. The reason label is the decision's kind (rule_N, cheapest,
 * fastest, canary, fallback, unroutable), never free text, so its values stay few.
 */
import { Counter, Histogram, type Registry } from "prom-client";
import type { RouteInfo, ShadowReport } from "../router/router.js";

export class RouterMetrics {
  private readonly routed: Counter<"alias" | "backend" | "reason">;
  private readonly shadows: Counter<"alias" | "backend" | "outcome">;
  private readonly agreement: Histogram<"alias" | "backend">;
  private readonly ttftRatio: Histogram<"alias" | "backend">;

  constructor(registry: Registry) {
    const registers = [registry];
    this.shadows = new Counter({ name: "neoserve_shadow_requests_total", help: "Shadowed requests by alias, shadow backend and outcome (compared, shadow_failed, primary_failed)", labelNames: ["alias", "backend", "outcome"], registers });
    this.agreement = new Histogram({
      name: "neoserve_shadow_agreement",
      help: "How much of a shadow's text matches the caller's (common prefix over the longer text; 1 = the same)",
      labelNames: ["alias", "backend"],
      buckets: [0, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99, 1],
      registers,
    });
    this.ttftRatio = new Histogram({ name: "neoserve_shadow_ttft_ratio", help: "A shadow's time to first token over the caller's", labelNames: ["alias", "backend"], buckets: [0.25, 0.5, 0.8, 1, 1.25, 2, 4, 8], registers });
    this.routed = new Counter({
      name: "neoserve_routed_total",
      help: "Requests a router sent, by alias, the backend that served it (none: no eligible backend) and the reason",
      labelNames: ["alias", "backend", "reason"],
      registers: [registry],
    });
  }

  shadow(report: ShadowReport): void {
    const labels = { alias: report.alias, backend: report.backend };
    this.shadows.inc({ ...labels, outcome: report.outcome });
    if (report.agreement !== null) this.agreement.observe(labels, report.agreement);
    if (report.ttftRatio !== null) this.ttftRatio.observe(labels, report.ttftRatio);
  }

  observe(route: RouteInfo): void {
    this.routed.inc({ alias: route.alias, backend: route.backend ?? "none", reason: reasonKind(route) });
  }
}

export function reasonKind(route: Pick<RouteInfo, "reason" | "backend">): string {
  if (route.backend === undefined || route.reason.startsWith("no eligible")) return "unroutable";
  if (route.reason.startsWith("rule ")) return `rule_${route.reason.slice(5)}`;
  if (route.reason.startsWith("cheapest")) return "cheapest";
  if (route.reason.startsWith("fastest")) return "fastest";
  if (route.reason === "canary") return "canary";
  return "fallback";
}
