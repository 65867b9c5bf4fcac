#!/usr/bin/env bash
# The whole test suite: install what is missing, build (release, and an
# ASan + UBSan build of the CPU code), run every test. GPU tests skip without a GPU.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
jobs=$(nproc)
cmake --preset release >/dev/null
cmake --build --preset release -j"$jobs"
ctest --preset release -j"$jobs"
cmake --preset asan >/dev/null
cmake --build --preset asan -j"$jobs" --target mdnstab_tests
# The sanitizer build runs the unit tests (the CLI end-to-end tests run in release).
start=$SECONDS
ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 ctest --preset asan -j"$jobs" -L unit
echo "ASan + UBSan unit tests: $((SECONDS - start)) s"

