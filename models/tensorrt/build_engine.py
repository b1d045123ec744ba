#!/usr/bin/env python3
"""Build a TensorRT engine from an export_onnx.py directory and make it a neoserve TensorRT model directory.

    python3 models/tensorrt/build_engine.py <onnx_dir> --precision fp16|int8
            [--max-batch 8] [--max-tokens 512] [--max-context 2048] [--min-past 0]
            [--opt-batch B] [--opt-tokens 1] [--opt-past P]
            [--version-compatible] [--calib-prompts 32] [--calib-tokens 64]
            [--trtexec PATH] [--workspace-mib N] [--trtexec-arg ARG ...] [--dry-run]

One optimization profile covers every call neoserve makes (B = batch, S = new tokens, P = cached slots):

  input_ids, position_ids      [B, S]                     min 1x1        opt OBxOS            max MBxMS
  attention_mask               [B, P + S]                 min 1x(MP+1)   opt OBx(OP+OS)       max MBx(MC+MS)
  past_key_values.{i}.key/value [B, kv_heads, P, head_dim] min 1xKxMPxD   opt OBxKxOPxD        max MBxKxMCxD

MB = --max-batch (sequences per call), MS = --max-tokens (new tokens per sequence per call: the prefill
chunk), MC = --max-context (cached positions a call can attend besides its new tokens), MP = --min-past
(0: the first call of a sequence has an empty past; 1 if a TensorRT build rejects empty tensors: neoserve
then feeds one masked padding slot), OB/OS/OP = the shape TensorRT tunes kernels for (default: a full batch
of single-token decodes over MC/2 cached positions).

fp16: trtexec --fp16 for a float32 export (the I/O, KV cache included, stays float32; TensorRT 10.12+ marks
      --fp16 deprecated in favour of strong typing, but every 10.x honours it), --stronglyTyped for a float16
      export (the graph's own types: float16 KV cache, float32 logits): the path for production engines.
int8: quantizes the ONNX with TensorRT Model Optimizer first (python -m modelopt.onnx.quantization
      --quantize_mode int8, Q/DQ nodes on the MatMuls, float16 elsewhere), calibrated on --calib-prompts
      sequences of the tokenizer's text: each sample is a --calib-tokens chunk whose past (another chunk of
      the same text) onnxruntime computed with the unquantized graph, saved as calib.npz (one array per
      input, keyed by input name); then trtexec --stronglyTyped.

Then writes <onnx_dir>/neoserve.json (format neoserve-tensorrt v1) naming the engine, its precision and the
TensorRT version that built it (read back from the plan with trtexec --getPlanVersionOnly, else trtexec's
banner, else the tensorrt Python module), and build.json (profile, commands, versions). A trtexec of another
TensorRT major than 10 is refused before anything runs. --dry-run prints the commands and the manifest and
runs nothing.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time

# The exporter's I/O names are the defaults (the scripts run from their own directory).
from export_onnx import IO as DEFAULT_IO, layer_name

MANIFEST_FORMAT = "neoserve-tensorrt"
MANIFEST_FORMAT_VERSION = 1
# Calibration text: varied registers so activation ranges are not those of one style. Tokenized and cut into
# chunks; repeated as needed.
CALIB_TEXT = """\
The committee met on Tuesday to review the budget for the coming year. After a long discussion about
maintenance costs, the members agreed to postpone the new library wing until the spring.
Photosynthesis converts light energy into chemical energy: chlorophyll absorbs photons, water is split, and
carbon dioxide is fixed into sugars through the Calvin cycle.
def merge_sort(items):
    if len(items) <= 1:
        return items
    mid = len(items) // 2
    return merge(merge_sort(items[:mid]), merge_sort(items[mid:]))
