#!/usr/bin/env bash
# Builds the TensorRT provider, neoserve_tensorrt.so, with the addon.
#
#   bash scripts/build-tensorrt.sh               cmake-js into build/: the addon and
#                                                neoserve_tensorrt.so land together in build/Release
#   bash scripts/build-tensorrt.sh --ctest-only  no Node needed (a GPU machine): plain cmake
#                                                in build-gpu/ (Ninja), then its ctest suites
#
# Needs TensorRT 10 headers (NvInfer.h): third_party/tensorrt/include, or the
# directory NEOSERVE_TENSORRT_INCLUDE names; a CUDA toolkit (nvcc); CMake, and
# Ninja for --ctest-only. Neither libnvinfer nor a GPU is needed to build.
# Jobs: NEOSERVE_BUILD_JOBS (default 2).
set -euo pipefail
cd "$(dirname "$0")/.."
root="$(pwd)"

mode="addon"
for arg in "$@"; do
  case "$arg" in
    --ctest-only) mode="ctest" ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "build-tensorrt.sh: unknown argument $arg (try --help)" >&2; exit 2 ;;
  esac
done

include="${NEOSERVE_TENSORRT_INCLUDE:-$root/third_party/tensorrt/include}"
if [[ ! -f "$include/NvInfer.h" ]]; then
  cat >&2 <<MSG
build-tensorrt.sh: no TensorRT headers: $include/NvInfer.h does not exist.
Get TensorRT 10's headers in one of two ways:
  - fetch NVIDIA/TensorRT at a v10.x tag and copy its include/ folder here:
      git clone --depth 1 --branch v10.16 https://github.com/NVIDIA/TensorRT /tmp/TensorRT
      mkdir -p third_party/tensorrt && cp -r /tmp/TensorRT/include third_party/tensorrt/
  - or point NEOSERVE_TENSORRT_INCLUDE at a TensorRT install's include directory:
      NEOSERVE_TENSORRT_INCLUDE=/usr/include/x86_64-linux-gnu bash scripts/build-tensorrt.sh
MSG
  exit 1
fi

jobs="${NEOSERVE_BUILD_JOBS:-2}"
if [[ "$mode" == "ctest" ]]; then
  cmake -S . -B build-gpu -G Ninja -DCMAKE_BUILD_TYPE=Release -DNEOSERVE_TENSORRT_INCLUDE="$include"
  cmake --build build-gpu -j "$jobs"
  ctest --test-dir build-gpu --output-on-failure
  exit 0
fi

# `cmake-js compile` skips the configure step of an already configured build/,
# which would drop the define: configure explicitly, then build.
cmakejs="$(node -p "require('path').join(require('path').dirname(require.resolve('cmake-js/package.json')), 'bin', 'cmake-js')")"
node "$cmakejs" configure --out build --CDNEOSERVE_TENSORRT_INCLUDE="$include"
node "$cmakejs" build --out build --parallel "$jobs"
if [[ ! -f build/Release/neoserve_tensorrt.so ]]; then
  echo "build-tensorrt.sh: the addon built, the provider did not: CMake skipped neoserve_tensorrt.so" \
       "(its reason is the 'TensorRT provider' line of the configure output above; usually no nvcc found:" \
       "put the CUDA toolkit's bin/ on PATH or set CUDACXX)" >&2
  exit 1
fi
ls -l build/Release/neoserve.node build/Release/neoserve_tensorrt.so
