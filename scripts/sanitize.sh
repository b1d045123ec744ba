#!/usr/bin/env bash
# Builds the C++ tests with a sanitizer and runs them: address (ASan + LSan + UBSan) or thread.
set -euo pipefail
kind="${1:-address}"
dir="build-${kind}-san"
cd "$(dirname "$0")/.."
cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DNEOSERVE_SANITIZE="$kind" >/dev/null
cmake --build "$dir" --target neoserve_tests -j "${NEOSERVE_BUILD_JOBS:-2}"
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:${ASAN_OPTIONS:-}"
export TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1:${TSAN_OPTIONS:-}"
ctest --test-dir "$dir" --output-on-failure
