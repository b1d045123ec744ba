/** `neoserve serve` in a child process, as a deployment runs it: its address from its own log, its exit awaited. */
import { spawn, type ChildProcess } from "node:child_process";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { repoRoot } from "./paths.js";

export interface SpawnedServer {
  proc: ChildProcess;
  url: string;
  /** Every JSON log line so far. */
  logs: Record<string, unknown>[];
  /** Resolves with the exit code (null: killed by a signal). */
  exited: Promise<number | null>;
  /** Resolves once a log line matching `msg` arrives (rejects after `ms`). */
  waitForLog(msg: string, ms?: number): Promise<Record<string, unknown>>;
}

export async function spawnServer(args: string[], env: Record<string, string> = {}, readyMs = 60_000): Promise<SpawnedServer> {
  const proc = spawn(process.execPath, [join(repoRoot, "dist", "src", "cli", "main.js"), "serve", "--port", "0", ...args], {
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "inherit"],
  });
  const logs: Record<string, unknown>[] = [];
  const waiters: { msg: string; resolve: (l: Record<string, unknown>) => void }[] = [];
  createInterface({ input: proc.stdout! }).on("line", (line) => {
    let entry: Record<string, unknown>;
    try {
      entry = JSON.parse(line) as Record<string, unknown>;
    } catch {
      return;
    }
    logs.push(entry);
    for (const w of waiters.filter((w) => w.msg === entry.msg)) w.resolve(entry);
  });
  const exited = new Promise<number | null>((resolve) => proc.once("exit", (code) => resolve(code)));
  const waitForLog = (msg: string, ms = 30_000) => {
    const seen = logs.find((l) => l.msg === msg);
    if (seen) return Promise.resolve(seen);
    return new Promise<Record<string, unknown>>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no "${msg}" log line within ${ms} ms`)), ms);
      waiters.push({ msg, resolve: (l) => (clearTimeout(timer), resolve(l)) });
      void exited.then((code) => reject(new Error(`the server exited (${code}) before logging "${msg}"`)));
    });
  };
  const ready = await waitForLog("ready", readyMs);
  return { proc, url: String(ready.address), logs, exited, waitForLog };
}
