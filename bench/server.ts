// The HTTP server against the engine in-process and against llama.cpp's own
// server, on the same GGUF, the same 16 concurrent streaming requests (the
// same prompt ids, 128 tokens each, EOS ignored): aggregate tokens/s and time
// to first token. Then a soak: 64 concurrent streaming clients for --soak
// seconds, every request ending, KV blocks and RSS before and after.
//
//   npm run bench:server [-- --threads 2 --soak 30 --batch-window-ms 20]
// llama-server comes from scripts/build-llama-cpp.sh (skipped, and said so, when it is not built).
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { packageRoot } from "../src/addon.js";
import { loadModel } from "../src/index.js";
import { benchTokens } from "./llama-cpp-baseline.js";
import { recordResult, runIfMain, sectionHeader } from "./record.js";

const STREAMS = 16;
const PROMPT = 32;
const TOKENS = 128;

interface Run {
  tokensPerSecond: number;
  ttftMs: number[];
  completionTokens: number;
}

const percentile = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))]!;

const SEQUENTIAL = 20;

async function inProcess(model: string, threads: number): Promise<Run & { aloneTtftMs: number[] }> {
  const m = await loadModel(model, { backend: "cpu", threads, scheduler: { maxBatchSize: STREAMS } });
  try {
    await m.generate({ tokens: benchTokens(PROMPT, 99), maxTokens: 4 }).result; // warm-up
    const aloneTtftMs: number[] = [];
    for (let i = 0; i < SEQUENTIAL; i++)
      aloneTtftMs.push((await m.generate({ tokens: benchTokens(PROMPT, 500 + i), maxTokens: 2, temperature: 0 }).result).timings.timeToFirstTokenMs!);
    const t0 = performance.now();
    const results = await Promise.all(
      Array.from({ length: STREAMS }, (_, i) => m.generate({ tokens: benchTokens(PROMPT, i + 1), maxTokens: TOKENS, ignoreEos: true, temperature: 0 }).result),
    );
    const wall = performance.now() - t0;
    const tokens = results.reduce((n, r) => n + r.usage.completionTokens, 0);
    return { tokensPerSecond: (tokens * 1000) / wall, ttftMs: results.map((r) => r.timings.timeToFirstTokenMs!), completionTokens: tokens, aloneTtftMs };
  } finally {
    await m.dispose();
  }
}

// One request at a time: the time to first token a client sees, HTTP and SSE parsing included.
async function aloneOverHttp(url: string): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < SEQUENTIAL; i++) out.push((await streamOnce(url, { model: "m", prompt: benchTokens(PROMPT, 500 + i), max_tokens: 2, temperature: 0 })).ttftMs);
  return out;
}

// One streamed completion through an OpenAI-compatible /v1/completions: time to first token, tokens.
async function streamOnce(url: string, body: object): Promise<{ ttftMs: number; tokens: number }> {
  const t0 = performance.now();
  const res = await fetch(`${url}/v1/completions`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ ...body, stream: true, stream_options: { include_usage: true } }) });
  if (res.status !== 200) throw new Error(`${url}: ${res.status} ${await res.text()}`);
  let ttft = -1;
  let tokens = 0;
  let buffer = "";
  const decoder = new TextDecoder();
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
    buffer += decoder.decode(chunk, { stream: true });
    let cut: number;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const event = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      if (!event.startsWith("data: ") || event === "data: [DONE]") continue;
      const data = JSON.parse(event.slice(6)) as { choices: { text?: string }[]; usage?: { completion_tokens: number } };
      if (ttft < 0 && data.choices[0]?.text) ttft = performance.now() - t0;
      if (data.usage) tokens = data.usage.completion_tokens;
    }
  }
  return { ttftMs: ttft, tokens };
}

async function overHttp(url: string, extra: object = {}): Promise<Run> {
  // Warm-up, 16 at once: the client's connections are open before the timed burst, as a gateway's pooled ones are.
  await Promise.all(Array.from({ length: STREAMS }, (_, i) => streamOnce(url, { model: "m", prompt: benchTokens(PROMPT, 900 + i), max_tokens: 4, ...extra })));
  const t0 = performance.now();
  const runs = await Promise.all(
    Array.from({ length: STREAMS }, (_, i) => streamOnce(url, { model: "m", prompt: benchTokens(PROMPT, i + 1), max_tokens: TOKENS, temperature: 0, ignore_eos: true, ...extra })),
  );
  const wall = performance.now() - t0;
  const tokens = runs.reduce((n, r) => n + r.tokens, 0);
  return { tokensPerSecond: (tokens * 1000) / wall, ttftMs: runs.map((r) => r.ttftMs), completionTokens: tokens };
}

