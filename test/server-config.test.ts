// The serve command's configuration is input from whoever deploys it: a table
// of hostile config files, each a ConfigError naming the file and the field,
// in bounded time; and the ways keys arrive (flags, env, keys file), never logged.
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ConfigError } from "../src/errors.js";
import { withFlags } from "../src/cli/serve.js";
import { parseModelFlag, readConfigFile, readKeysFile, SERVE_DEFAULTS } from "../src/server/config.js";
import { hfDir } from "./helpers/paths.js";
import { spawnServer } from "./helpers/spawn-server.js";

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "neoserve-config-"));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const file = (name: string, text: string) => {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
};

describe("load options of a served model", () => {
  it("serve's batch window unless the config sets one, and a flag over both", () => {
    const path = hfDir("tiny");
    expect(withFlags({ path, scheduler: { maxBatchSize: 4 } }, {}).scheduler).toEqual({ batchWindowMs: SERVE_DEFAULTS.batchWindowMs, maxBatchSize: 4 });
    expect(withFlags({ path, scheduler: { batchWindowMs: 0 } }, {}).scheduler!.batchWindowMs).toBe(0);
    expect(withFlags({ path, scheduler: { batchWindowMs: 0 } }, { batchWindowMs: 12 }).scheduler!.batchWindowMs).toBe(12);
    expect(withFlags({ path }, { threads: 1 }).threads).toBe(1);
  });
});

