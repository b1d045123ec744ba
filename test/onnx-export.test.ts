// The TensorRT model path's Python tools (models/tensorrt/) on the tiny model.
// Where torch, transformers, onnx and onnxruntime import: export_onnx.py
// exports the tiny checkpoint, neoserve's CPU engine writes reference logits,
// and check_onnx.py compares the ONNX (alone, and batched with padding in the
// middle) with transformers and with those logits. Everywhere python3 runs:
// build_engine.py --dry-run prints the trtexec profile for the tiny model's
// shapes and the neoserve.json it would write, and writes nothing; with a
// stand-in trtexec it writes a neoserve.json that the engine loader accepts.
import { spawnSync } from "node:child_process";
import { chmodSync, copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { ModelLoadError, ProviderUnavailableError } from "../src/errors.js";
import { loadModel } from "../src/index.js";
import { hfDir, repoRoot } from "./helpers/paths.js";

const python = process.env.PYTHON ?? "python3";
const tools = join(repoRoot, "models", "tensorrt");
const tiny = hfDir("tiny");

interface Run {
  code: number | null;
  out: string;
}

function py(args: string[], timeoutMs: number): Run {
  const r = spawnSync(python, args, { cwd: repoRoot, encoding: "utf8", timeout: timeoutMs, maxBuffer: 64 << 20 });
  const out = `${r.stdout ?? ""}${r.stderr ?? ""}${r.error ? `\n${r.error.message}` : ""}`;
  return { code: r.status, out };
}

/** Why python3 cannot run here, or undefined. */
function pythonMissing(): string | undefined {
  const r = py(["-c", "import sys; print(sys.version.split()[0])"], 30_000);
  return r.code === 0 ? undefined : `${python} does not run (${r.out.trim() || `exit ${r.code}`})`;
}

/** Which of the export's packages fail to import, and why; undefined when all import. */
function exportDepsMissing(): string | undefined {
  const probe = [
    "import importlib, json",
    "bad = {}",
    'for name in ("torch", "transformers", "onnx", "onnxruntime"):',
    "    try:",
    "        importlib.import_module(name)",
    "    except Exception as e:",
    '        bad[name] = f"{type(e).__name__}: {e}"',
    "print(json.dumps(bad))",
  ].join("\n");
  const r = py(["-c", probe], 120_000);
  if (r.code !== 0) return `the import probe failed (${r.out.trim()})`;
  const bad = JSON.parse(r.out.trim().split("\n").pop()!) as Record<string, string>;
  const names = Object.keys(bad);
  if (names.length === 0) return undefined;
  return `\`${python} -c "import torch, transformers, onnx, onnxruntime"\` fails: ${names.map((n) => `${n}: ${bad[n]}`).join("; ")}`;
}

const noPython = pythonMissing();
const noDeps = noPython ?? exportDepsMissing();
if (noPython) console.warn(`onnx-export.test.ts: skipping every check: ${noPython}`);
else if (noDeps)
  console.warn(
    `onnx-export.test.ts: skipping the ONNX export check (export_onnx.py, check_onnx.py against transformers and ` +
      `neoserve's CPU engine): ${noDeps}. build_engine.py --dry-run still runs.`,
  );

const temps: string[] = [];
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), "neoserve-onnx-"));
  temps.push(d);
  return d;
}
afterAll(() => {
  for (const d of temps) rmSync(d, { recursive: true, force: true });
});

