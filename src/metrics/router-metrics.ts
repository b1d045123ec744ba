/**
 * Routing metrics: requests by alias, the backend that served them and why it
 * was chosen. The reason label is the decision's kind (rule_N, cheapest,
 * fastest, fallback, unroutable), never free text, so its values stay few.
 */
import { Counter, type Registry } from "prom-client";
import type { RouteInfo } from "../router/router.js";

export class RouterMetrics {
  private readonly routed: Counter<"alias" | "backend" | "reason">;

  constructor(registry: Registry) {
    this.routed = new Counter({
      name: "neoserve_routed_total",
      help: "Requests a router sent, by alias, the backend that served it (none: no eligible backend) and the reason",
      labelNames: ["alias", "backend", "reason"],
      registers: [registry],
    });
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
  return "fallback";
}
