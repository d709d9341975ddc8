#!/usr/bin/env bash
# End-to-end test: the official `openai` npm package against turnout.
#
#   tests/e2e/run-openai-sdk.sh TURNOUT_BIN
#
# For each upstream configuration (TURNOUT_E2E_UPSTREAMS, default "openai anthropic"):
# start `turnout simulate` and `turnout serve` on ephemeral ports, wait for
# their "listening" lines, then run `node --test openai_sdk.test.mjs` with the
# gateway's URL in TURNOUT_E2E_BASE_URL. Exits with node's status (the first
# non-zero one across configurations). Every process started here is killed on
# exit, and the temp dir is removed (kept with TURNOUT_E2E_KEEP=1).
#
# Adding a configuration (e.g. an Anthropic-kind upstream): write
# start_upstream_<name> (sets UPSTREAM_BASE_URL) and provider_yaml_<name>
# (prints the `providers.sim` block), then list <name> in TURNOUT_E2E_UPSTREAMS.
# Functions are called through names built at run time (start_upstream_$cfg).
# shellcheck disable=SC2317
set -euo pipefail

if [[ $# -lt 1 ]]; then
  echo "usage: $0 TURNOUT_BIN" >&2
  exit 2
fi
TURNOUT_BIN=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
if [[ ! -x "$TURNOUT_BIN" ]]; then
  echo "e2e: $TURNOUT_BIN is not an executable" >&2
  exit 2
fi

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
UPSTREAMS=${TURNOUT_E2E_UPSTREAMS:-openai anthropic}
# The Anthropic simulator wants some x-api-key; any value does.
export TURNOUT_E2E_ANTHROPIC_KEY=${TURNOUT_E2E_ANTHROPIC_KEY:-e2e-test-key}
START_TIMEOUT_S=${TURNOUT_E2E_START_TIMEOUT:-30}

WORK=$(mktemp -d "${TMPDIR:-/tmp}/turnout-e2e.XXXXXX")
PIDS=()

cleanup() {
  local status=$?
  local pid
  for pid in "${PIDS[@]}"; do
    kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in "${PIDS[@]}"; do
    # Give each process a moment to drain, then insist.
    for _ in $(seq 1 50); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  if [[ "${TURNOUT_E2E_KEEP:-0}" == 1 ]]; then
    echo "e2e: logs kept in $WORK" >&2
  else
    rm -rf "$WORK"
  fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

log() { echo "e2e: $*" >&2; }

dump_logs() {
  local f
  for f in "$WORK"/*.out "$WORK"/*.err; do
    [[ -s "$f" ]] || continue
    echo "----- $f (last 40 lines)" >&2
    tail -n 40 "$f" >&2
  done
}

# --- node_modules: `npm ci` when missing or stale --------------------------
# The stamp is a hash of package.json + package-lock.json written after a
# successful `npm ci`; any change to either re-installs.
ensure_node_modules() {
  local want have=""
  want=$(cat "$HERE/package.json" "$HERE/package-lock.json" | sha256sum | cut -d' ' -f1)
  [[ -f "$HERE/node_modules/.turnout-e2e-stamp" ]] && have=$(cat "$HERE/node_modules/.turnout-e2e-stamp")
  if [[ "$want" != "$have" || ! -d "$HERE/node_modules/openai" ]]; then
    log "installing node_modules (npm ci)"
    (cd "$HERE" && npm ci --no-audit --no-fund) >&2
    echo "$want" >"$HERE/node_modules/.turnout-e2e-stamp"
  fi
}

# --- processes --------------------------------------------------------------
# start NAME CMD...: run CMD in the background, stdout/stderr to $WORK/NAME.{out,err}.
# Sets LAST_PID.
start() {
  local name=$1
  shift
  "$@" >"$WORK/$name.out" 2>"$WORK/$name.err" &
  LAST_PID=$!
  PIDS+=("$LAST_PID")
}

# wait_listening NAME PID KIND: poll NAME's stdout for the JSON line
# {"msg":"listening","kind":KIND,"listen":"HOST:PORT"} and print HOST:PORT.
wait_listening() {
  local name=$1 pid=$2 kind=$3 deadline line addr
  deadline=$((SECONDS + START_TIMEOUT_S))
  while ((SECONDS < deadline)); do
    line=$(grep -E '"msg" *: *"listening"' "$WORK/$name.out" 2>/dev/null |
      grep -E "\"kind\" *: *\"$kind\"" | head -n 1 || true)
    if [[ -n "$line" ]]; then
      addr=$(sed -E 's/.*"listen" *: *"([^"]+)".*/\1/' <<<"$line")
      if [[ "$addr" =~ ^[^:]+:[0-9]+$ && "${addr##*:}" != 0 ]]; then
        echo "$addr"
        return 0
      fi
      log "$name: cannot read the address from: $line"
      return 1
    fi
    if ! kill -0 "$pid" 2>/dev/null; then
      log "$name exited before listening"
      return 1
    fi
    sleep 0.05 # polling interval, not synchronisation
  done
  log "$name: no \"listening\" line with kind $kind within ${START_TIMEOUT_S}s"
  return 1
}

# --- upstream configurations ------------------------------------------------
# start_upstream_<kind> CFG: start the fake upstream; set UPSTREAM_BASE_URL.
# provider_yaml_<kind>: print the providers block for it (provider name: sim).

# The simulator's answer is fixed, so a streamed answer can be compared with a
# non-streamed one; ttft/tps keep it quick while still streaming in many chunks.
SIM_TEXT="Hello from the turnout end-to-end simulator, streamed in several chunks."

start_upstream_openai() {
  local cfg=$1 addr
  start "sim-$cfg" "$TURNOUT_BIN" simulate --kind openai --listen 127.0.0.1:0 --threads 1 \
    --ttft 5ms --tps 2000 --text "$SIM_TEXT"
  addr=$(wait_listening "sim-$cfg" "$LAST_PID" simulator) || return 1
  UPSTREAM_BASE_URL="http://$addr/v1"
}

provider_yaml_openai() {
  cat <<EOF
  sim:
    kind: openai
    base_url: $UPSTREAM_BASE_URL
    timeout: 30s
    max_connections: 16
EOF
}

# An Anthropic Messages upstream: the gateway translates both ways, streams included.
start_upstream_anthropic() {
  local cfg=$1 addr
  start "sim-$cfg" "$TURNOUT_BIN" simulate --kind anthropic --listen 127.0.0.1:0 --threads 1 \
    --ttft 5ms --tps 2000 --text "$SIM_TEXT"
  addr=$(wait_listening "sim-$cfg" "$LAST_PID" simulator) || return 1
  UPSTREAM_BASE_URL="http://$addr"
}

provider_yaml_anthropic() {
  cat <<EOF
  sim:
    kind: anthropic
    base_url: $UPSTREAM_BASE_URL
    api_key_env: TURNOUT_E2E_ANTHROPIC_KEY
    timeout: 30s
    max_connections: 16
EOF
}

write_gateway_config() {
  local cfg=$1 file=$2
  cat >"$file" <<EOF
listen: 127.0.0.1:0
admin:
  listen: 127.0.0.1:0
state:
  path: $WORK/state-$cfg
limits:
  max_body_bytes: 1MiB
  max_header_bytes: 64KiB
  client_timeout: 10s
  keepalive_timeout: 30s
  max_connections: 256
log: {level: info, format: json}
providers:
$(provider_yaml_"$cfg")
routes:
  - name: smart
    match:
      model: smart
    primary: {provider: sim, model: sim-large}
    timeout: 30s
EOF
}

run_config() {
  local cfg=$1 gw_addr conf status
  if ! declare -F "start_upstream_$cfg" >/dev/null; then
    log "unknown upstream configuration: $cfg"
    return 2
  fi
  log "[$cfg] starting the upstream"
  "start_upstream_$cfg" "$cfg" || { dump_logs; return 1; }
  conf="$WORK/turnout-$cfg.yaml"
  write_gateway_config "$cfg" "$conf"
  log "[$cfg] starting the gateway"
  start "gateway-$cfg" "$TURNOUT_BIN" serve --config "$conf" --threads 2
  local gw_pid=$LAST_PID
  gw_addr=$(wait_listening "gateway-$cfg" "$gw_pid" api) || { dump_logs; return 1; }
  log "[$cfg] gateway at http://$gw_addr, upstream at $UPSTREAM_BASE_URL"

  status=0
  (
    cd "$HERE"
    TURNOUT_E2E_BASE_URL="http://$gw_addr/v1" \
      TURNOUT_E2E_MODEL=smart \
      TURNOUT_E2E_UPSTREAM_MODEL=sim-large \
      TURNOUT_E2E_TARGET=sim/sim-large \
      TURNOUT_E2E_UPSTREAM_KIND="$cfg" \
      node --test --test-reporter=spec openai_sdk.test.mjs
  ) || status=$?
  if ((status != 0)); then
    log "[$cfg] node --test failed with status $status"
    dump_logs
  fi
  return "$status"
}

ensure_node_modules

final=0
for cfg in $UPSTREAMS; do
  rc=0
  run_config "$cfg" || rc=$?
  if ((rc != 0 && final == 0)); then final=$rc; fi
done
exit "$final"
