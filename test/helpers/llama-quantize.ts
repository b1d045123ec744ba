/**
 * llama.cpp's own quantizer for tests: makes Q4_0 … Q6_K (and K-quant mixes such as Q4_K_M) GGUF files from
 * the f32 test models. The binary is built once from the source node-llama-cpp ships
 * (scripts/build-llama-cpp.sh llama-quantize) into third_party/llama.cpp/build/bin; tests read the result with
 * test/reference/gguf-reader.ts and decode it with test/reference/ggml-blocks.ts.
 */
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { basename, join } from "node:path";
import { ggufFile, repoRoot, testModelsDir, type TestPreset } from "./paths.js";

export { ggufTensorTypes, readGgufHeader, readGgufTensor, readGgufTensorBytes } from "../reference/gguf-reader.js";

export const llamaCppDir = join(repoRoot, "third_party", "llama.cpp");
const binPath = join(llamaCppDir, "build", "bin", "llama-quantize");
const lockDir = join(repoRoot, "third_party", ".llama-quantize-build.lock");

/**
 * How long building llama-quantize may take: a from-scratch build (clone, configure, build ggml, llama and the
 * quantizer) took about 10 minutes at -j 2 on a 2-core machine. NEOSERVE_QUANTIZE_BUILD_TIMEOUT_S overrides.
 */
const BUILD_TIMEOUT_MS = Number(process.env.NEOSERVE_QUANTIZE_BUILD_TIMEOUT_S ?? 30 * 60) * 1000;
/** Quantizing a test model takes seconds; this only bounds a hang. */
const QUANTIZE_TIMEOUT_MS = 10 * 60 * 1000;

const sleepSync = (ms: number) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);

const firstLine = (s: unknown) => String(s ?? "").split("\n")[0];
const tail = (s: unknown, n = 4000) => {
  const t = String(s ?? "");
  return t.length > n ? `…${t.slice(-n)}` : t;
};

/**
 * The llama-quantize binary, built on first use (by one process at a time: others wait for it). Throws an
 * Error saying why when it cannot be built.
 */
