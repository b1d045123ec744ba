// llama.cpp's own tools and neoserve's bench scripts as child processes: what
// the benchmarks of record run side by side. The anchors are built from the
// source node-llama-cpp ships (scripts/build-llama-cpp.sh), the native probes
// into build-bench, both when missing.
import { execFileSync } from "node:child_process";
import { appendFileSync, existsSync } from "node:fs";
import { cpus, totalmem } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { makeModel } from "../models/make-models.js";
import { packageRoot } from "../src/addon.js";

export const here = dirname(fileURLToPath(import.meta.url));
export const root = packageRoot();
export const tools = join(root, "third_party", "llama.cpp", "build", "bin");
export const probes = join(root, "build-bench");

export function ensureTools(): void {
  if (!existsSync(join(tools, "llama-batched-bench"))) execFileSync("bash", [join(root, "scripts", "build-llama-cpp.sh")], { stdio: "inherit" });
  if (!existsSync(join(tools, "llama-quantize"))) execFileSync("bash", [join(root, "scripts", "build-llama-cpp.sh"), "llama-quantize"], { stdio: "inherit" });
  if (!existsSync(join(probes, "bench_bandwidth"))) {
    execFileSync("cmake", ["-S", root, "-B", probes, "-G", "Ninja", "-DNEOSERVE_BENCH=ON", "-DCMAKE_BUILD_TYPE=Release"], { stdio: "inherit" });
    execFileSync("cmake", ["--build", probes, "--target", "bench_bandwidth"], { stdio: "inherit" });
  }
}

export const lastJson = (out: string): Record<string, unknown> => JSON.parse(out.trim().split("\n").filter((l) => l.startsWith("{")).pop()!);
export const run = (file: string, args: string[]) => execFileSync(file, args, { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"], maxBuffer: 64 << 20 });
export const node = (script: string, args: string[]) => lastJson(run(process.execPath, [join(here, script), ...args]));

/** llama-bench: prompt 512 and decode tok/s (mean of its repetitions). */
export function llamaBench(gguf: string, threads: number): { prefillTokS: number; decodeTokS: number } {
  const rows = JSON.parse(run(join(tools, "llama-bench"), ["-m", gguf, "-t", String(threads), "-p", "512", "-n", "64", "-r", "2", "-o", "json"])) as {
    n_prompt: number;
    n_gen: number;
    avg_ts: number;
  }[];
  return { prefillTokS: rows.find((r) => r.n_prompt > 0)!.avg_ts, decodeTokS: rows.find((r) => r.n_gen > 0)!.avg_ts };
}

/** llama-batched-bench: S_TG (aggregate decode tok/s) at `streams` parallel prompts of 32 tokens, 32 generated each. */
export function llamaBatched(gguf: string, threads: number, streams: number): number {
  const out = run(join(tools, "llama-batched-bench"), [
    "-m", gguf, "-t", String(threads), "-c", "4096", "-b", "2048", "-ub", "512", "-npp", "32", "-ntg", "32", "-npl", String(streams), "--output-format", "jsonl",
  ]);
  return lastJson(out)["speed_tg"] as number;
}

/** llama.cpp's quantizer: `src` (an f32/f16/bf16 GGUF) as `type` ("Q4_K_M", ...) at `out`, unless it is there. */
export function llamaQuantize(src: string, out: string, type: string, threads: number): string {
  if (!existsSync(out)) run(join(tools, "llama-quantize"), [src, out, type, String(threads)]);
  return out;
}

/**
 * A benchmark of record's start: `--threads N` (default 2) and `--out FILE` (default bench/results/<name>.md),
 * the anchors built, and the llama1b (Q8_0 and BF16 GGUF) and smol models made.
 */
export async function benchSetup(name: string): Promise<{ threads: number; outFile: string; modelsDir: string; q8: string }> {
  const argv = process.argv.slice(2);
  const threads = Number(argv[argv.indexOf("--threads") + 1] || 2) || 2;
  const outFile = argv.includes("--out") ? resolve(argv[argv.indexOf("--out") + 1]!) : join(root, "bench", "results", `${name}.md`);
  ensureTools();
  const modelsDir = join(root, "models", "generated");
  await makeModel("llama1b", modelsDir, { gguf: ["q8_0", "bf16"], hfDtype: "bf16" });
  await makeModel("smol", modelsDir);
  return { threads, outFile, modelsDir, q8: join(modelsDir, "llama1b", "llama1b-q8_0.gguf") };
}

/** "Machine: <cpu>, N cores, M GiB": the line every result starts with. */
export function machine(): string {
  return `Machine: ${cpus()[0]?.model ?? "?"}, ${cpus().length} cores, ${(totalmem() / 2 ** 30).toFixed(0)} GiB`;
}

/** Appends a run's lines to its results file, titled when the file is new, and prints them. */
export function record(outFile: string, title: string, lines: string[]): void {
  appendFileSync(outFile, (existsSync(outFile) ? "" : `# ${title}\n\n`) + lines.join("\n") + "\n");
  console.log(lines.join("\n"));
}