Once upon a time, in a village at the edge of a great forest, there lived a girl who could talk to foxes.
Every evening she walked to the old mill and told them the news from the market.
Q: What is the capital of Australia? A: Canberra, although Sydney and Melbourne are larger cities.
The patient presented with a mild fever, a persistent cough and fatigue lasting ten days; a chest X-ray
showed no consolidation, and symptoms resolved with rest and fluids.
SELECT customer_id, SUM(amount) AS total FROM orders WHERE created_at >= '2024-01-01' GROUP BY customer_id
ORDER BY total DESC LIMIT 10;
In 1969 the Apollo 11 mission landed on the Moon. Neil Armstrong and Buzz Aldrin spent about two and a half
hours outside the lunar module while Michael Collins orbited above.
To reset the router, hold the button on the back for ten seconds until the light blinks orange, then wait two
minutes for it to restart and reconnect to the network.
Les marchés financiers ont réagi prudemment à l'annonce de la banque centrale. Die Temperaturen steigen am
Wochenende wieder an. El tren sale a las ocho y media de la mañana.
User: Can you summarize the main argument of the essay in two sentences?
Assistant: The author argues that cities should invest in public transport before building new roads,
because induced demand quickly fills any added road capacity.
"""


def die(msg: str, code: int = 2):
    print(f"build_engine: {msg}", file=sys.stderr)
    sys.exit(code)


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("onnx_dir", help="directory written by export_onnx.py (model.onnx, export.json, config.json, tokenizer.json)")
    p.add_argument("--precision", choices=("fp16", "int8"), required=True)
    p.add_argument("--max-batch", type=int, default=8, help="most sequences in one engine call (default 8)")
    p.add_argument("--max-tokens", type=int, default=512, help="most new tokens per sequence per call (default 512)")
    p.add_argument("--max-context", type=int, default=2048,
                   help="most cached positions (past_key_values dim 2) one call attends besides its new tokens (default 2048)")
    p.add_argument("--min-past", type=int, default=0, help="smallest past in the profile (default 0)")
    p.add_argument("--opt-batch", type=int, help="batch TensorRT tunes for (default --max-batch)")
    p.add_argument("--opt-tokens", type=int, default=1, help="new tokens TensorRT tunes for (default 1: decode)")
    p.add_argument("--opt-past", type=int, help="past TensorRT tunes for (default --max-context / 2)")
    p.add_argument("--version-compatible", action="store_true",
                   help="trtexec --versionCompatible: the engine also loads on later TensorRT 10.x runtimes")
    p.add_argument("--calib-prompts", type=int, default=32, help="int8: calibration samples (default 32)")
    p.add_argument("--calib-tokens", type=int, default=64, help="int8: new tokens per calibration sample (default 64)")
    p.add_argument("--trtexec", help="trtexec binary (default: PATH, then $TENSORRT_ROOT/bin, /usr/src/tensorrt/bin)")
    p.add_argument("--workspace-mib", type=int, help="trtexec --memPoolSize=workspace:<N>M")
    p.add_argument("--trtexec-arg", action="append", default=[], metavar="ARG",
                   help="extra trtexec argument (repeatable), e.g. --trtexec-arg=--builderOptimizationLevel=5")
    p.add_argument("--modelopt-arg", action="append", default=[], metavar="ARG",
                   help="int8: extra modelopt argument (repeatable), e.g. --modelopt-arg=--calibrate_per_node")
    p.add_argument("--engine", help="engine file name (default model-<precision>.plan)")
    p.add_argument("--python", default=sys.executable, help="Python that runs modelopt (default: this one)")
    p.add_argument("--dry-run", action="store_true", help="print the commands and the manifest; run nothing")
    return p.parse_args(argv)


# ---------------------------------------------------------------------------------------------------------------
# Profile


def read_export(onnx_dir: str) -> dict:
    path = os.path.join(onnx_dir, "export.json")
    try:
        with open(path) as f:
            meta = json.load(f)
    except (OSError, ValueError) as e:
        die(f"{path}: {e} (run export_onnx.py first)")
    for key in ("numLayers", "numKeyValueHeads", "headDim", "dtype"):
        if key not in meta:
            die(f"{path}: missing \"{key}\"")
    meta.setdefault("onnx", "model.onnx")
    meta["io"] = {**DEFAULT_IO, **meta.get("io", {})}
    return meta


def profile(meta: dict, args) -> dict:
    """{"min"|"opt"|"max": [(input name, [dims])]} in the graph's input order."""
    mb, ms, mc, mp = args.max_batch, args.max_tokens, args.max_context, args.min_past
    ob = args.opt_batch if args.opt_batch is not None else mb
    os_ = args.opt_tokens
    op = args.opt_past if args.opt_past is not None else max(mp, mc // 2)
    for name, v, lo, hi in (("--opt-batch", ob, 1, mb), ("--opt-tokens", os_, 1, ms), ("--opt-past", op, mp, mc)):
        if not lo <= v <= hi:
            die(f"{name} {v} must lie in [{lo}, {hi}]")
    if mb < 1 or ms < 1 or mc < 1 or mp < 0 or mp > mc:
        die("--max-batch, --max-tokens and --max-context must be >= 1, and 0 <= --min-past <= --max-context")
    k, d, io = meta["numKeyValueHeads"], meta["headDim"], meta["io"]
    shapes = {"min": [], "opt": [], "max": []}

    def add(name, mn, opt, mx):
        shapes["min"].append((name, mn))
        shapes["opt"].append((name, opt))
        shapes["max"].append((name, mx))

    add(io["inputIds"], [1, 1], [ob, os_], [mb, ms])
    add(io["attentionMask"], [1, mp + 1], [ob, op + os_], [mb, mc + ms])
    add(io["positionIds"], [1, 1], [ob, os_], [mb, ms])
    for i in range(meta["numLayers"]):
        for pat in (io["pastKey"], io["pastValue"]):
            add(layer_name(pat, i), [1, k, mp, d], [ob, k, op, d], [mb, k, mc, d])
    return shapes


def shape_arg(entries) -> str:
    return ",".join(f"{name}:{'x'.join(str(x) for x in dims)}" for name, dims in entries)


# ---------------------------------------------------------------------------------------------------------------
# Tools


def find_trtexec(explicit: str | None, dry_run: bool) -> str:
    if explicit:
        if not dry_run and not (os.path.isfile(explicit) and os.access(explicit, os.X_OK)):
            die(f"--trtexec {explicit}: not an executable file")
        return explicit
    found = shutil.which("trtexec")
    if found:
        return found
    candidates = []
    if os.environ.get("TENSORRT_ROOT"):
        candidates.append(os.path.join(os.environ["TENSORRT_ROOT"], "bin", "trtexec"))
    candidates.append("/usr/src/tensorrt/bin/trtexec")
    for c in candidates:
        if os.path.isfile(c) and os.access(c, os.X_OK):
            return c
    if dry_run:
        return "trtexec"
    die("trtexec not found: put TensorRT's bin/ on PATH, set TENSORRT_ROOT, or pass --trtexec PATH")


def parse_trt_version(text: str) -> str | None:
    """'10.8.0' from trtexec output: a plan's 'Plan was created with TensorRT version 10.8.0.43' line, a
    'TensorRT version: 10.8.0' line, or '[TensorRT v100800]' in its banner."""
    m = re.search(r"Plan was created with TensorRT version (\d+)\.(\d+)\.(\d+)", text)
    if m:
        return ".".join(m.groups())
    m = re.search(r"TensorRT version:\s*(\d+)\.(\d+)\.(\d+)", text)
    if m:
        return ".".join(m.groups())
    m = re.search(r"\[TensorRT v(\d+)\]", text)
    if m:
        n = int(m.group(1))
        if n >= 10000:  # TensorRT 10+: major * 10000 + minor * 100 + patch
            return f"{n // 10000}.{(n // 100) % 100}.{n % 100}"
        return f"{n // 1000}.{(n // 100) % 10}.{n % 100}"  # TensorRT 8: major * 1000 + minor * 100 + patch
    return None


def python_trt_version() -> str | None:
    try:
        import tensorrt  # noqa: F401
    except Exception:
        return None
    m = re.match(r"(\d+)\.(\d+)\.(\d+)", getattr(tensorrt, "__version__", ""))
    return ".".join(m.groups()) if m else None


def trtexec_banner_version(trtexec: str) -> str | None:
    try:
        out = subprocess.run([trtexec, "--help"], capture_output=True, text=True, timeout=60)
    except Exception:
        return None
    return parse_trt_version(out.stdout + out.stderr)


def plan_version(trtexec: str, engine_path: str) -> str | None:
    """The TensorRT version recorded in the plan itself (trtexec reads its header; needs no GPU time)."""
    try:
        out = subprocess.run([trtexec, "--getPlanVersionOnly", f"--loadEngine={engine_path}"], capture_output=True,
                             text=True, timeout=300)
    except Exception:
        return None
    m = re.search(r"Plan was created with TensorRT version (\d+)\.(\d+)\.(\d+)", out.stdout + out.stderr)
    return ".".join(m.groups()) if m else None


def run_logged(cmd: list, log_path: str) -> str:
    """Runs cmd, echoing and logging its output; returns the output. Exits on failure."""
    print(f"\n$ {shlex.join(cmd)}\n", flush=True)
    chunks = []
    with open(log_path, "a") as log:
        log.write(f"\n$ {shlex.join(cmd)}\n")
        try:
            proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1)
        except OSError as e:
            die(f"cannot run {cmd[0]}: {e}")
        for line in proc.stdout:
            sys.stdout.write(line)
            log.write(line)
            chunks.append(line)
        rc = proc.wait()
    if rc != 0:
        die(f"{os.path.basename(cmd[0])} failed (exit {rc}); the full output is in {log_path}", 1)
    return "".join(chunks)


