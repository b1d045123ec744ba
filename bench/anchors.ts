// llama.cpp's own tools and neoserve's bench scripts as child processes: what
// the benchmarks of record run side by side. The anchors are built from the
// source node-llama-cpp ships (scripts/build-llama-cpp.sh), the native probes
// into build-bench, both when missing.
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
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
