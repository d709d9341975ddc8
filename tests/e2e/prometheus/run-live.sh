#!/usr/bin/env bash
# Live Prometheus test: a real gateway, a real Prometheus server, real traffic.
#
#   tests/e2e/prometheus/run-live.sh TURNOUT_BIN METRICS_TOOL
#
# 1. Starts `turnout simulate` and `turnout serve` (API and admin on 127.0.0.1:0), and a
#    Prometheus server on a free loopback port with a temporary config and data directory,
#    scraping the gateway's admin /metrics every second and loading deploy/prometheus/alerts.yml.
# 2. Sends known traffic with curl (plain and streamed requests to a route, requests for an
#    unknown model), then checks:
#      - GET /metrics: 200, Prometheus text content type, `promtool check metrics` clean;
#      - PromQL through Prometheus' HTTP API: turnout_requests_total matches what was sent;
# 3. Sends 1,000 requests with random model names and random headers and checks that the
#    number of turnout_* series is unchanged, both in /metrics and in Prometheus.
# 4. Runs every dashboard query (from METRICS_TOOL dashboard-queries) through Prometheus (no
#    PromQL errors), and waits until every alert rule has been evaluated without error.
#
# Every process started here is killed on exit; the temp dir is removed (kept with
# TURNOUT_E2E_KEEP=1).
set -euo pipefail