describe("config files", () => {
  it("reads models and server settings from YAML, and the same from JSON", async () => {
    const yaml = file("ok.yaml", `server:\n  port: 9000\n  apiKeys: [a, b]\nmodels:\n  tiny:\n    path: ${hfDir("tiny")}\n    threads: 1\n    scheduler: { maxBatchSize: 4 }\n    pricePerHour: 1.5\n`);
    const json = file("ok.json", JSON.stringify({ server: { port: 9000, apiKeys: ["a", "b"] }, models: { tiny: { path: hfDir("tiny"), threads: 1, scheduler: { maxBatchSize: 4 }, pricePerHour: 1.5 } } }));
    const a = await readConfigFile(yaml);
    expect(a).toEqual(await readConfigFile(json));
    expect(a.server).toEqual({ port: 9000, apiKeys: ["a", "b"] });
    expect(a.models.tiny).toMatchObject({ path: hfDir("tiny"), threads: 1, scheduler: { maxBatchSize: 4 } });
  });

  it("aliases declared by models and remotes become routes over them; a route adds its rules", async () => {
    const c = await readConfigFile(
      file(
        "aliases.yaml",
        [
          "models:",
          "  cpu: { path: x, aliases: [small, chat] }",
          "  gpu: { path: y, aliases: [large] }",
          "remotes:",
          "  cloud: { url: http://127.0.0.1:9, model: m, aliases: [large, chat] }",
          "routes:",
          "  chat:",
          "    rules: [{ when: { privacy: private }, route: local }]",
        ].join("\n"),
      ),
    );
    expect(c.routes.small).toEqual({ backends: ["cpu"], rules: [] });
    expect(c.routes.large).toEqual({ backends: ["gpu", "cloud"], rules: [] });
    expect(c.routes.chat).toMatchObject({ backends: ["cpu", "cloud"], rules: [{ when: { privacy: ["private"] }, route: "local" }] });
    // Nobody declares "mixed": its backends are those listed, and a canary outside them is refused.
    await expect(readConfigFile(file("aliases2.yaml", "models:\n  cpu: { path: x }\n  gpu: { path: y }\nroutes:\n  mixed: { backends: [gpu], canary: { backend: cpu, percent: 5 } }\n"))).rejects.toThrow(/canary\.backend: "cpu" is not one of the route's backends/);
  });

  const aliases = ["a: &a [x, x, x, x, x, x, x, x, x, x]", ...Array.from({ length: 9 }, (_, i) => `${String.fromCharCode(98 + i)}: &${String.fromCharCode(98 + i)} [${Array(10).fill(`*${String.fromCharCode(97 + i)}`).join(", ")}]`)].join("\n");
  const cases: [string, () => string, RegExp][] = [
    ["a missing file", () => join(dir, "absent.yaml"), /absent\.yaml: no such file/],
    ["a FIFO", () => (execFileSync("mkfifo", [join(dir, "fifo.yaml")]), join(dir, "fifo.yaml")), /fifo\.yaml: not a regular file/],
    ["a directory", () => dir, /not a regular file/],
    ["a file over 1 MiB", () => file("big.yaml", `# ${"x".repeat(1 << 20)}\n`), /more than the 1048576 allowed/],
    ["not YAML", () => file("bad.yaml", "models: [unclosed"), /bad\.yaml: not YAML or JSON/],
    ["a billion laughs (aliases)", () => file("laughs.yaml", aliases), /laughs\.yaml: not YAML or JSON/],
    ["a duplicate key", () => file("dup.yaml", "server:\n  port: 1\n  port: 2\n"), /dup\.yaml: not YAML or JSON/],
    ["a list at the top", () => file("list.yaml", "- a\n- b\n"), /list\.yaml: config must be a mapping/],
    ["an unknown top-level key", () => file("top.yaml", "servers: {}\n"), /top\.yaml: config\.servers is not a setting/],
    ["an unknown server setting", () => file("srv.yaml", "server:\n  prot: 80\n"), /server\.prot is not a setting/],
    ["a port out of range", () => file("port.yaml", "server:\n  port: 70000\n"), /server\.port must be a port number/],
    ["a port that is a string", () => file("port2.yaml", 'server:\n  port: "80"\n'), /server\.port must be a port number/],
    ["api keys that are not strings", () => file("keys.yaml", "server:\n  apiKeys: [1, 2]\n"), /server\.apiKeys must be a list/],
    ["a model without a path", () => file("nopath.yaml", "models:\n  m:\n    threads: 1\n"), /models\.m\.path is required/],
    ["a model with an unknown field", () => file("mfield.yaml", "models:\n  m:\n    path: x\n    gpu: true\n"), /models\.m\.gpu is not a setting/],
    ["a model name with a space", () => file("mname.yaml", 'models:\n  "a b":\n    path: x\n'), /not a usable name/],
    ["scheduler knobs that are objects", () => file("sched.yaml", "models:\n  m:\n    path: x\n    scheduler: { maxBatchSize: { a: 1 } }\n"), /models\.m\.scheduler must be a map/],
    ["negative threads", () => file("threads.yaml", "models:\n  m:\n    path: x\n    threads: -1\n"), /models\.m\.threads must be a number >= 0/],
    ["slices of zero workers", () => file("slices.yaml", "models:\n  m:\n    path: x\n    slices: 0\n"), /models\.m\.slices must be a worker count/],
    ["a remote without a url", () => file("r1.yaml", "remotes:\n  c:\n    model: m\n"), /remotes\.c\.url is required/],
    ["a remote url that is not http", () => file("r2.yaml", "remotes:\n  c:\n    url: file:///etc/passwd\n    model: m\n"), /remotes\.c\.url must be an http/],
    ["a remote api key in the file", () => file("r3.yaml", "remotes:\n  c:\n    url: http://x\n    model: m\n    apiKey: sk-1\n"), /remotes\.c\.apiKey is not a setting/],
    ["an api key variable that is not a name", () => file("r4.yaml", "remotes:\n  c:\n    url: http://x\n    model: m\n    apiKeyEnv: $(rm -rf)\n"), /apiKeyEnv must be an environment variable name/],
    ["an unknown privacy class", () => file("r5.yaml", "remotes:\n  c:\n    url: http://x\n    model: m\n    privacy: [secret]\n"), /remotes\.c\.privacy must be a list of privacy classes/],
    ["zero connections", () => file("r6.yaml", "remotes:\n  c:\n    url: http://x\n    model: m\n    connections: 0\n"), /connections must be an integer from 1/],
    ["a breaker field unknown", () => file("r7.yaml", "remotes:\n  c:\n    url: http://x\n    model: m\n    breaker: { trips: 3 }\n"), /remotes\.c\.breaker\.trips is not a setting/],
    ["a remote named as a model", () => file("r8.yaml", "models:\n  c:\n    path: x\nremotes:\n  c:\n    url: http://x\n    model: m\n"), /remotes\.c: a model has that name too/],
    ["a route without backends", () => file("t1.yaml", "routes:\n  chat: {}\n"), /routes\.chat\.backends is required/],
    ["a route over an unknown backend", () => file("t2.yaml", "models:\n  m:\n    path: x\nroutes:\n  chat:\n    backends: [m, ghost]\n"), /routes\.chat\.backends: no model or remote named "ghost"/],
    ["a route named as a model", () => file("t3.yaml", "models:\n  m:\n    path: x\nroutes:\n  m:\n    backends: [m]\n"), /routes\.m: a model or remote has that name too/],
    ["a rule naming a backend outside the route", () => file("t4.yaml", "models:\n  m:\n    path: x\n  n:\n    path: y\nroutes:\n  chat:\n    backends: [m]\n    rules:\n      - route: [n]\n"), /routes\.chat\.rules\[0\]\.route: no backend named "n"/],
    ["a rule with a bad condition", () => file("t5.yaml", "models:\n  m:\n    path: x\nroutes:\n  chat:\n    backends: [m]\n    rules:\n      - when: { latency_budget_ms: { below: 3 } }\n        route: local\n"), /routes\.chat\.rules\[0\]\.when\.latency_budget_ms\.below is not a comparison/],
    ["a canary outside the route", () => file("v1.yaml", "models:\n  m:\n    path: x\n  n:\n    path: y\nroutes:\n  chat:\n    backends: [m]\n    canary: { backend: n, percent: 10 }\n"), /canary\.backend: "n" is not one of the route's backends/],
    ["a canary of 150%", () => file("v2.yaml", "models:\n  m:\n    path: x\nroutes:\n  chat:\n    backends: [m]\n    canary: { backend: m, percent: 150 }\n"), /canary\.percent must be a percentage/],
    ["a shadow without a percent", () => file("v3.yaml", "models:\n  m:\n    path: x\nroutes:\n  chat:\n    backends: [m]\n    shadow: { backend: m }\n"), /shadow\.percent is required/],
    ["a tenant without keys", () => file("u1.yaml", "tenants:\n  acme: { maxConcurrent: 2 }\n"), /tenants\.acme\.keys is required/],
    ["a tenant key in clear", () => file("u2.yaml", "tenants:\n  acme: { keys: [sk-live-123] }\n"), /tenants\.acme\.keys must be a list of SHA-256 key hashes/],
    ["one key hash for two tenants", () => file("u3.yaml", "tenants:\n  a: { keys: [aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa] }\n  b: { keys: [AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA] }\n"), /tenants\.b\.keys: a key hash of tenant a too/],
    ["a tenant allowed an unknown model", () => file("u4.yaml", "tenants:\n  a: { keys: [aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa], models: [ghost] }\n"), /tenants\.a\.models: no model or route named "ghost"/],
    ["a negative budget", () => file("u5.yaml", "tenants:\n  a: { keys: [aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa], budgetPerDay: -1 }\n"), /budgetPerDay must be a number >= 0/],
    ["a weight of zero", () => file("u6.yaml", "tenants:\n  a: { keys: [aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa], weight: 0 }\n"), /weight must be a number > 0/],
    ["an audit without a path", () => file("u7.yaml", "audit: { rotateBytes: 100 }\n"), /audit\.path is required/],
    ["an unknown audit setting", () => file("u8.yaml", "audit: { path: x, fsync: true }\n"), /audit\.fsync is not a setting/],
    ["an alias that names a model", () => file("w1.yaml", "models:\n  m: { path: x }\n  n: { path: y, aliases: [m] }\n"), /models\.n\.aliases: "m" is a model or remote name/],
    ["an alias that is not a name", () => file("w2.yaml", "remotes:\n  c: { url: http://x, model: m, aliases: [\"a b\"] }\n"), /remotes\.c\.aliases must be a list of distinct alias names/],
    ["aliases that are not a list", () => file("w3.yaml", "models:\n  m: { path: x, aliases: small }\n"), /models\.m\.aliases must be a list of distinct alias names/],
    ["an alias given twice", () => file("w5.yaml", "models:\n  m: { path: x, aliases: [chat, chat] }\n"), /models\.m\.aliases must be a list of distinct alias names/],
    ["a route named as a model, with no backends", () => file("w6.yaml", "models:\n  m: { path: x }\nroutes:\n  m: {}\n"), /routes\.m: a model or remote has that name too/],
    ["a route nobody declares and that lists no backends", () => file("w4.yaml", "models:\n  m: { path: x, aliases: [small] }\nroutes:\n  large: {}\n"), /routes\.large\.backends is required .* unless some declare "large"/],
    ["a route's default privacy unknown", () => file("t6.yaml", "models:\n  m:\n    path: x\nroutes:\n  chat:\n    backends: [m]\n    defaultPrivacy: top-secret\n"), /defaultPrivacy must be one of private, internal, public/],
  ];
  it.each(cases)("%s is a ConfigError naming it", async (_what, make, message) => {
    const t0 = performance.now();
    const err = await readConfigFile(make()).then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as Error).message).toMatch(message);
    expect(performance.now() - t0).toBeLessThan(2000);
  });
});

