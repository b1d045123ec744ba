// The command line, as a user runs it: the built CLI in a child process, bounded in time.
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { hfDir, repoRoot } from "./helpers/paths.js";

const cli = (...args: string[]) =>
  spawnSync(process.execPath, [join(repoRoot, "dist", "src", "cli", "main.js"), ...args], { encoding: "utf8", timeout: 60_000, killSignal: "SIGKILL" });

describe("neoserve generate", () => {
  it("streams a continuation of the prompt and reports how it ended", () => {
    const r = cli("generate", "Once upon a time", "-m", hfDir("tiny"), "-n", "6", "-t", "0", "--threads", "1");
    expect(r.status).toBe(0);
    expect(r.stdout.startsWith("Once upon a time")).toBe(true);
    expect(r.stdout.length).toBeGreaterThan("Once upon a time".length);
    expect(r.stderr).toMatch(/6 tokens, finish: length/);
  });

  it("exits 1 with the typed error's message and code for a prompt the model refuses", () => {
    const r = cli("generate", "word ".repeat(5000), "-m", hfDir("tiny"), "-n", "4", "--threads", "1");
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/the prompt has \d+ tokens; the model's context is 1024 \[invalid_request\]/);
    expect(r.stdout).toBe(""); // nothing echoed for a request that never ran
  });
});