describe.skipIf(noDeps !== undefined)("export_onnx.py and check_onnx.py on the tiny model", () => {
  it("exports an ONNX whose logits match transformers and neoserve's CPU engine, alone and batched", async () => {
    const out = join(tempDir(), "tiny-onnx");
    const exported = py([join(tools, "export_onnx.py"), tiny, out, "--dtype", "float32"], 600_000);
    expect(exported.code, exported.out).toBe(0);
    for (const f of ["model.onnx", "export.json", "config.json", "tokenizer.json"]) expect(existsSync(join(out, f)), f).toBe(true);
    const meta = JSON.parse(readFileSync(join(out, "export.json"), "utf8"));
    expect(meta).toMatchObject({ dtype: "float32", numLayers: 2, numKeyValueHeads: 2, headDim: 16, vocabSize: 50259 });

    // Reference logits from neoserve's CPU engine, in the format check_onnx.py documents.
    const prompts = [[464], [15496, 11, 616, 1438, 318], [40, 588, 257, 1310, 286, 262, 995, 11, 290, 314, 2666, 13]];
    const steps = 4;
    const model = await loadModel(tiny, { backend: "cpu", precision: "f32", threads: 2 });
    const reference = { prompts, steps, tokens: [] as number[][], logits: [] as number[][][], source: "neoserve cpu", precision: "f32" };
    try {
      for (const tokens of prompts) {
        const r = await model.generate({ tokens, maxTokens: steps, temperature: 0, ignoreEos: true, returnLogits: true }).result;
        expect(r.tokens).toHaveLength(steps);
        reference.tokens.push(r.tokens);
        reference.logits.push(r.logits!.map((row) => Array.from(row)));
      }
    } finally {
      await model.dispose();
    }
    const refPath = join(out, "reference-logits.json");
    writeFileSync(refPath, JSON.stringify(reference));

    const checked = py([join(tools, "check_onnx.py"), out, tiny, "--reference", refPath], 600_000);
    console.log(checked.out);
    expect(checked.code, checked.out).toBe(0);
    expect(checked.out).toMatch(/onnx vs transformers, batch of 2/);
    expect(checked.out).toMatch(/onnx vs neoserve, alone/);
  }, 900_000);
});

/** name -> dims from a trtexec --minShapes/--optShapes/--maxShapes value. */
function shapes(cmd: string, flag: string): Record<string, string> {
  const m = cmd.match(new RegExp(`--${flag}=(\\S+)`));
  expect(m, `${flag} in ${cmd}`).not.toBeNull();
  return Object.fromEntries(m![1]!.split(",").map((s) => [s.slice(0, s.lastIndexOf(":")), s.slice(s.lastIndexOf(":") + 1)]));
}

