#!/usr/bin/env bash
# Fuzzes the checkpoint parsers: builds the libFuzzer targets with clang in
# build-fuzz and runs each for N seconds (default 60). The committed corpus
# (native/fuzz/corpus/<target>) is read-only seed input; new inputs go to
# build-fuzz/corpus/<target>, crashes to build-fuzz/artifacts/<target>/.
# Usage: scripts/fuzz.sh [seconds] [target...]   targets: json safetensors gguf
set -euo pipefail
seconds="${1:-60}"
shift || true
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=(json safetensors gguf)
cd "$(dirname "$0")/.."

if ! command -v clang++ >/dev/null; then
  # Debian 12: libFuzzer and the sanitizer runtimes come with libclang-rt-14-dev.
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update && apt-get install -y clang libclang-rt-14-dev
  else
    echo "clang++ not found; install it: apt-get update && apt-get install -y clang libclang-rt-14-dev" >&2
    exit 1
  fi
fi

CC=clang CXX=clang++ cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DNEOSERVE_FUZZ=ON -DNEOSERVE_TESTS=OFF >/dev/null
cmake --build build-fuzz --target $(printf 'fuzz_%s ' "${targets[@]}") -j "${NEOSERVE_BUILD_JOBS:-2}"

status=0
for t in "${targets[@]}"; do
  scratch="build-fuzz/corpus/$t"
  artifacts="build-fuzz/artifacts/$t/"
  mkdir -p "$scratch" "$artifacts"
  args=(-max_len=65536 -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -artifact_prefix="$artifacts" -print_final_stats=1)
  [ -f "native/fuzz/$t.dict" ] && args+=(-dict="native/fuzz/$t.dict")
  echo "== fuzz_$t for ${seconds}s"
  "build-fuzz/native/fuzz/fuzz_$t" "${args[@]}" "$scratch" "native/fuzz/corpus/$t" || status=$?
done
exit $status
