#!/usr/bin/env bash
# End-to-end check of a TensorRT setup with the bundled tiny test model (random weights, 2 layers):
#
#   bash models/tensorrt/build-tiny.sh
#
#   1. makes models/generated/tiny if it is missing (npm run make-models -- --preset tiny)
#   2. exports it to models/generated/tiny-trt/ as a float32 ONNX         (export_onnx.py)
#   3. checks the ONNX against transformers, and against neoserve's CPU engine when the addon is built
#                                                                          (check_onnx.py)
#   4. builds an fp16 engine: max batch 8, max tokens 128, max context 1024 (build_engine.py)
#   5. prints the command that streams tokens from it
#
# Needs: python3 with torch, transformers, onnx, onnxruntime; TensorRT 10 with trtexec (on PATH, in
# $TENSORRT_ROOT/bin, or TRTEXEC=/path/to/trtexec); node >= 20. PYTHON=... picks another interpreter.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
PY="${PYTHON:-python3}"
HF=models/generated/tiny/hf
OUT=models/generated/tiny-trt
TOOLS=models/tensorrt

step() { printf '\n== %s\n' "$*"; }
fail() { printf 'build-tiny: %s\n' "$*" >&2; exit 1; }

step "prerequisites"
"$PY" - <<'EOF' || fail "install the missing packages: pip install torch transformers onnx onnxruntime"
import importlib, sys
bad = []
for name in ("numpy", "torch", "transformers", "onnx", "onnxruntime"):
    try:
        m = importlib.import_module(name)
        print(f"  {name} {getattr(m, '__version__', '?')}")
    except Exception as e:
        bad.append(f"{name} ({type(e).__name__}: {e})")
if bad:
    print("  missing: " + "; ".join(bad), file=sys.stderr)
    sys.exit(1)
EOF
TRTEXEC_ARGS=()
if [[ -n "${TRTEXEC:-}" ]]; then
  TRTEXEC_ARGS=(--trtexec "$TRTEXEC")
elif ! command -v trtexec >/dev/null && [[ ! -x "${TENSORRT_ROOT:-/nonexistent}/bin/trtexec" ]] \
    && [[ ! -x /usr/src/tensorrt/bin/trtexec ]]; then
  fail "trtexec not found: put TensorRT's bin/ on PATH, set TENSORRT_ROOT, or TRTEXEC=/path/to/trtexec"
fi

step "tiny model ($HF)"
if [[ ! -f "$HF/config.json" ]]; then
  [[ -f dist/models/make-models.js ]] || npm run build:ts
  npm run make-models -- --preset tiny
else
  echo "  present"
fi

step "export to ONNX (float32) -> $OUT"
"$PY" "$TOOLS/export_onnx.py" "$HF" "$OUT" --dtype float32 --force

step "check the ONNX"
REF_ARGS=()
if [[ -f dist/src/index.js ]]; then
  REF="$OUT/reference-logits.json"
  # neoserve's CPU engine, greedy, logits kept: the --reference format check_onnx.py documents.
  if node --input-type=module - "$ROOT" "$HF" "$REF" <<'EOF'
const [root, hf, out] = process.argv.slice(2);
const { loadModel } = await import(`${root}/dist/src/index.js`);
const { writeFileSync } = await import("node:fs");
const model = await loadModel(hf, { backend: "cpu", precision: "f32" });
const prompts = [[464], [15496, 11, 616, 1438, 318], [40, 588, 257, 1310, 286, 262, 995, 11, 290, 314, 2666, 13]];
const steps = 6;
const ref = { prompts, steps, tokens: [], logits: [], source: "neoserve cpu", precision: "f32" };
try {
  for (const tokens of prompts) {
    const r = await model.generate({ tokens, maxTokens: steps, temperature: 0, ignoreEos: true, returnLogits: true }).result;
    ref.tokens.push(r.tokens);
    ref.logits.push(r.logits.map((row) => Array.from(row)));
  }
} finally {
  await model.dispose();
}
writeFileSync(out, JSON.stringify(ref));
EOF
  then
    REF_ARGS=(--reference "$REF")
  else
    echo "  (neoserve's CPU engine could not run: checking against transformers only)"
  fi
else
  echo "  (dist/ is not built: checking against transformers only; npm run build adds neoserve's CPU engine)"
fi
"$PY" "$TOOLS/check_onnx.py" "$OUT" "$HF" ${REF_ARGS[@]+"${REF_ARGS[@]}"}

step "build the fp16 engine"
"$PY" "$TOOLS/build_engine.py" "$OUT" --precision fp16 --max-batch 8 --max-tokens 128 --max-context 1024 \
  ${TRTEXEC_ARGS[@]+"${TRTEXEC_ARGS[@]}"}

step "done"
cat <<EOF
$OUT is a neoserve TensorRT model directory (neoserve.json, model-fp16.plan, config.json, tokenizer.json).
neoserve's TensorRT provider must be built once: bash scripts/build-tensorrt.sh
Stream tokens from it (the tiny model has random weights: expect gibberish, fast):

  node dist/src/cli/main.js generate "Hello" --model $OUT --backend tensorrt --max-tokens 32 --temperature 0

On a MIG slice or another GPU: CUDA_VISIBLE_DEVICES=MIG-<uuid> node dist/src/cli/main.js generate ...
neoserve's GPU tests against this engine: NEOSERVE_TEST_ENGINE_DIR=$OUT npx vitest run test/tensorrt.test.ts
EOF