describe.skipIf(noPython !== undefined)("build_engine.py --dry-run", () => {
  const config = JSON.parse(readFileSync(join(tiny, "config.json"), "utf8"));
  const layers: number = config.num_hidden_layers;
  const kv: number = config.num_key_value_heads;
  const hd: number = config.head_dim ?? config.hidden_size / config.num_attention_heads;

  /** A hand-made export directory for the tiny model: export.json only (no ONNX, no TensorRT needed). */
  function exportDir(dtype: "float32" | "float16"): string {
    const dir = tempDir();
    writeFileSync(
      join(dir, "export.json"),
      JSON.stringify({
        format: "neoserve-onnx-export",
        formatVersion: 1,
        onnx: "model.onnx",
        dtype,
        modelType: "llama",
        numLayers: layers,
        numKeyValueHeads: kv,
        headDim: hd,
        vocabSize: config.vocab_size,
      }),
    );
    return dir;
  }

  function dryRun(dir: string, args: string[]): { out: string; trtexec: string; manifest: Record<string, unknown> } {
    const r = py([join(tools, "build_engine.py"), dir, ...args, "--dry-run", "--trtexec", "/opt/tensorrt/bin/trtexec"], 60_000);
    expect(r.code, r.out).toBe(0);
    const lines = r.out.split("\n");
    const trtexec = lines.find((l) => l.startsWith("/opt/tensorrt/bin/trtexec "));
    expect(trtexec, r.out).toBeDefined();
    const at = lines.findIndex((l) => l.startsWith("# ") && l.endsWith("neoserve.json"));
    const end = lines.findIndex((l, i) => i > at && l.startsWith("dry run:"));
    expect(at, r.out).toBeGreaterThan(0);
    const manifest = JSON.parse(lines.slice(at + 1, end).join("\n"));
    // Nothing written: no manifest, no engine, no calibration data.
    for (const f of ["neoserve.json", "model-fp16.plan", "model-int8.plan", "calib.npz", "build.json"]) expect(existsSync(join(dir, f)), f).toBe(false);
    return { out: r.out, trtexec: trtexec!, manifest };
  }

  it("prints min/opt/max shapes for every input of the tiny model, and the manifest it would write", () => {
    const dir = exportDir("float32");
    const { trtexec, manifest } = dryRun(dir, ["--precision", "fp16", "--max-batch", "8", "--max-tokens", "128", "--max-context", "1024"]);
    expect(trtexec).toContain(`--onnx=${join(dir, "model.onnx")}`);
    expect(trtexec).toContain(`--saveEngine=${join(dir, "model-fp16.plan")}`);
    expect(trtexec).toMatch(/ --fp16( |$)/); // a float32 ONNX: TensorRT may pick fp16
    expect(trtexec).not.toContain("--stronglyTyped");
    expect(trtexec).not.toContain("--versionCompatible");

    const expected: Record<string, Record<string, string>> = {
      minShapes: { input_ids: "1x1", attention_mask: "1x1", position_ids: "1x1" },
      optShapes: { input_ids: "8x1", attention_mask: "8x513", position_ids: "8x1" },
      maxShapes: { input_ids: "8x128", attention_mask: "8x1152", position_ids: "8x128" },
    };
    const past = { minShapes: `1x${kv}x0x${hd}`, optShapes: `8x${kv}x512x${hd}`, maxShapes: `8x${kv}x1024x${hd}` };
    for (const flag of ["minShapes", "optShapes", "maxShapes"] as const) {
      const want = { ...expected[flag] };
      for (let i = 0; i < layers; i++) {
        want[`past_key_values.${i}.key`] = past[flag];
        want[`past_key_values.${i}.value`] = past[flag];
      }
      expect(shapes(trtexec, flag)).toEqual(want);
    }
    expect(manifest).toMatchObject({
      format: "neoserve-tensorrt",
      formatVersion: 1,
      engine: "model-fp16.plan",
      precision: "fp16",
      versionCompatible: false,
      config: "config.json",
      io: {
        inputIds: "input_ids",
        attentionMask: "attention_mask",
        positionIds: "position_ids",
        pastKey: "past_key_values.{i}.key",
        pastValue: "past_key_values.{i}.value",
        logits: "logits",
        presentKey: "present.{i}.key",
        presentValue: "present.{i}.value",
      },
    });
    expect(typeof manifest.tensorrtVersion).toBe("string");
  });

  it("builds a float16 ONNX strongly typed, version-compatible on request", () => {
    const { trtexec, manifest } = dryRun(exportDir("float16"), ["--precision", "fp16", "--version-compatible", "--min-past", "1"]);
    expect(trtexec).toContain("--stronglyTyped");
    expect(trtexec).not.toMatch(/ --fp16( |$)/);
    expect(trtexec).toContain("--versionCompatible");
    expect(shapes(trtexec, "minShapes")).toMatchObject({ attention_mask: "1x2", "past_key_values.0.key": `1x${kv}x1x${hd}` });
    expect(shapes(trtexec, "maxShapes")).toMatchObject({ input_ids: "8x512", attention_mask: "8x2560", "past_key_values.1.value": `8x${kv}x2048x${hd}` });
    expect(manifest).toMatchObject({ precision: "fp16", versionCompatible: true });
  });

  it("int8: quantizes with modelopt first, calibrated on the batch it describes, then builds strongly typed", () => {
    const dir = exportDir("float32");
    const { out, trtexec, manifest } = dryRun(dir, ["--precision", "int8", "--max-tokens", "128", "--calib-prompts", "16", "--calib-tokens", "32"]);
    const quant = out.split("\n").find((l) => l.includes("-m modelopt.onnx.quantization"));
    expect(quant, out).toBeDefined();
    expect(quant).toContain(`--onnx_path ${join(dir, "model.onnx")}`);
    expect(quant).toContain("--quantize_mode int8");
    expect(quant).toContain(`--calibration_data_path ${join(dir, "calib.npz")}`);
    expect(quant).toContain(`--output_path ${join(dir, "model.int8.onnx")}`);
    const calib = quant!.match(/--calibration_shapes (\S+)/)![1]!;
    expect(calib).toContain("input_ids:16x32,attention_mask:16x64,position_ids:16x32");
    expect(calib).toContain(`past_key_values.${layers - 1}.value:16x${kv}x32x${hd}`);
    expect(trtexec).toContain(`--onnx=${join(dir, "model.int8.onnx")}`);
    expect(trtexec).toContain("--stronglyTyped");
    expect(manifest).toMatchObject({ engine: "model-int8.plan", precision: "int8" });
  });
});

// A shell script standing in for trtexec: its banner names a TensorRT version, --saveEngine writes a file,
// and --getPlanVersionOnly answers with another version, so the test sees which one build_engine.py records.
function standInTrtexec(bannerVersion: number, planVersion: string): string {
  const path = join(tempDir(), "trtexec");
  writeFileSync(
    path,
    [
      "#!/usr/bin/env bash",
      `echo "&&&& RUNNING TensorRT.trtexec [TensorRT v${bannerVersion}] [b1] # trtexec $*"`,
      'for a in "$@"; do',
      '  case "$a" in',
      "    --saveEngine=*) printf 'ftrt stand-in plan' > \"${a#--saveEngine=}\" ;;",
      `    --getPlanVersionOnly) echo "[I] Plan was created with TensorRT version ${planVersion}" ;;`,
      "  esac",
      "done",
      'echo "$*" >> "$(dirname "$0")/calls.log"',
      "",
    ].join("\n"),
  );
  chmodSync(path, 0o755);
  return path;
}