describe("API keys and model flags", () => {
  it("a keys file: one key a line, comments and blank lines skipped", async () => {
    expect(await readKeysFile(file("keys", "# team a\nk1\n\n  k2  \r\n#k3\n"))).toEqual(["k1", "k2"]);
  });

  it.each([
    ["tiny=/models/x", ["tiny", "/models/x"]],
    ["/models/llama-3.gguf", ["llama-3", "/models/llama-3.gguf"]],
    ["/models/smol/hf/", ["smol", "/models/smol/hf/"]],
    ["relative/dir", ["dir", "relative/dir"]],
  ])("--model %s", (flag, expected) => {
    expect(parseModelFlag(flag)).toEqual(expected);
  });

  it("keys from NEOSERVE_API_KEYS and a keys file both open the API, and neither is logged", { timeout: 60_000 }, async () => {
    const keys = file("server-keys", "from-file-key-1234\n");
    const s = await spawnServer(["--model", `tiny=${hfDir("tiny")}`, "--threads", "1", "--api-keys-file", keys], { NEOSERVE_API_KEYS: "from-env-key-5678, other" });
    try {
      const call = (key: string) => fetch(`${s.url}/v1/models`, { headers: { authorization: `Bearer ${key}` } }).then((r) => r.status);
      expect(await call("from-file-key-1234")).toBe(200);
      expect(await call("from-env-key-5678")).toBe(200);
      expect(await call("from-env-key-567")).toBe(401);
      await fetch(`${s.url}/v1/completions`, { method: "POST", headers: { authorization: "Bearer from-env-key-5678", "content-type": "application/json" }, body: JSON.stringify({ model: "tiny", prompt: "secret prompt text", max_tokens: 2 }) });
      await s.waitForLog("completion");
      const log = JSON.stringify(s.logs);
      expect(log).not.toContain("from-file-key-1234");
      expect(log).not.toContain("from-env-key-5678");
      expect(log).not.toContain("secret prompt text"); // prompts are logged only with --log-prompts
      const line = s.logs.find((l) => l.msg === "completion")!;
      expect(line).toMatchObject({ model: "tiny", status: 200, completionTokens: 2, finish: ["length"] });
      expect(String(line.key)).toMatch(/^key-[0-9a-f]{8}$/);
    } finally {
      s.proc.kill("SIGTERM");
      expect(await s.exited).toBe(0);
    }
  });
});
