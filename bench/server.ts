// The HTTP server against the engine in-process and against llama.cpp's own
// server, on the same GGUF, the same 16 concurrent streaming requests (the
// same prompt ids, 128 tokens each, EOS ignored): aggregate tokens/s, time to
// first token, and who used the CPU. The three run in turn, --rounds times,
// and the medians are reported, so a noisy neighbour shifts all three alike.
// Then a soak: 64 concurrent streaming clients for --soak seconds, every
// request ending, KV blocks and RSS before and after.
//
//   npm run bench:server [-- --threads 2 --rounds 3 --soak 30 --batch-window-ms 20]
// llama-server comes from scripts/build-llama-cpp.sh (skipped, and said so, when it is not built).
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { packageRoot } from "../src/addon.js";
import { loadModel, type Model } from "../src/index.js";
import { benchTokens } from "./llama-cpp-baseline.js";
import { recordResult, runIfMain, sectionHeader } from "./record.js";
import { SseClient } from "./sse-client.js";
import { cpuSince, threadCpu, type ThreadCpu } from "./thread-cpu.js";

const STREAMS = 16;
const PROMPT = 32;
const TOKENS = 128;
const SEQUENTIAL = 20;

interface Burst {
  tokensPerSecond: number;
  ttftMs: number[];
  completionTokens: number;
  /** CPU seconds during the burst: the serving process's threads, and the client's (in-process: none, the caller is the event loop). */
  cpu: ThreadCpu & { client: number };
  /** Per request, what HTTP added to the first token: the client's TTFT less the one the server measured (neoserve only). */
  httpMs: number[];
  /** Per request, the TTFT the server measured from its generate() call (neoserve over HTTP only). */
  serverTtftMs: number[];
}

const percentile = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))]!;
const median = (xs: number[]) => percentile(xs, 50);
const signed = (x: number) => `${x >= 0 ? "+" : ""}${x.toFixed(1)}`;

// Request i of round r: the same ids for every engine, new ones each round, so
// no engine's prompt cache (llama-server keeps each slot's) serves a later round.
const burstPrompt = (round: number, i: number) => benchTokens(PROMPT, 1 + round * STREAMS + i);

async function inProcessBurst(m: Model, round: number): Promise<Burst> {
  const cpu0 = threadCpu(process.pid);
  const t0 = performance.now();
  const results = await Promise.all(
    Array.from({ length: STREAMS }, (_, i) => m.generate({ tokens: burstPrompt(round, i), maxTokens: TOKENS, ignoreEos: true, temperature: 0 }).result),
  );
  const wall = performance.now() - t0;
  const tokens = results.reduce((n, r) => n + r.usage.completionTokens, 0);
  return {
    tokensPerSecond: (tokens * 1000) / wall,
    ttftMs: results.map((r) => r.timings.timeToFirstTokenMs!),
    completionTokens: tokens,
    cpu: { ...cpuSince(cpu0, threadCpu(process.pid)), client: 0 },
    httpMs: [],
    serverTtftMs: [],
  };
}

async function httpBurst(client: SseClient, server: number, round: number, extra: object): Promise<Burst> {
  const cpu0 = threadCpu(server);
  const client0 = process.cpuUsage();
  const t0 = performance.now();
  const runs = await Promise.all(
    Array.from({ length: STREAMS }, (_, i) => client.completion({ model: "m", prompt: burstPrompt(round, i), max_tokens: TOKENS, temperature: 0, ignore_eos: true, ...extra })),
  );
  const wall = performance.now() - t0;
  const c = process.cpuUsage(client0);
  const tokens = runs.reduce((n, r) => n + r.tokens, 0);
  return {
    tokensPerSecond: (tokens * 1000) / wall,
    ttftMs: runs.map((r) => r.ttftMs),
    completionTokens: tokens,
    cpu: { ...cpuSince(cpu0, threadCpu(server)), client: (c.user + c.system) / 1e6 },
    httpMs: runs.filter((r) => r.serverTtftMs !== undefined).map((r) => r.ttftMs - r.serverTtftMs!),
    serverTtftMs: runs.flatMap((r) => (r.serverTtftMs === undefined ? [] : [r.serverTtftMs])),
  };
}


