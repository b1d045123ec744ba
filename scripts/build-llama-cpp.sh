#!/usr/bin/env bash
# Builds llama.cpp's own tools (llama-server, llama-bench, llama-batched-bench)
# from the source node-llama-cpp ships, into third_party/llama.cpp (git-ignored):
# the native anchors the benchmarks compare against. No download: the source is
# the git bundle in node_modules. On a CPU that advertises AMX the VM may trap
# on, AMX is turned off and AVX-512 turned on explicitly. Targets given as
# arguments are built instead of those three, e.g.
# `bash scripts/build-llama-cpp.sh llama-quantize` (the tests' quantizer, see
# test/helpers/llama-quantize.ts).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
src="$root/third_party/llama.cpp"
bundle="$root/node_modules/node-llama-cpp/llama/gitRelease.bundle"
[ -d "$src/.git" ] || git clone -q "$bundle" "$src"
flags=(-DCMAKE_BUILD_TYPE=Release -DLLAMA_CURL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=ON -DLLAMA_BUILD_TOOLS=ON)
if grep -q amx /proc/cpuinfo; then
  flags+=(-DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_AVX512=ON -DGGML_AVX512_VNNI=ON -DGGML_AVX512_BF16=ON -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF)
fi
cmake -S "$src" -B "$src/build" -G Ninja "${flags[@]}" > /dev/null
targets=("$@")
[ "${#targets[@]}" -gt 0 ] || targets=(llama-server llama-bench llama-batched-bench)
cmake --build "$src/build" --target "${targets[@]}" -j "$(nproc)"
for t in "${targets[@]}"; do echo "built: $src/build/bin/$t"; done