describe.skipIf(noPython !== undefined)("build_engine.py with a stand-in trtexec", () => {
  /** What export_onnx.py leaves: a (placeholder) model.onnx, export.json, the config and tokenizer. */
  function exported(): string {
    const dir = tempDir();
    const config = JSON.parse(readFileSync(join(tiny, "config.json"), "utf8"));
    writeFileSync(join(dir, "model.onnx"), "placeholder: only the stand-in trtexec reads it");
    writeFileSync(
      join(dir, "export.json"),
      JSON.stringify({
        format: "neoserve-onnx-export",
        formatVersion: 1,
        onnx: "model.onnx",
        dtype: "float32",
        modelType: "llama",
        numLayers: config.num_hidden_layers,
        numKeyValueHeads: config.num_key_value_heads,
        headDim: config.head_dim ?? config.hidden_size / config.num_attention_heads,
        vocabSize: config.vocab_size,
        io: {
          inputIds: "input_ids",
          attentionMask: "attention_mask",
          positionIds: "position_ids",
          pastKey: "past_key_values.{i}.key",
          pastValue: "past_key_values.{i}.value",
          logits: "logits",
          presentKey: "present.{i}.key",
          presentValue: "present.{i}.value",
        },
      }),
    );
    for (const f of ["config.json", "tokenizer.json"]) copyFileSync(join(tiny, f), join(dir, f));
    return dir;
  }

  it("records the plan's own TensorRT version in a neoserve.json the engine loader accepts", async () => {
    const dir = exported();
    const trtexec = standInTrtexec(101600, "10.16.1.7");
    const r = py([join(tools, "build_engine.py"), dir, "--precision", "fp16", "--trtexec", trtexec], 60_000);
    expect(r.code, r.out).toBe(0);
    const manifest = JSON.parse(readFileSync(join(dir, "neoserve.json"), "utf8"));
    expect(manifest).toMatchObject({ engine: "model-fp16.plan", precision: "fp16", tensorrtVersion: "10.16.1" });
    expect(readFileSync(join(dir, "model-fp16.plan"), "utf8")).toBe("ftrt stand-in plan");

    // The loader reads that manifest, checks the engine file and the library's version (the fake
    // libnvinfer reports exactly 10.16.1), and gets as far as the provider, which finds no GPU here.
    const fakes = join(repoRoot, "build", "fake_tensorrt");
    const keys = ["NEOSERVE_NVINFER_LIBRARY", "NEOSERVE_TENSORRT_PROVIDER", "FAKE_NVINFER_VERSION"] as const;
    const saved = keys.map((k) => process.env[k]);
    Object.assign(process.env, {
      NEOSERVE_NVINFER_LIBRARY: join(fakes, "libnvinfer.so.10"),
      NEOSERVE_TENSORRT_PROVIDER: join(fakes, "neoserve_tensorrt.so"),
      FAKE_NVINFER_VERSION: "101601",
    });
    try {
      const err = await loadModel(dir, { backend: "tensorrt" }).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(ProviderUnavailableError);
      expect(err).not.toBeInstanceOf(ModelLoadError);
      expect(String(err)).toMatch(/no CUDA device/);
    } finally {
      keys.forEach((k, i) => (saved[i] === undefined ? delete process.env[k] : (process.env[k] = saved[i])));
    }
  });

  it("refuses a trtexec of another TensorRT major before building anything", () => {
    const dir = exported();
    const trtexec = standInTrtexec(110000, "11.0.0.1");
    const r = py([join(tools, "build_engine.py"), dir, "--precision", "fp16", "--trtexec", trtexec], 60_000);
    expect(r.code, r.out).toBe(2);
    expect(r.out).toMatch(/is TensorRT 11\.0\.0; neoserve's provider runs TensorRT 10 engines/);
    // Only the version probe ran: no build, no engine, no manifest.
    expect(readFileSync(join(trtexec, "..", "calls.log"), "utf8").trim()).toBe("--help");
    for (const f of ["neoserve.json", "model-fp16.plan", "build.json"]) expect(existsSync(join(dir, f)), f).toBe(false);
  });
});