// Spawns a server process; resolves once `ready` matches a line it prints.
async function start(command: string, args: string[], ready: (line: string) => boolean): Promise<ChildProcess> {
  const proc = spawn(command, args, { stdio: ["ignore", "pipe", "pipe"] });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${command} did not start within 120 s`)), 120_000);
    for (const stream of [proc.stdout!, proc.stderr!])
      createInterface({ input: stream }).on("line", (line) => {
        if (ready(line)) (clearTimeout(timer), resolve());
      });
    proc.once("exit", (code) => reject(new Error(`${command} exited (${code}) before it was ready`)));
  });
  return proc;
}

const stop = (proc: ChildProcess) => new Promise<void>((resolve) => (proc.exitCode !== null ? resolve() : (proc.once("exit", () => resolve()), proc.kill("SIGTERM"))));

async function soak(url: string, client: SseClient, seconds: number): Promise<string> {
  const metrics = async () => {
    const text = await (await fetch(`${url}/metrics`)).text();
    const get = (name: string) => Number(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, "m").exec(text)?.[1] ?? NaN);
    return { kvUsed: get("neoserve_kv_blocks_used"), running: get("neoserve_running_sequences"), rss: get("process_resident_memory_bytes") };
  };
  const before = await metrics();
  const end = Date.now() + seconds * 1000;
  let done = 0;
  let failed = 0;
  // RSS every 5 s: growth that levels off is first-touched KV pages and allocator arenas; a leak keeps climbing.
  const rssSeries: number[] = [];
  const sampler = setInterval(() => void metrics().then((m) => rssSeries.push(m.rss), () => {}), 5000);
  await Promise.all(
    Array.from({ length: 64 }, async (_, c) => {
      for (let i = 0; Date.now() < end; i++) {
        try {
          await client.completion({ model: "m", prompt: benchTokens(16, c * 1000 + i), max_tokens: 16 + (i % 32), ignore_eos: true });
          done++;
        } catch {
          failed++;
        }
      }
    }),
  );
  clearInterval(sampler);
  const after = await metrics();
  const mib = (bytes: number) => (bytes / 2 ** 20).toFixed(0);
  return (
    `Soak: 64 concurrent streaming clients for ${seconds} s: ${done} requests ended, ${failed} failed; ` +
    `after: ${after.running} running, ${after.kvUsed} KV blocks used; RSS ${mib(before.rss)} → ${mib(after.rss)} MiB ` +
    `(every 5 s: ${rssSeries.map(mib).join(", ")}).`
  );
}

interface Contender {
  name: string;
  burst(round: number): Promise<Burst>;
  bursts: Burst[];
}

async function main(argv: string[]): Promise<void> {
  const at = (flag: string) => (argv.includes(flag) ? argv[argv.indexOf(flag) + 1] : undefined);
  const threads = Number(at("--threads") ?? 2);
  const rounds = Number(at("--rounds") ?? 3);
  const soakSeconds = Number(at("--soak") ?? 30);
  const batchWindowMs = at("--batch-window-ms"); // the server's own default unless given
  const root = packageRoot();
  const model = join(root, "models", "generated", "smol", "smol-q8_0.gguf");
  const port = 18_000 + (process.pid % 1000);
  const url = `http://127.0.0.1:${port}`;
  const llamaServer = join(root, "third_party", "llama.cpp", "build", "bin", "llama-server");
  const notes: string[] = [];
  const procs: ChildProcess[] = [];
  const clients: SseClient[] = [];

  const m = await loadModel(model, { backend: "cpu", threads, scheduler: { maxBatchSize: STREAMS } });
  try {
    const ours = await start(
      process.execPath,
      [join(root, "dist", "src", "cli", "main.js"), "serve", "--port", String(port), "--model", `m=${model}`, "--threads", String(threads), "--max-batch-size", String(STREAMS), ...(batchWindowMs === undefined ? [] : ["--batch-window-ms", batchWindowMs])],
      (l) => l.includes('"ready"'),
    );
    procs.push(ours);
    const client = new SseClient(new URL(url));
    clients.push(client);

    const contenders: Contender[] = [
      { name: "neoserve in-process (Model.generate)", burst: (r) => inProcessBurst(m, r), bursts: [] },
      { name: `neoserve serve (HTTP, SSE${batchWindowMs === undefined ? "" : `, --batch-window-ms ${batchWindowMs}`})`, burst: (r) => httpBurst(client, ours.pid!, r, {}), bursts: [] },
    ];
    if (existsSync(llamaServer)) {
      const lport = port + 1;
      const llama = await start(
        llamaServer,
        ["-m", model, "--port", String(lport), "--parallel", String(STREAMS), "-c", String(STREAMS * (PROMPT + TOKENS + 32)), "-t", String(threads), "-tb", String(threads)],
        (l) => /listening on/.test(l),
      );
      procs.push(llama);
      const theirs = new SseClient(new URL(`http://127.0.0.1:${lport}`));
      clients.push(theirs);
      contenders.push({ name: "llama-server --parallel 16 (HTTP, SSE)", burst: (r) => httpBurst(theirs, llama.pid!, r, { n_predict: TOKENS }), bursts: [] });
    } else {
      notes.push(`llama-server not built (${llamaServer}): run scripts/build-llama-cpp.sh for the side-by-side row.`);
    }

    // An untimed round first: each engine's KV pages and scratch are touched
    // (the first burst of a fresh engine runs ~15% slower from page faults
    // alone), and the clients' 16 pooled connections are open, as a gateway's are.
    for (const c of contenders) await c.burst(rounds);

    // One request at a time: what HTTP, JSON and SSE add to a lone request's first token.
    const alone = { direct: [] as number[], http: [] as number[] };
    for (let i = 0; i < SEQUENTIAL; i++) {
      alone.direct.push((await m.generate({ tokens: benchTokens(PROMPT, 500 + i), maxTokens: 2, temperature: 0 }).result).timings.timeToFirstTokenMs!);
      alone.http.push((await client.completion({ model: "m", prompt: benchTokens(PROMPT, 500 + i), max_tokens: 2, temperature: 0 })).ttftMs);
    }
    notes.push(
      `One request at a time (${SEQUENTIAL} in a row, ${PROMPT}-token prompts): TTFT p50 ${median(alone.direct).toFixed(2)} ms in-process, ` +
        `${median(alone.http).toFixed(2)} ms over HTTP: **${(median(alone.http) - median(alone.direct)).toFixed(2)} ms** per request.`,
    );
    for (let r = 0; r < rounds; r++) for (const c of contenders) c.bursts.push(await c.burst(r));

    const tps = (c: Contender) => c.bursts.map((b) => b.tokensPerSecond);
    const ratio = (a: Contender, b: Contender) => a.bursts.map((x, i) => x.tokensPerSecond / b.bursts[i]!.tokensPerSecond);
    const p = (c: Contender, q: number) => median(c.bursts.map((b) => percentile(b.ttftMs, q)));
    const [direct, served, llama] = contenders as [Contender, Contender, Contender | undefined];
    notes.push(
      `HTTP / in-process tokens/s, per round: ${ratio(served, direct).map((x) => x.toFixed(3)).join(", ")}; median **${median(ratio(served, direct)).toFixed(3)}×**. ` +
        `TTFT p50 of the 16 concurrent: ${signed(p(served, 50) - p(direct, 50))} ms over HTTP. ` +
        `Split: the serving engine's own TTFT (neoserve.timings, counted from its generate() call) p50 ${median(served.bursts.map((b) => median(b.serverTtftMs))).toFixed(1)} ms ` +
        `against ${p(direct, 50).toFixed(1)} ms in-process (the same engine code in another process: its first step's length), ` +
        `and the client's TTFT less the server's own, per request (reading the burst one request after another, JSON, SSE, the client): ` +
        `p50 ${median(served.bursts.flatMap((b) => b.httpMs)).toFixed(2)} ms, p99 ${percentile(served.bursts.flatMap((b) => b.httpMs), 99).toFixed(2)} ms.`,
    );
    if (llama)
      notes.push(
        `neoserve serve / llama-server tokens/s, per round: ${ratio(served, llama).map((x) => x.toFixed(2)).join(", ")}; median **${median(ratio(served, llama)).toFixed(2)}×**; ` +
          `TTFT p99 ${p(served, 99).toFixed(1)} vs ${p(llama, 99).toFixed(1)} ms.`,
      );
    if (soakSeconds > 0) notes.push(await soak(url, client, soakSeconds));

    const s = (x: number) => x.toFixed(2);
    const cpu = (c: Contender, k: keyof Burst["cpu"]) => s(median(c.bursts.map((b) => b.cpu[k])));
    const lines = [
      ...sectionHeader(`server overhead: smol Q8_0, ${STREAMS} concurrent streams × ${TOKENS} tokens, ${threads} threads`, `npm run bench:server -- ${argv.join(" ")}`),
      `Medians of ${rounds} rounds, the engines taking turns. CPU seconds per burst: the serving process's engine threads (ns-*), its event loop, its other threads (GC, libuv), and the client.`,
      "",
      "| engine | aggregate tok/s | TTFT p50 ms | TTFT p99 ms | tokens | CPU s: engine / event loop / other / client |",
      "|---|---|---|---|---|---|",
      ...contenders.map(
        (c) =>
          `| ${c.name} | ${median(tps(c)).toFixed(1)} | ${p(c, 50).toFixed(1)} | ${p(c, 99).toFixed(1)} | ${c.bursts[0]!.completionTokens} | ` +
          `${cpu(c, "engine")} / ${cpu(c, "eventLoop")} / ${cpu(c, "other")} / ${cpu(c, "client")} |`,
      ),
      "",
      ...notes,
    ];
    console.log(lines.join("\n"));
    recordResult("server", "The HTTP server: overhead and llama-server", lines);
  } finally {
    clients.forEach((c) => c.close());
    await Promise.all(procs.map(stop));
    await m.dispose();
  }
}

runIfMain(import.meta.url, main);
