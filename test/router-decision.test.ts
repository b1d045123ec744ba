// The routing decision as a pure function over a snapshot, and the rule
// language's parser with a table of hostile rule files.
import { describe, expect, it } from "vitest";
import { ConfigError } from "../src/errors.js";
import { type Candidate, decide, type RouteInput } from "../src/router/route-decision.js";
import { parseRules } from "../src/router/rules.js";

const local = (over: Partial<Candidate> = {}): Candidate => ({
  name: "cpu",
  where: "local",
  privacy: ["private", "internal", "public"],
  available: true,
  predictedTtftMs: 50,
  predictedEndMs: 2000,
  costPer1k: 0.01,
  hasRoom: true,
  ...over,
});
const remote = (over: Partial<Candidate> = {}): Candidate => ({
  name: "cloud",
  where: "remote",
  privacy: ["internal", "public"],
  available: true,
  predictedTtftMs: 300,
  predictedEndMs: 900,
  costPer1k: 0.5,
  hasRoom: true,
  ...over,
});
const req = (over: Partial<RouteInput> = {}): RouteInput => ({ privacy: "internal", promptChars: 100, maxTokens: 64, ...over });
const NAMES = ["cpu", "cloud", "gpu"];

describe("decide", () => {
  it("picks the cheapest backend that meets the latency budget, the rest following as fallbacks", () => {
    expect(decide(req(), [remote(), local()])).toEqual({ order: ["cpu", "cloud"], reason: "cheapest within budget", degraded: false });
    // The local queue has filled: its predicted TTFT is past the budget, the remote is within it.
    expect(decide(req({ latencyBudgetMs: 500 }), [local({ predictedTtftMs: 900 }), remote()]).order).toEqual(["cloud", "cpu"]);
    // Nobody meets it: the fastest.
    const d = decide(req({ latencyBudgetMs: 100 }), [local({ predictedTtftMs: 900 }), remote({ predictedTtftMs: 300 })]);
    expect(d).toMatchObject({ order: ["cloud", "cpu"], reason: "fastest (none meets the budget)" });
  });

  it("weighs the deadline: the cheapest predicted to end in time, else the soonest to end", () => {
    // The local engine starts sooner but decodes slower: within 1 s only the remote ends.
    expect(decide(req({ deadlineMs: 1000 }), [local(), remote()])).toEqual({ order: ["cloud", "cpu"], reason: "cheapest within deadline", degraded: false });
    expect(decide(req({ deadlineMs: 5000 }), [local(), remote()]).order).toEqual(["cpu", "cloud"]);
    // Neither ends in time: the one that ends first, though the other starts first.
    expect(decide(req({ deadlineMs: 500 }), [local(), remote()])).toMatchObject({ order: ["cloud", "cpu"], reason: "fastest (none meets the deadline)" });
    // Both asked: each backend must meet both.
    expect(decide(req({ deadlineMs: 1000, latencyBudgetMs: 100 }), [local(), remote()])).toMatchObject({ order: ["cloud", "cpu"], reason: "fastest (none meets the budget and deadline)" });
    expect(decide(req({ deadlineMs: 3000, latencyBudgetMs: 100 }), [local(), remote()])).toMatchObject({ order: ["cpu", "cloud"], reason: "cheapest within budget and deadline" });
  });

  it("never sends a private request to a remote, not even by rule", () => {
    const rules = parseRules([{ route: "remote" }], "rules", NAMES);
    expect(decide(req({ privacy: "private" }), [remote({ privacy: ["private", "internal", "public"] }), local()], rules).order).toEqual(["cpu"]);
    const none = decide(req({ privacy: "private" }), [remote({ privacy: ["private"] })], rules);
    expect(none.order).toEqual([]);
    expect(none.reason).toMatch(/no eligible backend \(cloud: private requests stay local\)/);
  });

  it("leaves out what is unavailable, over the cost cap, outside the privacy classes or not allowed for the tenant", () => {
    const cs = [local({ name: "a", privacy: ["public"] }), local({ name: "b", available: false }), remote({ name: "c", costPer1k: 2 }), remote({ name: "d" }), local({ name: "e" })];
    expect(decide(req({ maxCostPer1k: 1, allowed: ["a", "b", "c", "d"] }), cs).order).toEqual(["d"]);
  });

  it("says when every remote is down (degraded: local only)", () => {
    const d = decide(req(), [local(), remote({ available: false })]);
    expect(d).toMatchObject({ order: ["cpu"], degraded: true });
    expect(decide(req(), [local()]).degraded).toBe(false);
  });

  it("tries rules in order; a rule that matches but names no eligible backend passes to the next", () => {
    const rules = parseRules(
      [
        { when: { privacy: "private" }, route: "local" },
        { when: { latency_budget_ms: { lte: 200 }, local_has_room: true }, route: "local" },
        { when: { prompt_chars: { gt: 4000 } }, route: ["gpu", "cloud"] },
        { when: { tenant: ["batch-jobs"] }, route: ["gpu"] },
        { route: "remote" },
      ],
      "rules",
      NAMES,
    );
    const cs = [local({ predictedTtftMs: 5000 }), remote()];
    expect(decide(req({ latencyBudgetMs: 150 }), cs, rules)).toMatchObject({ order: ["cpu", "cloud"], reason: "rule 2" });
    expect(decide(req({ latencyBudgetMs: 150 }), [local({ hasRoom: false }), remote()], rules)).toMatchObject({ order: ["cloud", "cpu"], reason: "rule 5" });
    expect(decide(req({ promptChars: 9000 }), cs, rules)).toMatchObject({ order: ["cloud", "cpu"], reason: "rule 3" });
    // "gpu" is not among the candidates: rule 4 names no eligible backend.
    expect(decide(req({ tenant: "batch-jobs" }), cs, rules).reason).toBe("rule 5");
    // deadline_ms compares the request's deadline.
    const byDeadline = parseRules([{ when: { deadline_ms: { lt: 1000 } }, route: "local" }], "rules", NAMES);
    expect(decide(req({ deadlineMs: 500 }), [remote({ predictedTtftMs: 1 }), local()], byDeadline)).toMatchObject({ order: ["cpu", "cloud"], reason: "rule 1" });
    expect(decide(req({ deadlineMs: 1500 }), [remote({ predictedTtftMs: 1 }), local()], byDeadline).reason).toBe("cheapest within deadline");
    // A comparison on a value the request did not give does not hold.
    expect(decide(req(), cs, rules).reason).toBe("rule 5");
  });
});