if [[ $# -lt 2 ]]; then
  echo "usage: $0 TURNOUT_BIN METRICS_TOOL" >&2
  exit 2
fi
abs() { echo "$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"; }
TURNOUT_BIN=$(abs "$1")
METRICS_TOOL=$(abs "$2")
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../../.." && pwd)
START_TIMEOUT_S=${TURNOUT_E2E_START_TIMEOUT:-30}
WAIT_TIMEOUT_S=${TURNOUT_E2E_WAIT_TIMEOUT:-60}

for tool in curl prometheus promtool; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "live: $tool not found (deploy/install-deps.sh installs it)" >&2
    exit 1
  fi
done

WORK=$(mktemp -d "${TMPDIR:-/tmp}/turnout-prom-live.XXXXXX")
PIDS=()

cleanup() {
  local status=$?
  local pid
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do
    for _ in $(seq 1 50); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  if [[ "${TURNOUT_E2E_KEEP:-0}" == 1 ]]; then
    echo "live: files kept in $WORK" >&2
  else
    rm -rf "$WORK"
  fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

log() { echo "live: $*" >&2; }
fail() {
  log "FAIL: $*"
  dump_logs
  exit 1
}

dump_logs() {
  local f
  for f in "$WORK"/*.out "$WORK"/*.err; do
    [[ -s "$f" ]] || continue
    echo "----- $f (last 30 lines)" >&2
    tail -n 30 "$f" >&2
  done
}

# start NAME CMD...: run CMD in the background, output to $WORK/NAME.{out,err}; sets LAST_PID.
start() {
  local name=$1
  shift
  "$@" >"$WORK/$name.out" 2>"$WORK/$name.err" &
  LAST_PID=$!
  PIDS+=("$LAST_PID")
}

# wait_listening NAME PID KIND: print HOST:PORT from the {"msg":"listening","kind":KIND} line.
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
    kill -0 "$pid" 2>/dev/null || { log "$name exited before listening"; return 1; }
    sleep 0.05 # polling interval, not synchronisation
  done
  log "$name: no \"listening\" line with kind $kind within ${START_TIMEOUT_S}s"
  return 1
}

# --- the gateway ------------------------------------------------------------------------------
start simulator "$TURNOUT_BIN" simulate --kind openai --listen 127.0.0.1:0 --threads 1 \
  --ttft 2ms --tps 5000 --text "Hello from the Prometheus live test."
SIM=$(wait_listening simulator "$LAST_PID" simulator) || fail "simulator did not start"

cat >"$WORK/turnout.yaml" <<EOF
listen: 127.0.0.1:0
admin:
  listen: 127.0.0.1:0
state:
  path: $WORK/state
log: {level: info, format: json}   # "listening" lines are info
providers:
  sim:
    kind: openai
    base_url: http://$SIM/v1
    timeout: 30s
    max_connections: 16
    price: {input_per_mtok: 3.0, output_per_mtok: 15.0}
routes:
  - name: smart
    match: {model: smart}
    primary: {provider: sim, model: sim-large}
    timeout: 30s
EOF
start gateway "$TURNOUT_BIN" serve --config "$WORK/turnout.yaml" --threads 2
GW_PID=$LAST_PID
API=$(wait_listening gateway "$GW_PID" api) || fail "gateway did not start"
ADMIN=$(wait_listening gateway "$GW_PID" admin) || fail "gateway admin listener did not start"
log "gateway http://$API, admin http://$ADMIN, simulator http://$SIM"

# --- Prometheus on a free loopback port ---------------------------------------------------------
cat >"$WORK/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files:
  - $ROOT/deploy/prometheus/alerts.yml
scrape_configs:
  - job_name: turnout
    metrics_path: /metrics
    static_configs:
      - targets: ["$ADMIN"]
EOF
PROM=""
for attempt in 1 2 3 4 5 6 7 8; do
  port=$((20000 + (RANDOM * 7 + attempt) % 40000))
  start "prometheus-$attempt" prometheus --config.file="$WORK/prometheus.yml" \
    --storage.tsdb.path="$WORK/prometheus-data-$attempt" \
    --web.listen-address="127.0.0.1:$port" --log.level=warn
  pid=$LAST_PID
  deadline=$((SECONDS + START_TIMEOUT_S))
  while ((SECONDS < deadline)) && kill -0 "$pid" 2>/dev/null; do
    if curl -fsS "http://127.0.0.1:$port/-/ready" >/dev/null 2>&1; then
      PROM="127.0.0.1:$port"
      break
    fi
    sleep 0.1 # polling interval
  done
  [[ -n "$PROM" ]] && break
  kill -KILL "$pid" 2>/dev/null || true
  # Only a port someone else took is worth another try.
  grep -qi 'address already in use' "$WORK/prometheus-$attempt.err" ||
    fail "Prometheus did not start on port $port"
done
[[ -n "$PROM" ]] || fail "Prometheus did not start"
log "prometheus http://$PROM"

prom_query() {
  curl -fsS -G --data-urlencode "query=$1" "http://$PROM/api/v1/query"
}
# prom_value QUERY: the value of the first sample of an instant query ("" when none).
prom_value() {
  prom_query "$1" | sed -nE 's/.*"value":\[[^,]*,"([^"]*)"\].*/\1/p'
}
# wait_value QUERY WANT: poll until the query's value is WANT (scrapes run every second).
wait_value() {
  local query=$1 want=$2 got="" deadline=$((SECONDS + WAIT_TIMEOUT_S))
  while ((SECONDS < deadline)); do
    got=$(prom_value "$query" || true)
    [[ "$got" == "$want" ]] && return 0
    sleep 0.25 # polling interval
  done
  fail "PromQL $query = '$got', want '$want'"
}

# --- traffic ------------------------------------------------------------------------------------
# send MODEL STREAM WANT_CODE [HEADER...]
send() {
  local model=$1 stream=$2 want=$3 code
  shift 3
  local args=()
  for h in "$@"; do args+=(-H "$h"); done
  code=$(curl -sS -o /dev/null -w '%{http_code}' "${args[@]}" -H 'content-type: application/json' \
    --data "{\"model\":\"$model\",\"stream\":$stream,\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}" \
    "http://$API/v1/chat/completions")
  [[ "$code" == "$want" ]] || fail "model $model stream $stream: HTTP $code, want $want"
}

for _ in $(seq 1 20); do send smart false 200; done
for _ in $(seq 1 5); do send smart true 200; done
for i in 1 2 3; do send "no-such-model-$i" false 404; done
OK_SENT=25
UNMATCHED_SENT=3

# --- /metrics itself ----------------------------------------------------------------------------
headers=$(curl -sS -D - -o "$WORK/metrics-1.txt" "http://$ADMIN/metrics") ||
  fail "GET /metrics failed"
status=$(head -n 1 <<<"$headers" | tr -d '\r')
[[ "$status" == *" 200"* ]] ||
  fail "GET /metrics answered '$status': the gateway does not serve turnout's metrics yet"
grep -qi '^content-type: text/plain; version=0.0.4' <<<"$headers" ||
  fail "GET /metrics content type: $(grep -i '^content-type' <<<"$headers")"
promtool check metrics <"$WORK/metrics-1.txt" || fail "promtool check metrics on a live /metrics"
log "GET /metrics: 200, text format, promtool check metrics clean"

# --- PromQL matches what was sent ---------------------------------------------------------------
wait_value 'sum(turnout_requests_total{route="smart",provider="sim",model="sim-large",code="200"})' \
  "$OK_SENT"
wait_value 'sum(turnout_requests_total{route="none",code="404"})' "$UNMATCHED_SENT"
wait_value 'sum(turnout_request_duration_seconds_count{route="smart",provider="sim"})' "$OK_SENT"
wait_value 'sum(turnout_inflight_requests)' 0
log "PromQL: turnout_requests_total matches the requests sent"

count_series() { grep -c '^turnout_' "$1" || true; }
series_before=$(count_series "$WORK/metrics-1.txt")
prom_series_before=$(prom_value 'count({__name__=~"turnout_.+"})')

# --- cardinality: 1,000 requests with random model names and headers ---------------------------
: >"$WORK/random.curl"
random_ok=0
random_unmatched=0
for i in $(seq 1 1000); do
  r=$(printf '%04x%04x' "$RANDOM" "$RANDOM")
  if ((i % 2 == 0)); then
    model="smart"
    random_ok=$((random_ok + 1))
  else
    model="rand-$r-$i"
    random_unmatched=$((random_unmatched + 1))
  fi
  ((i > 1)) && echo "next" >>"$WORK/random.curl"
  cat >>"$WORK/random.curl" <<EOF
url = "http://$API/v1/chat/completions"
header = "content-type: application/json"
header = "x-rand-$r: $RANDOM"
header = "x-team: team-$r"
header = "x-request-id: req-$r-$i"
header = "user-agent: random-agent/$r"
data = "{\"model\":\"$model\",\"messages\":[{\"role\":\"user\",\"content\":\"$r\"}]}"
output = "/dev/null"
write-out = "%{http_code}\n"
EOF
done
curl -sS -K "$WORK/random.curl" >"$WORK/random.codes" || fail "random traffic: curl failed"
got_ok=$(grep -c '^200$' "$WORK/random.codes" || true)
got_404=$(grep -c '^404$' "$WORK/random.codes" || true)
[[ "$got_ok" == "$random_ok" && "$got_404" == "$random_unmatched" ]] ||
  fail "random traffic: $got_ok x 200 (want $random_ok), $got_404 x 404 (want $random_unmatched)"

curl -fsS -o "$WORK/metrics-2.txt" "http://$ADMIN/metrics" || fail "GET /metrics failed"
series_after=$(count_series "$WORK/metrics-2.txt")
((series_after == series_before)) ||
  fail "/metrics grew from $series_before to $series_after series after random traffic: $(
    diff <(sed -E 's/ [^ ]+$//' "$WORK/metrics-1.txt" | grep '^turnout_' | sort) \
      <(sed -E 's/ [^ ]+$//' "$WORK/metrics-2.txt" | grep '^turnout_' | sort) | head -n 20)"
wait_value 'sum(turnout_requests_total{route="smart",code="200"})' "$((OK_SENT + random_ok))"
wait_value 'sum(turnout_requests_total{route="none",code="404"})' \
  "$((UNMATCHED_SENT + random_unmatched))"
prom_series_after=$(prom_value 'count({__name__=~"turnout_.+"})')
[[ "$prom_series_after" == "$prom_series_before" ]] ||
  fail "Prometheus series grew from $prom_series_before to $prom_series_after"
log "cardinality: 1,000 random requests, still $series_after series"

# --- every dashboard query runs; every alert rule evaluates -------------------------------------
queries=0
while IFS= read -r query; do
  [[ -n "$query" ]] || continue
  answer=$(prom_query "$query" 2>&1) || fail "dashboard query failed: $query: $answer"
  grep -q '"status":"success"' <<<"$answer" || fail "dashboard query: $query: $answer"
  queries=$((queries + 1))
done < <("$METRICS_TOOL" dashboard-queries "$ROOT/deploy/grafana/dashboard.json")
((queries > 0)) || fail "no dashboard queries"
log "dashboard: $queries queries ran"

deadline=$((SECONDS + WAIT_TIMEOUT_S))
while :; do
  rules=$(curl -fsS "http://$PROM/api/v1/rules") || fail "GET /api/v1/rules"
  # grep -c counts lines, and the answer is one line: count the matches themselves.
  total=$({ grep -o '"type":"alerting"' <<<"$rules" || true; } | wc -l)
  unknown=$({ grep -o '"health":"unknown"' <<<"$rules" || true; } | wc -l)
  ((total > 0 && unknown == 0)) && break
  ((SECONDS < deadline)) || fail "alert rules not evaluated within ${WAIT_TIMEOUT_S}s"
  sleep 0.25 # polling interval
done
if grep -q '"health":"err"' <<<"$rules"; then
  fail "alert rules failed to evaluate: $(grep -o '"lastError":"[^"]*"' <<<"$rules" | sort -u)"
fi
log "alerts: $total rules evaluated against live data"
log "PASS"
