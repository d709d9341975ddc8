#!/usr/bin/env bash
# Builds and runs every test: unit, integration and end-to-end, first in a plain -O0 build,
# then again under AddressSanitizer + UndefinedBehaviorSanitizer. Exit status: 0 when all pass.
set -euo pipefail
cd "$(dirname "$0")/.."
started=$(date +%s)

run_suite() {
  local dir="$1"
  ctest --test-dir "$dir" --output-on-failure --timeout 300 -j "${TURNOUT_TEST_JOBS:-2}"
}

echo "== debug build"
deploy/build.sh debug
echo "== debug tests"
run_suite build-debug

echo "== asan+ubsan build"
deploy/build.sh asan
echo "== asan+ubsan tests"
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:strict_string_checks=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
run_suite build-asan

echo "== all tests passed in $(( $(date +%s) - started ))s"