# ---------------------------------------------------------------------------------------------------------------
# INT8 calibration data


def calibration_data(meta: dict, onnx_dir: str, n: int, tokens: int, past: int, eps: list) -> dict:
    """n samples of `tokens` new tokens after a real `past` (computed by onnxruntime on the unquantized graph)."""
    import numpy as np
    try:
        import onnxruntime as ort
    except Exception as e:
        die(f"int8 calibration needs onnxruntime ({e}); pip install onnxruntime (or onnxruntime-gpu)")
    ids = tokenize_calibration(onnx_dir, n * (past + tokens), meta.get("vocabSize"))
    seqs = np.array(ids, np.int64).reshape(n, past + tokens)
    io, layers = meta["io"], meta["numLayers"]
    kv_dtype = np.float16 if meta["dtype"] == "float16" else np.float32
    providers = ["CUDAExecutionProvider", "CPUExecutionProvider"] if "cuda:0" in eps else ["CPUExecutionProvider"]
    sess = ort.InferenceSession(os.path.join(onnx_dir, meta["onnx"]), providers=providers)
    names_out = [io["logits"]] + [layer_name(p, i) for i in range(layers) for p in (io["presentKey"], io["presentValue"])]
    presents = [[] for _ in range(2 * layers)]
    step = 8
    for b0 in range(0, n, step):
        chunk = seqs[b0:b0 + step, :past]
        bsz = chunk.shape[0]
        feeds = {
            io["inputIds"]: chunk,
            io["attentionMask"]: np.ones((bsz, past), np.int64),
            io["positionIds"]: np.broadcast_to(np.arange(past, dtype=np.int64), (bsz, past)).copy(),
        }
        for i in range(layers):
            for p in (io["pastKey"], io["pastValue"]):
                feeds[layer_name(p, i)] = np.zeros((bsz, meta["numKeyValueHeads"], 0, meta["headDim"]), kv_dtype)
        out = sess.run(names_out, feeds)
        for j, t in enumerate(out[1:]):
            presents[j].append(t)
    data = {
        io["inputIds"]: seqs[:, past:].copy(),
        io["attentionMask"]: np.ones((n, past + tokens), np.int64),
        io["positionIds"]: np.broadcast_to(np.arange(past, past + tokens, dtype=np.int64), (n, tokens)).copy(),
    }
    j = 0
    for i in range(layers):
        for p in (io["pastKey"], io["pastValue"]):
            data[layer_name(p, i)] = np.concatenate(presents[j], 0).astype(kv_dtype)
            j += 1
    return data


