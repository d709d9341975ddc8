#!/usr/bin/env bash
# Checks the formatting, then builds and runs every test: unit, integration and end-to-end,
# first in a plain -O0 build,
# then again under AddressSanitizer + UndefinedBehaviorSanitizer, then under ThreadSanitizer;
# then the fuzzers (fuzz/run.sh ci); then the optimised build of the README's first command.
# Exit status: 0 when all pass. Each phase's wall time is printed at its end and in the summary.
set -euo pipefail
cd "$(dirname "$0")/.."
started=$(date +%s)
phase_started=$started
timings=()

# Ends the current phase: its wall time now and in the final summary.
phase_done() {
  local now
  now=$(date +%s)
  timings+=("$(printf '%-22s %5ss' "$1" $((now - phase_started)))")
  echo "== $1: $((now - phase_started))s"
  phase_started=$now
}

run_suite() {
  local dir="$1"
  ctest --test-dir "$dir" --output-on-failure --timeout 300 -j "${TURNOUT_TEST_JOBS:-2}"
}

# Every C++ file as clang-format (Debian 12's, 14) would write it, per .clang-format.
echo "== format"
git ls-files -z '*.cpp' '*.hpp' | xargs -0 clang-format --dry-run -Werror
phase_done "format"

echo "== debug build"
deploy/build.sh debug
phase_done "debug build"
echo "== debug tests"
run_suite build-debug
phase_done "debug tests"

echo "== asan+ubsan build"
deploy/build.sh asan
phase_done "asan+ubsan build"
echo "== asan+ubsan tests"
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:strict_string_checks=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
run_suite build-asan
phase_done "asan+ubsan tests"

echo "== tsan build"
deploy/build.sh tsan
phase_done "tsan build"
echo "== tsan tests"
# The first race ends the process with exit code 66; a spawned gateway's report also fails the
# test that spawned it (tests/support/process.cpp). tests/tsan.supp: third-party entries only.
export TSAN_OPTIONS="halt_on_error=1:exitcode=66:second_deadlock_stack=1:suppressions=$PWD/tests/tsan.supp"
run_suite build-tsan
phase_done "tsan tests"

echo "== fuzzers"
fuzz/run.sh ci
phase_done "fuzzers"

# The README's first command builds with -O3, where GCC 12 warns differently than at -O0: the
# optimised build must compile under -Werror too, and its binary must start.
echo "== release build"
deploy/build.sh release
build/turnout --version
build/turnout check --config deploy/examples/turnout.yaml
phase_done "release build"

printf '%s\n' "${timings[@]}"
echo "== all tests passed in $(( $(date +%s) - started ))s"
