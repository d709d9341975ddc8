#!/usr/bin/env bash
# Builds and runs the libFuzzer targets (fuzz/README.md).
#   fuzz/run.sh ci              build, replay every corpus, then fuzz each target ~15 s, two at a
#                               time; fails on any crash, leak, timeout or OOM (what CI runs)
#   fuzz/run.sh long [SECONDS]  the same with SECONDS per target (default 1800)
#   fuzz/run.sh replay          build and replay the corpora only
# Environment: FUZZ_TARGETS="sse judge" limits the targets; FUZZ_PARALLEL (default 2).
# New inputs go to build-fuzz/work/<target>/ (never into fuzz/corpus/), crash inputs to
# build-fuzz/artifacts/. A summary table gives each target's executions and executions/s.
set -euo pipefail
cd "$(dirname "$0")/.."

mode="${1:-ci}"
case "$mode" in
  ci) seconds=15 ;;
  long) seconds="${2:-1800}" ;;
  replay) seconds=0 ;;
  *) echo "usage: $0 ci | long [SECONDS] | replay" >&2; exit 2 ;;
esac
targets=(${FUZZ_TARGETS:-http_request sse anthropic judge config json_input state})
parallel="${FUZZ_PARALLEL:-2}"
bin=build-fuzz/fuzz
logs=build-fuzz/logs
work=build-fuzz/work
artifacts=build-fuzz/artifacts

started=$(date +%s)
deploy/build.sh fuzz
mkdir -p "$logs" "$work" "$artifacts"

# Findings abort (libFuzzer saves the input); leaks are findings. The limits: one input may take
# 25 s (the 200 KB nesting seeds under ASan take well under 1 s), a fuzzer 2 GiB.
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:allocator_may_return_null=0:strict_string_checks=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:suppressions=$PWD/fuzz/ubsan.supp"
symbolizer=$(command -v llvm-symbolizer-16 || command -v llvm-symbolizer || true)
if [ -n "$symbolizer" ]; then export ASAN_SYMBOLIZER_PATH="$symbolizer"; fi
common=(-detect_leaks=1 -timeout=25 -rss_limit_mb=2048 -malloc_limit_mb=2048
        -print_final_stats=1 -artifact_prefix="$artifacts/")

failed=()

# Replay: every committed input once, whole (no length cap), before any mutation.
for t in "${targets[@]}"; do
  if ! "$bin/${t}_fuzz" "${common[@]}" -runs=0 "fuzz/corpus/$t" >"$logs/$t.replay.log" 2>&1; then
    echo "== replay of fuzz/corpus/$t FAILED; log: $logs/$t.replay.log" >&2
    tail -n 60 "$logs/$t.replay.log" >&2
    failed+=("$t(replay)")
  fi
done

fuzz_one() {
  local t="$1"
  mkdir -p "$work/$t"
  # The working corpus comes first (new inputs are written there); the committed one is read.
  "$bin/${t}_fuzz" "${common[@]}" -max_total_time="$seconds" -max_len=16384 \
    "$work/$t" "fuzz/corpus/$t" >"$logs/$t.fuzz.log" 2>&1 && echo 0 >"$logs/$t.rc" || echo $? >"$logs/$t.rc"
}

if [ "$seconds" -gt 0 ]; then
  for t in "${targets[@]}"; do
    while [ "$(jobs -rp | wc -l)" -ge "$parallel" ]; do wait -n || true; done
    rm -f "$logs/$t.rc"
    fuzz_one "$t" &
  done
  wait
  for t in "${targets[@]}"; do
    if [ "$(cat "$logs/$t.rc" 2>/dev/null)" != 0 ]; then
      echo "== fuzzing $t FAILED; log: $logs/$t.fuzz.log" >&2
      grep -E "ERROR: libFuzzer|ERROR: AddressSanitizer|ERROR: LeakSanitizer|runtime error|Test unit written|SUMMARY" \
        "$logs/$t.fuzz.log" >&2 || tail -n 40 "$logs/$t.fuzz.log" >&2
      failed+=("$t(fuzz)")
    fi
  done
fi

stat_of() { grep -E "^stat::$1:" "$2" 2>/dev/null | tail -n 1 | awk '{print $2}'; }
printf '\n%-13s %8s %12s %9s %9s %8s\n' target replayed executions exec/s new_units rss_mb
for t in "${targets[@]}"; do
  replayed=$(stat_of number_of_executed_units "$logs/$t.replay.log")
  log="$logs/$t.fuzz.log"
  [ "$seconds" -gt 0 ] || log=/dev/null
  printf '%-13s %8s %12s %9s %9s %8s\n' "$t" "${replayed:--}" "$(stat_of number_of_executed_units "$log")" \
    "$(stat_of average_exec_per_sec "$log")" "$(stat_of new_units_added "$log")" "$(stat_of peak_rss_mb "$log")"
done
echo "fuzz/run.sh $mode: $(( $(date +%s) - started ))s"
if [ "${#failed[@]}" -gt 0 ]; then
  echo "FAILED: ${failed[*]} (inputs in $artifacts/; fix the bug, then add the input to fuzz/corpus/<target>/)" >&2
  exit 1
fi