describe("rule files", () => {
  const hostile: [string, unknown, RegExp][] = [
    ["not a list", { route: "local" }, /must be a list/],
    ["too many rules", Array.from({ length: 257 }, () => ({ route: "local" })), /at most 256/],
    ["a rule that is a string", ["local"], /rules\[0\] must be a mapping/],
    ["an unknown rule field", [{ route: "local", then: "remote" }], /rules\[0\]\.then is not a rule field/],
    ["no route", [{ when: { privacy: "private" } }], /rules\[0\]\.route is required/],
    ["an unknown backend", [{ route: ["nowhere"] }], /no backend named "nowhere"/],
    ["an empty route list", [{ route: [] }], /non-empty list/],
    ["an unknown condition", [{ when: { model: "x" }, route: "local" }], /when\.model is not a condition/],
    ["an unknown privacy class", [{ when: { privacy: "secret" }, route: "local" }], /"secret" is not one of private, internal, public/],
    ["a comparison that is a number", [{ when: { latency_budget_ms: 200 }, route: "local" }], /must be a map of lt/],
    ["an unknown comparator", [{ when: { latency_budget_ms: { le: 200 } }, route: "local" }], /\.le is not a comparison/],
    ["a comparison against a string", [{ when: { max_tokens: { lt: "9" } }, route: "local" }], /\.lt must be a number/],
    ["NaN-ish", [{ when: { max_tokens: { lt: Infinity } }, route: "local" }], /\.lt must be a number/],
    ["local_has_room as a string", [{ when: { local_has_room: "yes" }, route: "local" }], /true or false/],
    ["a huge tenant name", [{ when: { tenant: "t".repeat(10_000) }, route: "local" }], /non-empty strings/],
    ["when is a list", [{ when: [], route: "local" }], /mapping of conditions/],
  ];
  it.each(hostile)("refuses %s with a ConfigError naming the place", (_what, value, message) => {
    const t0 = performance.now();
    expect(() => parseRules(value, "rules", NAMES)).toThrow(ConfigError);
    expect(() => parseRules(value, "rules", NAMES)).toThrow(message);
    expect(performance.now() - t0).toBeLessThan(100);
  });
});