// Spawns a server process; resolves with its URL once `ready` says so.
async function start(command: string, args: string[], url: string, ready: (line: string) => boolean): Promise<ChildProcess> {
  const proc = spawn(command, args, { stdio: ["ignore", "pipe", "pipe"] });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${command} did not start within 120 s`)), 120_000);
    for (const stream of [proc.stdout!, proc.stderr!])
      createInterface({ input: stream }).on("line", (line) => {
        if (ready(line)) (clearTimeout(timer), resolve());
      });
    proc.once("exit", (code) => reject(new Error(`${command} exited (${code}) before it was ready at ${url}`)));
  });
  return proc;
}

const stop = (proc: ChildProcess) => new Promise<void>((resolve) => (proc.once("exit", () => resolve()), proc.kill("SIGTERM")));

async function soak(url: string, seconds: number): Promise<string[]> {
  const metrics = async () => {
    const text = await (await fetch(`${url}/metrics`)).text();
    const get = (name: string) => Number(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, "m").exec(text)?.[1] ?? NaN);
    return { kvUsed: get("neoserve_kv_blocks_used"), running: get("neoserve_running_sequences"), rss: get("process_resident_memory_bytes") };
  };
  const before = await metrics();
  const end = Date.now() + seconds * 1000;
  let done = 0;
  let failed = 0;
  await Promise.all(
    Array.from({ length: 64 }, async (_, client) => {
      for (let i = 0; Date.now() < end; i++) {
        try {
          await streamOnce(url, { model: "m", prompt: benchTokens(16, client * 1000 + i), max_tokens: 16 + (i % 32), ignore_eos: true });
          done++;
        } catch {
          failed++;
        }
      }
    }),
  );
  const after = await metrics();
  return [
    `Soak: 64 concurrent streaming clients for ${seconds} s: ${done} requests ended, ${failed} failed; ` +
      `after: ${after.running} running, ${after.kvUsed} KV blocks used; RSS ${(before.rss / 2 ** 20).toFixed(0)} → ${(after.rss / 2 ** 20).toFixed(0)} MiB.`,
  ];
}

async function main(argv: string[]): Promise<void> {
  const at = (flag: string) => (argv.includes(flag) ? argv[argv.indexOf(flag) + 1] : undefined);
  const threads = Number(at("--threads") ?? 2);
  const soakSeconds = Number(at("--soak") ?? 30);
  const batchWindowMs = at("--batch-window-ms"); // the server's own default unless given
  const root = packageRoot();
  const model = join(root, "models", "generated", "smol", "smol-q8_0.gguf");
  const rows: string[] = [];
  const row = (what: string, r: Run) =>
    rows.push(`| ${what} | ${r.tokensPerSecond.toFixed(1)} | ${percentile(r.ttftMs, 50).toFixed(1)} | ${percentile(r.ttftMs, 99).toFixed(1)} | ${r.completionTokens} |`);

  const direct = await inProcess(model, threads);
  row("neoserve in-process (Model.generate)", direct);
  const served = `neoserve serve (HTTP, SSE${batchWindowMs === undefined ? "" : `, --batch-window-ms ${batchWindowMs}`})`;

  const port = 18_000 + (process.pid % 1000);
  const ours = await start(process.execPath, [join(root, "dist", "src", "cli", "main.js"), "serve", "--port", String(port), "--model", `m=${model}`, "--threads", String(threads), "--max-batch-size", String(STREAMS), ...(batchWindowMs === undefined ? [] : ["--batch-window-ms", batchWindowMs])], `:${port}`, (l) => l.includes('"ready"'));
  let http: Run;
  const notes: string[] = [];
  try {
    http = await overHttp(`http://127.0.0.1:${port}`);
    row(served, http);
    const alone = await aloneOverHttp(`http://127.0.0.1:${port}`);
    notes.push(
      `One request at a time (${SEQUENTIAL} in a row, ${PROMPT}-token prompts): TTFT p50 ${percentile(direct.aloneTtftMs, 50).toFixed(2)} ms in-process, ` +
        `${percentile(alone, 50).toFixed(2)} ms over HTTP: **${(percentile(alone, 50) - percentile(direct.aloneTtftMs, 50)).toFixed(2)} ms** of HTTP, JSON and SSE per request.`,
    );
    if (soakSeconds > 0) notes.push(...(await soak(`http://127.0.0.1:${port}`, soakSeconds)));
  } finally {
    await stop(ours);
  }
  notes.push(
    `HTTP / in-process tokens/s: **${(http.tokensPerSecond / direct.tokensPerSecond).toFixed(3)}×**; ` +
      `TTFT p50 of the 16 concurrent: +${(percentile(http.ttftMs, 50) - percentile(direct.ttftMs, 50)).toFixed(1)} ms (requests arriving over HTTP reach the ` +
      `scheduler a few ms apart, so the first step starts with fewer of them; in-process all 16 are submitted in one tick). The client runs on the same cores.`,
  );

  const llamaServer = join(root, "third_party", "llama.cpp", "build", "bin", "llama-server");
  if (existsSync(llamaServer)) {
    const lport = port + 1;
    const llama = await start(llamaServer, ["-m", model, "--port", String(lport), "--parallel", String(STREAMS), "-c", String(STREAMS * (PROMPT + TOKENS + 32)), "-t", String(threads), "-tb", String(threads)], `:${lport}`, (l) => /listening on/.test(l));
    try {
      const theirs = await overHttp(`http://127.0.0.1:${lport}`, { n_predict: TOKENS });
      row("llama-server --parallel 16 (HTTP, SSE)", theirs);
      notes.push(
        `neoserve serve / llama-server tokens/s: **${(http.tokensPerSecond / theirs.tokensPerSecond).toFixed(2)}×**; ` +
          `TTFT p99 ${percentile(http.ttftMs, 99).toFixed(1)} vs ${percentile(theirs.ttftMs, 99).toFixed(1)} ms.`,
      );
    } finally {
      await stop(llama);
    }
  } else {
    notes.push(`llama-server not built (${llamaServer}): run scripts/build-llama-cpp.sh for the side-by-side row.`);
  }

  const lines = [
    ...sectionHeader(`server overhead: smol Q8_0, ${STREAMS} concurrent streams × ${TOKENS} tokens, ${threads} threads`, `npm run bench:server -- ${argv.join(" ")}`),
    "| engine | aggregate tok/s | TTFT p50 ms | TTFT p99 ms | tokens |",
    "|---|---|---|---|---|",
    ...rows,
    "",
    ...notes,
  ];
  console.log(lines.join("\n"));
  recordResult("server", "The HTTP server: overhead and llama-server", lines);
}

runIfMain(import.meta.url, main);
