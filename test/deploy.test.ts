// The Dockerfile and the Kubernetes examples cannot run here: they are parsed,
// and what they say is checked against the server itself — its port, its
// probe routes, its drain time, the flags `neoserve serve` takes, the metric
// the autoscaler reads.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { Command } from "commander";
import { describe, expect, it } from "vitest";
import { parseAllDocuments } from "yaml";
import { registerServe } from "../src/cli/serve.js";
import { SERVE_DEFAULTS } from "../src/server/config.js";
import { createServer } from "../src/server/create-server.js";
import { repoRoot } from "./helpers/paths.js";

type Json = Record<string, any>;

const serveFlags = (() => {
  const program = new Command();
  registerServe(program);
  return new Set(program.commands[0]!.options.flatMap((o) => [o.long, o.short].filter(Boolean) as string[]));
})();

function flagValue(args: string[], flag: string): string | undefined {
  const i = args.indexOf(flag);
  return i >= 0 ? args[i + 1] : undefined;
}

async function routeStatus(path: string): Promise<number> {
  const app = createServer({ models: {}, logger: false });
  try {
    return (await app.inject({ method: "GET", url: path })).statusCode;
  } finally {
    await app.close();
  }
}

describe("the Dockerfile", () => {
  const dockerfile = readFileSync(join(repoRoot, "Dockerfile"), "utf8");
  it("builds in one stage and runs as a non-root user in another, serving on the default port", () => {
    expect(dockerfile.match(/^FROM /gm)).toHaveLength(2);
    expect(dockerfile).toMatch(/^USER node$/m);
    expect(dockerfile).toMatch(new RegExp(`^EXPOSE ${SERVE_DEFAULTS.port}$`, "m"));
    const cmd = JSON.parse(/^CMD (\[.*\])$/m.exec(dockerfile)![1]!) as string[];
    expect(cmd[0]).toBe("serve");
    for (const a of cmd.slice(1).filter((a) => a.startsWith("-"))) expect(serveFlags).toContain(a);
    expect(flagValue(cmd, "--port")).toBe(String(SERVE_DEFAULTS.port));
  });
});

describe.each(["neoserve.yaml", "neoserve-mig.yaml"])("deploy/kubernetes/%s", (file) => {
  const docs = parseAllDocuments(readFileSync(join(repoRoot, "deploy", "kubernetes", file), "utf8")).map((d) => d.toJS() as Json);
  const deployment = docs.find((d) => d.kind === "Deployment")!;
  const pod = deployment.spec.template.spec as Json;
  const container = pod.containers[0] as Json;
  const args = container.args as string[];

  it("starts `neoserve serve` with flags it has, on the port its probes use", () => {
    expect(args[0]).toBe("serve");
    for (const a of args.slice(1).filter((a) => a.startsWith("-"))) expect(serveFlags).toContain(a);
    const port = Number(flagValue(args, "--port") ?? SERVE_DEFAULTS.port);
    expect(container.ports[0].containerPort).toBe(port);
    expect(container.readinessProbe.httpGet.port).toBe(container.ports[0].name);
  });

  it("probes /ready and /health, which the server answers without a key", async () => {
    expect(container.readinessProbe.httpGet.path).toBe("/ready");
    expect(container.livenessProbe.httpGet.path).toBe("/health");
    expect(await routeStatus("/ready")).toBe(200); // models given: ready (503 while loading or draining)
    expect(await routeStatus("/health")).toBe(200);
  });

  it("gives the drain its time: grace period >= preStop pause + --shutdown-timeout", () => {
    const drain = Number(flagValue(args, "--shutdown-timeout") ?? SERVE_DEFAULTS.shutdownTimeout);
    const preStop = Number((container.lifecycle.preStop.exec.command as string[]).at(-1));
    expect(pod.terminationGracePeriodSeconds).toBeGreaterThanOrEqual(drain + preStop);
    expect(pod.securityContext.runAsNonRoot).toBe(true);
  });
});

describe("the autoscaler", () => {
  it("reads a metric the engines export", () => {
    const docs = parseAllDocuments(readFileSync(join(repoRoot, "deploy", "kubernetes", "neoserve.yaml"), "utf8")).map((d) => d.toJS() as Json);
    const hpa = docs.find((d) => d.kind === "HorizontalPodAutoscaler")!;
    const metric = hpa.spec.metrics[0].pods.metric.name as string;
    expect(readFileSync(join(repoRoot, "src", "metrics", "engine-metrics.ts"), "utf8")).toContain(`"${metric}"`);
  });

  it("the MIG variant requests a MIG slice", () => {
    const docs = parseAllDocuments(readFileSync(join(repoRoot, "deploy", "kubernetes", "neoserve-mig.yaml"), "utf8")).map((d) => d.toJS() as Json);
    const limits = docs[0]!.spec.template.spec.containers[0].resources.limits as Record<string, number>;
    expect(Object.keys(limits).some((k) => /^nvidia\.com\/mig-\dg\.\d+gb$/.test(k))).toBe(true);
  });
});