def tokenize_calibration(onnx_dir: str, count: int, vocab: int | None) -> list:
    path = os.path.join(onnx_dir, "tokenizer.json")
    try:
        from tokenizers import Tokenizer
        ids = Tokenizer.from_file(path).encode(CALIB_TEXT, add_special_tokens=False).ids
    except Exception as e:
        die(f"int8 calibration tokenizes text with {path} ({type(e).__name__}: {e}); pip install tokenizers")
    if not ids:
        die(f"{path} produced no tokens for the calibration text")
    out, k = [], 0
    while len(out) < count:  # each pass over the text starts 7 tokens further in, so chunks differ
        shift = (7 * k) % len(ids)
        out.extend(ids[shift:] + ids[:shift])
        k += 1
    out = out[:count]
    if vocab and any(t >= vocab for t in out):
        die(f"{path} gives token ids beyond the model's vocab ({vocab})")
    return out


# ---------------------------------------------------------------------------------------------------------------


def main(argv=None) -> int:
    args = parse_args(argv)
    onnx_dir = os.path.abspath(args.onnx_dir)
    meta = read_export(onnx_dir)
    onnx_path = os.path.join(onnx_dir, meta["onnx"])
    if not args.dry_run and not os.path.isfile(onnx_path):
        die(f"{onnx_path} does not exist")
    for f in ("config.json", "tokenizer.json"):
        if not os.path.isfile(os.path.join(onnx_dir, f)):
            msg = f"{onnx_dir} has no {f}; neoserve needs it beside the engine"
            if args.dry_run:
                print(f"warning: {msg}", file=sys.stderr)
            else:
                die(msg)

    engine_name = args.engine or f"model-{args.precision}.plan"
    if os.path.basename(engine_name) != engine_name or engine_name in ("", ".", ".."):
        die("--engine must be a file name inside the directory")
    engine_path = os.path.join(onnx_dir, engine_name)
    log_path = os.path.join(onnx_dir, "build.log")
    shapes = profile(meta, args)
    trtexec = find_trtexec(args.trtexec, args.dry_run)
    commands = []

    build_onnx = onnx_path
    calib_path = None
    calib_eps = ["cpu"]
    if args.precision == "int8":
        quant_name = os.path.splitext(meta["onnx"])[0] + ".int8.onnx"
        build_onnx = os.path.join(onnx_dir, quant_name)
        calib_path = os.path.join(onnx_dir, "calib.npz")
        try:
            import onnxruntime as ort
            if "CUDAExecutionProvider" in ort.get_available_providers():
                calib_eps = ["cuda:0", "cpu"]
        except Exception:
            pass
        n, t = args.calib_prompts, min(args.calib_tokens, args.max_tokens)
        past = max(1, min(t, args.max_context))
        if n < 1 or t < 1:
            die("--calib-prompts and --calib-tokens must be >= 1")
        io = meta["io"]
        calib_shapes = [(io["inputIds"], [n, t]), (io["attentionMask"], [n, past + t]), (io["positionIds"], [n, t])]
        calib_shapes += [(name, [n, dims[1], past, dims[3]]) for name, dims in shapes["min"][3:]]
        if meta["dtype"] == "float16":
            print("warning: int8 from a float16 export: modelopt calibrates with onnxruntime's quantizer, which "
                  "expects a float32 graph; if it fails, export with --dtype float32 (modelopt converts what it "
                  "does not quantize to float16 itself)", file=sys.stderr)
        quant_cmd = [
            args.python, "-m", "modelopt.onnx.quantization",
            "--onnx_path", onnx_path,
            "--quantize_mode", "int8",
            "--calibration_data_path", calib_path,
            # One calibration batch holding every sample (its shapes spelled out: the graph's are dynamic).
            "--calibration_shapes", shape_arg(calib_shapes),
            "--calibration_eps", *calib_eps,
            "--high_precision_dtype", "fp16",
            "--output_path", build_onnx,
        ]
        if meta.get("externalData"):
            quant_cmd.append("--use_external_data_format")
        quant_cmd += args.modelopt_arg
        commands.append(("quantize", quant_cmd))

    trt_cmd = [
        trtexec,
        f"--onnx={build_onnx}",
        f"--saveEngine={engine_path}",
        f"--minShapes={shape_arg(shapes['min'])}",
        f"--optShapes={shape_arg(shapes['opt'])}",
        f"--maxShapes={shape_arg(shapes['max'])}",
    ]
    if args.precision == "fp16" and meta["dtype"] == "float32":
        trt_cmd.append("--fp16")
    else:
        trt_cmd.append("--stronglyTyped")
    if args.version_compatible:
        trt_cmd.append("--versionCompatible")
    if args.workspace_mib:
        trt_cmd.append(f"--memPoolSize=workspace:{args.workspace_mib}M")
    trt_cmd.append("--skipInference")  # build only; neoserve feeds real token ids (random ones could overflow gathers)
    trt_cmd += args.trtexec_arg
    commands.append(("build", trt_cmd))

    manifest = {
        "format": MANIFEST_FORMAT,
        "formatVersion": MANIFEST_FORMAT_VERSION,
        "engine": engine_name,
        "precision": args.precision,
        "tensorrtVersion": None,
        "versionCompatible": bool(args.version_compatible),
        "config": "config.json",
        "io": meta["io"],
    }
    print(f"{meta.get('modelType', 'model')}: {meta['numLayers']} layers, {meta['numKeyValueHeads']} kv heads x "
          f"{meta['headDim']}, {meta['dtype']} ONNX -> {args.precision} engine {engine_name}")
    print(f"profile: batch <= {args.max_batch}, tokens per call <= {args.max_tokens}, "
          f"past {args.min_past}..{args.max_context}")

    if args.dry_run:
        if calib_path:
            print(f"\n# int8 calibration data: {args.calib_prompts} samples of {min(args.calib_tokens, args.max_tokens)} "
                  f"tokens after a computed past, from tokenizer.json -> {calib_path}")
        for what, cmd in commands:
            print(f"\n# {what}\n{shlex.join(cmd)}")
        version = python_trt_version() or (trtexec_banner_version(trtexec) if shutil.which(trtexec) else None)
        manifest["tensorrtVersion"] = version or "<the TensorRT version trtexec reports>"
        print(f"\n# {os.path.join(onnx_dir, 'neoserve.json')}\n{json.dumps(manifest, indent=2)}")
        print("\ndry run: nothing was run or written")
        return 0

    # Before quantizing or building: an engine of another major could not be loaded by the provider.
    trtexec_version = trtexec_banner_version(trtexec)
    if trtexec_version is None:
        print(f"warning: cannot tell {trtexec}'s TensorRT version from its --help banner; going on", file=sys.stderr)
    elif not trtexec_version.startswith("10."):
        die(f"{trtexec} is TensorRT {trtexec_version}; neoserve's provider runs TensorRT 10 engines "
            "(put TensorRT 10's trtexec first on PATH, or pass --trtexec PATH)")

    t0 = time.time()
    with open(log_path, "w") as log:
        log.write(f"build_engine.py {' '.join(sys.argv[1:])}\n")
    if calib_path:
        n, t = args.calib_prompts, min(args.calib_tokens, args.max_tokens)
        past = max(1, min(t, args.max_context))
        print(f"\ncalibration data: {n} samples of {t} tokens after a {past}-token past -> {calib_path}")
        import numpy as np
        np.savez(calib_path, **calibration_data(meta, onnx_dir, n, t, past, calib_eps))
    output = ""
    for what, cmd in commands:
        output = run_logged(cmd, log_path)
    if not os.path.isfile(engine_path) or os.path.getsize(engine_path) == 0:
        die(f"trtexec reported success but wrote no engine at {engine_path}", 1)

    version = plan_version(trtexec, engine_path) or parse_trt_version(output)
    py_version = python_trt_version()
    if version is None:
        version = py_version or trtexec_version
    elif py_version and py_version != version:
        print(f"warning: the tensorrt Python module is {py_version} but trtexec built with {version}; "
              f"neoserve.json records {version}", file=sys.stderr)
    if version is None:
        die("could not tell which TensorRT version built the engine (no banner in trtexec's output, no tensorrt "
            "module); write neoserve.json by hand with \"tensorrtVersion\"", 1)
    if not version.startswith("10."):
        print(f"warning: TensorRT {version} built the engine; neoserve's provider runs TensorRT 10 engines",
              file=sys.stderr)
    manifest["tensorrtVersion"] = version
    with open(os.path.join(onnx_dir, "neoserve.json"), "w") as f:
        json.dump(manifest, f, indent=2)
        f.write("\n")
    build = {
        "onnx": os.path.basename(build_onnx),
        "precision": args.precision,
        "tensorrtVersion": version,
        "profile": {k: {name: dims for name, dims in v} for k, v in shapes.items()},
        "commands": [shlex.join(c) for _, c in commands],
        "seconds": round(time.time() - t0, 1),
    }
    with open(os.path.join(onnx_dir, "build.json"), "w") as f:
        json.dump(build, f, indent=2)
        f.write("\n")
    size = os.path.getsize(engine_path) / 1e6
    print(f"\nwrote {engine_path} ({size:.1f} MB, TensorRT {version}{', version-compatible' if args.version_compatible else ''})"
          f" and {os.path.join(onnx_dir, 'neoserve.json')} in {time.time() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