// Whether the process that holds the build lock still runs (false once it is gone, or if it wrote no pid).
function builderAlive(): boolean {
  try {
    process.kill(Number(readFileSync(join(lockDir, "pid"), "utf8")), 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

export function llamaQuantizePath(): string {
  if (existsSync(binPath)) return binPath;
  mkdirSync(join(repoRoot, "third_party"), { recursive: true });
  const deadline = Date.now() + BUILD_TIMEOUT_MS;
  // mkdir is atomic: whoever makes the lock directory builds, the rest wait for the binary or for the lock to go.
  for (;;) {
    try {
      mkdirSync(lockDir);
      writeFileSync(join(lockDir, "pid"), String(process.pid));
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
    }
    if (existsSync(binPath)) return binPath;
    let age = 0;
    try {
      age = Date.now() - statSync(lockDir).mtimeMs;
    } catch {
      continue; // released just now: try to take it
    }
    if (age > BUILD_TIMEOUT_MS || (age > 5000 && !builderAlive())) {
      rmSync(lockDir, { recursive: true, force: true }); // left by a build that was killed
      continue;
    }
    if (Date.now() > deadline) throw new Error(`llama-quantize: gave up waiting for another process's build (lock ${lockDir})`);
    sleepSync(2000);
  }
  try {
    if (existsSync(binPath)) return binPath;
    const script = join(repoRoot, "scripts", "build-llama-cpp.sh");
    try {
      execFileSync("bash", [script, "llama-quantize"], {
        cwd: repoRoot,
        stdio: ["ignore", "pipe", "pipe"],
        timeout: BUILD_TIMEOUT_MS,
        killSignal: "SIGKILL",
        maxBuffer: 256 * 1024 * 1024,
      });
    } catch (e) {
      const err = e as { message?: string; stdout?: Buffer; stderr?: Buffer; signal?: string };
      const why = err.signal ? `killed (${err.signal}) after the ${BUILD_TIMEOUT_MS / 1000} s limit` : firstLine(err.message);
      throw new Error(
        `llama-quantize is not built and building it failed: ${why}\n${tail(err.stdout)}\n${tail(err.stderr)}\n` +
          `(it needs cmake, ninja and a C++ compiler, and node_modules/node-llama-cpp/llama/gitRelease.bundle)`,
      );
    }
    if (!existsSync(binPath)) throw new Error(`llama-quantize: the build finished but ${binPath} is missing`);
    return binPath;
  } finally {
    rmSync(lockDir, { recursive: true, force: true });
  }
}

export interface QuantizeOptions {
  /**
   * --pure: every quantizable tensor gets the named type itself (no K-quant mix, no bigger type for
   * output.weight); the output name gets a "-pure" suffix. Rows too short for the type still fall back.
   */
  pure?: boolean;
}

/**
 * Quantizes an f32 GGUF with llama-quantize (2 threads) to `type` ("Q4_0", "Q4_K_M", "Q6_K", …: llama-quantize's
 * names) and returns `<outDir>/<name>-<type lowercase>.gguf`, where name is the source's file name less
 * "-f32.gguf" (or ".gguf"). A file already there and newer than the source is reused. Tensors whose rows do not
 * divide into the type's blocks are given a fallback type by llama-quantize (check with ggufTensorTypes).
 */
export function quantizeGguf(srcF32Gguf: string, type: string, outDir: string, opts: QuantizeOptions = {}): string {
  const name = basename(srcF32Gguf).replace(/(-f32)?\.gguf$/i, "");
  const out = join(outDir, `${name}-${type.toLowerCase()}${opts.pure ? "-pure" : ""}.gguf`);
  const srcTime = statSync(srcF32Gguf).mtimeMs;
  if (existsSync(out) && statSync(out).mtimeMs > srcTime) return out;
  mkdirSync(outDir, { recursive: true });
  const bin = llamaQuantizePath();
  const tmp = `${out}.${process.pid}.tmp`;
  const args = [...(opts.pure ? ["--pure"] : []), srcF32Gguf, tmp, type, "2"];
  try {
    execFileSync(bin, args, {
      stdio: ["ignore", "pipe", "pipe"],
      timeout: QUANTIZE_TIMEOUT_MS,
      killSignal: "SIGKILL",
      maxBuffer: 64 * 1024 * 1024,
      env: { ...process.env, OMP_NUM_THREADS: "2" },
    });
  } catch (e) {
    rmSync(tmp, { force: true });
    const err = e as { message?: string; stdout?: Buffer; stderr?: Buffer };
    throw new Error(`llama-quantize failed: ${firstLine(err.message)}\n${tail(err.stdout)}\n${tail(err.stderr)}`);
  }
  renameSync(tmp, out);
  return out;
}

/**
 * The quantized test models, made by test/ggml-quants.test.ts from the f32 GGUF test models: every ggml block
 * type llama-quantize writes, as whole-file types (K-quant mixes keep their bigger types for some tensors), on
 * tiny-k (rows of 256, so K-quants apply), and two mixes on the Qwen presets (rows of 64: llama-quantize falls
 * back to 32-blocks per tensor).
 */
export interface QuantizedTestModel {
  preset: TestPreset;
  /** llama-quantize's file type */
  type: string;
}
export const QUANTIZED_TEST_MODELS: readonly QuantizedTestModel[] = [
  ...["Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q2_K", "Q3_K_M", "Q4_K_S", "Q4_K_M", "Q5_K_M", "Q6_K"].map(
    (type): QuantizedTestModel => ({ preset: "tiny-k", type }),
  ),
  { preset: "tiny-qwen2", type: "Q4_K_M" },
  { preset: "tiny-qwen3", type: "Q4_0" },
];

export function quantizedTestModel(preset: TestPreset, type: string): string {
  return join(testModelsDir, preset, `${preset}-${type.toLowerCase()}.gguf`);
}

export function makeQuantizedTestModels(): void {
  for (const { preset, type } of QUANTIZED_TEST_MODELS) quantizeGguf(ggufFile(preset, "f32"), type, join(testModelsDir, preset));
}
