#!/usr/bin/env bash
# turnout benchmark: the simulator directly vs nginx vs turnout in front of it.
#
#   bench/run.sh [--duration 10s] [--bin build/turnout] [--frames 300] [--rounds 5] [--only direct,nginx,turnout,shadow]
#
# See bench/README.md for what it measures and how to read the table.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)

DURATION=10s
BIN=""
FRAMES=300
ROUNDS=5
ONLY="direct,nginx,turnout,shadow"
WARMUP=2s
NGINX=${NGINX:-/usr/sbin/nginx}

usage() {
  sed -n '2,6p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
  cat <<EOF
Options:
  --duration D   measuring time per target and concurrency, e.g. 10s, 30s, 1m (default $DURATION)
  --bin PATH     the turnout binary (default: the newest build*/turnout)
  --frames N     streamed requests per target for the first-frame test (default $FRAMES)
  --rounds N     slices each wrk phase is cut into, rotating over the targets (default $ROUNDS)
  --only LIST    comma-separated subset of direct,nginx,turnout,shadow (default: all)
EOF
}

while [[ $# -gt 0 ]]; do
  case $1 in
  --duration) DURATION=$2; shift 2 ;;
  --duration=*) DURATION=${1#*=}; shift ;;
  --bin) BIN=$2; shift 2 ;;
  --bin=*) BIN=${1#*=}; shift ;;
  --frames) FRAMES=$2; shift 2 ;;
  --frames=*) FRAMES=${1#*=}; shift ;;
  --rounds) ROUNDS=$2; shift 2 ;;
  --rounds=*) ROUNDS=${1#*=}; shift ;;
  --only) ONLY=$2; shift 2 ;;
  --only=*) ONLY=${1#*=}; shift ;;
  -h | --help) usage; exit 0 ;;
  *) echo "bench: unknown argument: $1" >&2; usage >&2; exit 2 ;;
  esac
done

case $DURATION in
*h) DURATION_S=$((${DURATION%h} * 3600)) ;;
*m) DURATION_S=$((${DURATION%m} * 60)) ;;
*s) DURATION_S=${DURATION%s} ;;
*) DURATION_S=$DURATION ;;
esac
if [[ ! "$DURATION_S" =~ ^[0-9]+$ || ! "$ROUNDS" =~ ^[1-9][0-9]*$ || ! "$FRAMES" =~ ^[1-9][0-9]*$ ]]; then
  echo "bench: --duration wants e.g. 10s or 1m, --rounds and --frames positive integers" >&2
  exit 2
fi
SLICE_S=$((DURATION_S / ROUNDS))
if ((SLICE_S < 1)); then
  echo "bench: --duration $DURATION is shorter than --rounds $ROUNDS seconds" >&2
  exit 2
fi
if [[ -z "$BIN" ]]; then
  # shellcheck disable=SC2012 # names are our own build dirs
  BIN=$(ls -t "$ROOT"/build*/turnout 2>/dev/null | head -n 1 || true)
fi
if [[ -z "$BIN" || ! -x "$BIN" ]]; then
  echo "bench: no turnout binary (build it, or pass --bin PATH)" >&2
  exit 2
fi
BIN=$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")
want() { [[ ",$ONLY," == *",$1,"* ]]; }
for tool in wrk python3 curl; do
  command -v "$tool" >/dev/null || { echo "bench: $tool is not installed" >&2; exit 2; }
done
if want nginx && [[ ! -x "$NGINX" ]]; then
  echo "bench: nginx not found at $NGINX (apt-get install nginx-light, or NGINX=PATH)" >&2
  exit 2
fi

# CPU busy (in cores) over one second before starting: others' work adds noise.
BUSY_BEFORE=$(python3 -c '
import os, time
def busy():
    return sum(int(x) for x in open("/proc/stat").readline().split()[1:4])
hz = os.sysconf("SC_CLK_TCK")
a = busy(); time.sleep(1); b = busy()
print(f"{(b - a) / hz:.2f}")' 2>/dev/null || echo "?")
if awk -v b="$BUSY_BEFORE" 'BEGIN { exit !(b + 0 > 0.2) }'; then
  echo "bench: warning: the machine is already busy ($BUSY_BEFORE cores in use): the numbers will be noisy" >&2
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/turnout-bench.XXXXXX")
head -n 1 /proc/stat >"$WORK/stat-start" 2>/dev/null || true
date +%s.%N >"$WORK/time-start"
PIDS=()
cleanup() {
  local status=$? pid
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do
    for _ in $(seq 1 50); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  if [[ "${BENCH_KEEP:-0}" == 1 ]]; then
    echo "bench: files kept in $WORK" >&2
  else
    rm -rf "$WORK"
  fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

say() { echo "bench: $*" >&2; }
die() {
  say "$*"
  local f
  for f in "$WORK"/*.err "$WORK"/nginx/error.log; do
    [[ -s "$f" ]] && { echo "----- $f" >&2; tail -n 20 "$f" >&2; }
  done
  exit 1
}

start() { # start NAME CMD...: background, output to $WORK/NAME.{out,err}; sets LAST_PID
  local name=$1
  shift
  "$@" >"$WORK/$name.out" 2>"$WORK/$name.err" &
  LAST_PID=$!
  PIDS+=("$LAST_PID")
}

wait_listening() { # NAME PID KIND -> prints HOST:PORT from the JSON "listening" line
  local name=$1 pid=$2 kind=$3 deadline line
  deadline=$((SECONDS + 30))
  while ((SECONDS < deadline)); do
    line=$(grep -E '"msg" *: *"listening"' "$WORK/$name.out" 2>/dev/null |
      grep -E "\"kind\" *: *\"$kind\"" | head -n 1 || true)
    if [[ -n "$line" ]]; then
      sed -E 's/.*"listen" *: *"([^"]+)".*/\1/' <<<"$line"
      return 0
    fi
    kill -0 "$pid" 2>/dev/null || return 1
    sleep 0.05 # polling interval
  done
  return 1
}

wait_port() { # PORT PID: poll until something accepts on 127.0.0.1:PORT
  local port=$1 pid=$2 deadline
  deadline=$((SECONDS + 30))
  while ((SECONDS < deadline)); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
    kill -0 "$pid" 2>/dev/null || return 1
    sleep 0.05
  done
  return 1
}

free_ports() { # N -> N free TCP ports on 127.0.0.1 (nginx cannot report an ephemeral port)
  python3 - "$1" <<'EOF'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
EOF
}

# Sanity check before measuring: a non-streamed and a streamed answer.
check_target() { # NAME BASE_URL
  local name=$1 url=$2 code
  code=$(curl -sS -o "$WORK/check-$name.json" -w '%{http_code}' -H 'Content-Type: application/json' \
    -d '{"model":"smart","messages":[{"role":"user","content":"hi"}],"max_tokens":16}' \
    "$url/v1/chat/completions") || die "$name: request failed"
  [[ "$code" == 200 ]] || die "$name: HTTP $code: $(head -c 300 "$WORK/check-$name.json")"
  curl -sS -N -H 'Content-Type: application/json' \
    -d '{"model":"smart","stream":true,"messages":[{"role":"user","content":"hi"}],"max_tokens":16}' \
    "$url/v1/chat/completions" >"$WORK/check-$name.sse" || die "$name: streaming request failed"
  grep -q '^data: ' "$WORK/check-$name.sse" || die "$name: no SSE data frames: $(head -c 300 "$WORK/check-$name.sse")"
}

export BENCH_MODEL=smart
RESULTS="$WORK/results.txt"
: >"$RESULTS"

wrk_warmup() { # NAME BASE_URL
  local name=$1 url=$2
  say "$name: warm-up $WARMUP"
  wrk -t2 -c64 -d"$WARMUP" --timeout 5s -s "$HERE/chat.lua" "$url" >"$WORK/wrk-$name-warmup.txt" 2>&1 ||
    die "$name: wrk warm-up failed: $(cat "$WORK/wrk-$name-warmup.txt")"
}

settle() { # wait (at most 15 s) until the servers started here are idle: no backlog
  # (a shadow queue draining, say) spills into the next target's slice.
  python3 - "${PIDS[@]}" <<'EOF' || true
import os, sys, time
roots = {int(p) for p in sys.argv[1:]}
def cpu():
    procs = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                rest = open(f"/proc/{d}/stat").read().rsplit(")", 1)[1].split()
                procs[int(d)] = (int(rest[1]), int(rest[11]) + int(rest[12]))
            except (OSError, IndexError, ValueError):
                pass
    total, todo, seen = 0, list(roots), set()
    while todo:
        pid = todo.pop()
        if pid in seen or pid not in procs:
            continue
        seen.add(pid)
        total += procs[pid][1]
        todo.extend(p for p, (ppid, _) in procs.items() if ppid == pid)
    return total
deadline, quiet, last = time.time() + 15, 0, cpu()
while time.time() < deadline and quiet < 2:
    time.sleep(0.1)
    now = cpu()
    quiet = quiet + 1 if now - last <= 1 else 0
    last = now
EOF
}

wrk_slice() { # NAME BASE_URL CONC ROUND: one measured slice; appends "NAME cCONC ROUND BENCH ..." to RESULTS
  local name=$1 url=$2 conc=$3 round=$4 out threads=2
  ((conc == 1)) && threads=1
  settle
  out="$WORK/wrk-$name-c$conc-r$round.txt"
  wrk -t"$threads" -c"$conc" -d"${SLICE_S}s" --timeout 5s --latency -s "$HERE/chat.lua" "$url" >"$out" 2>&1 ||
    die "$name: wrk failed: $(cat "$out")"
  grep -q '^BENCH ' "$out" || die "$name: no BENCH line from wrk: $(cat "$out")"
  echo "$name c$conc $round $(grep '^BENCH ' "$out")" >>"$RESULTS"
}

# --- the simulator: one thread, instant answers ------------------------------
start sim "$BIN" simulate --listen 127.0.0.1:0 --threads 1 --ttft 0ms --tps 0 --tokens 16
SIM_ADDR=$(wait_listening sim "$LAST_PID" simulator) || die "the simulator did not start"
SIM_URL="http://$SIM_ADDR"
say "simulator at $SIM_URL"

FF_TARGETS=()

# --- nginx: plain reverse proxy, one worker ---------------------------------
if want nginx; then
  read -r NGINX_PORT NGINX_STREAM_PORT <<<"$(free_ports 2)"
  mkdir -p "$WORK/nginx"
  NGINX_USER=""
  # As root, nginx would run its worker as "nobody", which cannot enter the temp dir.
  if [[ $(id -u) == 0 ]]; then NGINX_USER="user root root;"; fi
  cat >"$WORK/nginx/nginx.conf" <<EOF
$NGINX_USER
daemon off;
master_process on;
worker_processes 1;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $WORK/nginx/client_body;
  proxy_temp_path $WORK/nginx/proxy;
  fastcgi_temp_path $WORK/nginx/fastcgi;
  uwsgi_temp_path $WORK/nginx/uwsgi;
  scgi_temp_path $WORK/nginx/scgi;
  keepalive_requests 1000000;
  upstream sim {
    server $SIM_ADDR;
    keepalive 64;
    keepalive_requests 1000000;
  }
  # Plain reverse proxy (default buffering): the wrk runs.
  server {
    listen 127.0.0.1:$NGINX_PORT;
    location / {
      proxy_pass http://sim;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
  # The same with proxy_buffering off: the streamed first-frame run.
  server {
    listen 127.0.0.1:$NGINX_STREAM_PORT;
    location / {
      proxy_pass http://sim;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering off;
    }
  }
}
EOF
  start nginx "$NGINX" -p "$WORK/nginx" -e "$WORK/nginx/error.log" -c "$WORK/nginx/nginx.conf"
  wait_port "$NGINX_PORT" "$LAST_PID" || die "nginx did not start"
  wait_port "$NGINX_STREAM_PORT" "$LAST_PID" || die "nginx did not start"
  say "nginx at http://127.0.0.1:$NGINX_PORT (unbuffered: $NGINX_STREAM_PORT)"
fi

# --- turnout: one thread, access log on (to a file) -------------------------
if want turnout; then
  cat >"$WORK/turnout.yaml" <<EOF
listen: 127.0.0.1:0
admin:
  listen: 127.0.0.1:0
state:
  path: $WORK/turnout-state
limits:
  max_connections: 10000
log: {level: info, format: json}
providers:
  sim:
    kind: openai
    base_url: $SIM_URL/v1
    timeout: 30s
    max_connections: 128
routes:
  - name: smart
    match:
      model: smart
    primary: {provider: sim, model: sim-large}
EOF
  # stdout (the access log) goes to a file, as a deployment would ship it.
  start turnout "$BIN" serve --config "$WORK/turnout.yaml" --threads 1
  TURNOUT_ADDR=$(wait_listening turnout "$LAST_PID" api) || die "turnout did not start"
  say "turnout at http://$TURNOUT_ADDR"
fi

# --- turnout with shadowing at sample_rate 1.0: every request mirrored and judged -----
if want shadow; then
  # The candidate and the judge stand for remote providers: in a deployment their work is not
  # on the gateway's cores. Here they share the machine, so they run at a lower priority
  # (nice 10) to take only the CPU the gateway and the primary leave.
  start judge nice -n 10 "$BIN" simulate --listen 127.0.0.1:0 --threads 1 --role judge
  JUDGE_ADDR=$(wait_listening judge "$LAST_PID" simulator) || die "the judge simulator did not start"
  # The candidate is another provider, as in a deployment: its own simulator, so the
  # mirrored requests do not queue on the primary's single-threaded simulator.
  start candidate nice -n 10 "$BIN" simulate --listen 127.0.0.1:0 --threads 1 --ttft 0ms --tps 0 --tokens 16
  CANDIDATE_ADDR=$(wait_listening candidate "$LAST_PID" simulator) || die "the candidate simulator did not start"
  cat >"$WORK/turnout-shadow.yaml" <<EOF
listen: 127.0.0.1:0
admin:
  listen: 127.0.0.1:0
state:
  path: $WORK/turnout-shadow-state
limits:
  max_connections: 10000
log: {level: info, format: json}
providers:
  sim:
    kind: openai
    base_url: $SIM_URL/v1
    timeout: 30s
    max_connections: 128
  cand:
    kind: openai
    base_url: http://$CANDIDATE_ADDR/v1
    timeout: 30s
    max_connections: 64
  judge:
    kind: openai
    base_url: http://$JUDGE_ADDR/v1
    timeout: 30s
    max_connections: 64
routes:
  - name: smart
    match:
      model: smart
    primary: {provider: sim, model: sim-large}
    candidate: {provider: cand, model: sim-small}
    shadow: {sample_rate: 1.0, max_inflight: 32, queue: 1024}
    judge: {provider: judge, model: judge}
    promotion: {mode: shadow}
EOF
  start turnout-shadow "$BIN" serve --config "$WORK/turnout-shadow.yaml" --threads 1
  SHADOW_ADDR=$(wait_listening turnout-shadow "$LAST_PID" api) || die "turnout (shadow) did not start"
  say "turnout with sample_rate 1.0 at http://$SHADOW_ADDR"
fi

# --- measure ------------------------------------------------------------------
# Each wrk phase is cut into ROUNDS slices that rotate over the targets, so a
# stall of the shared machine spoils one slice of one target, not a whole
# column; the report takes the median of the slices' percentiles.
NAMES=()
URLS=()
if want direct; then
  check_target direct "$SIM_URL"
  NAMES+=(direct); URLS+=("$SIM_URL")
  FF_TARGETS+=("direct=$SIM_URL")
fi
if want nginx; then
  check_target nginx "http://127.0.0.1:$NGINX_PORT"
  check_target nginx-unbuffered "http://127.0.0.1:$NGINX_STREAM_PORT"
  NAMES+=(nginx); URLS+=("http://127.0.0.1:$NGINX_PORT")
  FF_TARGETS+=("nginx=http://127.0.0.1:$NGINX_STREAM_PORT")
fi
if want turnout; then
  check_target turnout "http://$TURNOUT_ADDR"
  NAMES+=(turnout); URLS+=("http://$TURNOUT_ADDR")
  FF_TARGETS+=("turnout=http://$TURNOUT_ADDR")
fi

if want shadow; then
  check_target turnout-shadow "http://$SHADOW_ADDR"
  NAMES+=(turnout-shadow); URLS+=("http://$SHADOW_ADDR")
fi

for i in "${!NAMES[@]}"; do wrk_warmup "${NAMES[$i]}" "${URLS[$i]}"; done
for conc in 1 64; do
  say "concurrency $conc: $ROUNDS rounds of ${SLICE_S}s per target"
  for round in $(seq 1 "$ROUNDS"); do
    for i in "${!NAMES[@]}"; do wrk_slice "${NAMES[$i]}" "${URLS[$i]}" "$conc" "$round"; done
  done
done

settle
say "first streamed frame: $FRAMES requests per target, interleaved"
python3 "$HERE/first_frame.py" --n "$FRAMES" --warmup 30 --model smart "${FF_TARGETS[@]}" \
  >"$WORK/first-frame.jsonl" 2>"$WORK/first-frame.err" || die "first_frame.py failed: $(cat "$WORK/first-frame.err")"
while read -r line; do echo "ff $line" >>"$RESULTS"; done <"$WORK/first-frame.jsonl"

if want turnout; then
  echo "turnout-access-log-lines $(grep -c '"logger":"access"' "$WORK/turnout.out" || true)" >>"$RESULTS"
fi

# --- report -------------------------------------------------------------------
echo
VERSION=$(timeout 5 "$BIN" --version 2>/dev/null | head -n 1 || true)
echo "turnout bench: $(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) cores; per target: ${WARMUP} warm-up, then at c=1 and at c=64 $ROUNDS x ${SLICE_S}s wrk slices (rotating over the targets); $FRAMES streamed requests"
echo "binary: $BIN${VERSION:+ ($VERSION)}"
# How much CPU did processes other than ours use during the run? The machine's
# user+system time (/proc/stat) minus ours: this shell and its waited-for
# children (`times`: wrk, curl, python) plus the live servers and their workers.
head -n 1 /proc/stat >"$WORK/stat-end" 2>/dev/null || true
date +%s.%N >"$WORK/time-end"
times >"$WORK/times.txt"
OTHER_CPU=$(python3 - "$$" "$WORK" <<'EOF' || echo "? ?"
import os, re, sys
root, work = int(sys.argv[1]), sys.argv[2]
hz = os.sysconf("SC_CLK_TCK")
def busy(path):
    f = open(path).read().split()
    return sum(int(x) for x in f[1:4])  # user nice system
def stat(pid):
    rest = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return int(rest[1]), int(rest[11]) + int(rest[12])  # ppid, utime+stime
procs = {}
for d in os.listdir("/proc"):
    if d.isdigit() and int(d) != os.getpid():
        try:
            procs[int(d)] = stat(d)
        except (OSError, IndexError, ValueError):
            pass
ours, todo = 0, [root]
while todo:
    pid = todo.pop()
    todo.extend(p for p, (ppid, _) in procs.items() if ppid == pid)
    if pid != root and pid in procs:
        ours += procs[pid][1]
# `times`: the shell's own user/sys, then its waited-for children's.
for m in re.finditer(r"(\d+)m([\d.]+)s", open(f"{work}/times.txt").read()):
    ours += (int(m.group(1)) * 60 + float(m.group(2))) * hz
machine = busy(f"{work}/stat-end") - busy(f"{work}/stat-start")
secs = float(open(f"{work}/time-end").read()) - float(open(f"{work}/time-start").read())
print(f"{max(machine - ours, 0) / hz / secs:.2f} {ours / hz / secs:.2f}")
EOF
)
read -r OTHER_CORES OUR_CORES <<<"$OTHER_CPU"
echo "cpu: the benchmark's processes used ${OUR_CORES:-?} cores on average, other processes ${OTHER_CORES:-?} ($BUSY_BEFORE cores busy just before the start)"
python3 - "$RESULTS" "${OTHER_CORES:-?}" <<'EOF'
import json, sys

wrk, ff, extra, slices = {}, {}, {}, {}
for line in open(sys.argv[1]):
    parts = line.split()
    if not parts:
        continue
    if parts[0] == "ff":
        d = json.loads(line[3:])
        ff[d["name"]] = d
    elif parts[0].startswith("turnout-access-log-lines"):
        extra["access_lines"] = parts[1] if len(parts) > 1 else "?"
    else:
        # NAME cCONC ROUND BENCH key=value ...
        name, conc = parts[0], parts[1]
        kv = dict(p.split("=", 1) for p in parts[4:])
        slices.setdefault((name, conc), []).append({k: float(v) for k, v in kv.items()})

def median(values):
    v = sorted(values)
    n = len(v)
    return v[n // 2] if n % 2 else (v[n // 2 - 1] + v[n // 2]) / 2

# Per target and concurrency: RPS over all slices; latency percentiles as the
# median of the slices' percentiles (one disturbed slice does not move it).
for key, sl in slices.items():
    secs = sum(x["duration_s"] for x in sl)
    wrk[key] = {
        "rps": sum(x["requests"] for x in sl) / secs if secs else None,
        "p50_us": median([x["p50_us"] for x in sl]),
        "p99_us": median([x["p99_us"] for x in sl]),
        "p99_slices": [int(x["p99_us"]) for x in sl],
        "rps_slices": [int(x["rps"]) for x in sl],
        "errors": sum(x["errors"] for x in sl),
        "non2xx": sum(x["non2xx"] for x in sl),
    }

names = [n for n in ("direct", "nginx", "turnout", "turnout-shadow") if (n, "c1") in wrk or n in ff]

def g(name, conc, key):
    return wrk.get((name, conc), {}).get(key)

def fmt(v, digits=0):
    if v is None:
        return "-"
    return f"{v:,.{digits}f}"

hdr = ("target", "c1 RPS", "c1 p50 µs", "c1 p99 µs", "c64 RPS", "c64 p50 µs", "c64 p99 µs", "errors", "1st frame p50 µs", "1st frame p99 µs")
rows = []
for n in names:
    errors = sum((g(n, c, "errors") or 0) + (g(n, c, "non2xx") or 0) for c in ("c1", "c64"))
    rows.append((
        n,
        fmt(g(n, "c1", "rps")), fmt(g(n, "c1", "p50_us")), fmt(g(n, "c1", "p99_us")),
        fmt(g(n, "c64", "rps")), fmt(g(n, "c64", "p50_us")), fmt(g(n, "c64", "p99_us")),
        fmt(errors),
        fmt(ff.get(n, {}).get("p50_us")), fmt(ff.get(n, {}).get("p99_us")),
    ))
widths = [max(len(str(r[i])) for r in [hdr] + rows) for i in range(len(hdr))]
def line(r):
    return "  ".join(str(c).ljust(w) if i == 0 else str(c).rjust(w) for i, (c, w) in enumerate(zip(r, widths)))
print()
print(line(hdr))
print("  ".join("-" * w for w in widths))
for r in rows:
    print(line(r))
print()
print("(c1/c64 p50, p99: median over the slices; RPS: over all slices; errors: socket errors + non-2xx answers;")
print(" nginx's first frame is measured with proxy_buffering off)")
for n in names:
    parts = []
    for c in ("c1", "c64"):
        if (n, c) in wrk:
            parts.append(f"{c} p99 per slice: {' '.join(map(str, wrk[(n, c)]['p99_slices']))}")
    if (n, "c64") in wrk:
        parts.append(f"c64 RPS per slice: {' '.join(map(str, wrk[(n, 'c64')]['rps_slices']))}")
    if parts:
        print(f"  {n}: " + "; ".join(parts))
if "access_lines" in extra:
    print(f"(turnout wrote {extra['access_lines']} access-log lines)")

checks = []
def diff(a, b):
    return None if a is None or b is None else a - b
def ratio(a, b):
    return None if a is None or not b else a / b

if "turnout" in names and "direct" in names:
    checks.append(("added p99 at c=1, turnout - direct", diff(g("turnout", "c1", "p99_us"), g("direct", "c1", "p99_us")), "µs", "< 100 µs", lambda v: v < 100))
if "turnout" in names and "nginx" in names:
    checks.append(("RPS at c=64, turnout / nginx", ratio(g("turnout", "c64", "rps"), g("nginx", "c64", "rps")), "x", ">= 0.70x", lambda v: v >= 0.70))
if "turnout" in ff and "direct" in ff:
    checks.append(("first frame added p50, turnout - direct", diff(ff["turnout"]["p50_us"], ff["direct"]["p50_us"]), "µs", "<= 500 µs", lambda v: v <= 500))
    checks.append(("first frame added p99, turnout - direct", diff(ff["turnout"]["p99_us"], ff["direct"]["p99_us"]), "µs", "<= 500 µs", lambda v: v <= 500))
if "turnout" in names and "turnout-shadow" in names:
    for c in ("c1", "c64"):
        checks.append((f"live p99 at {c}, sample_rate 1.0 / 0", ratio(g("turnout-shadow", c, "p99_us"), g("turnout", c, "p99_us")), "x", "<= 1.05x", lambda v: v <= 1.05))
ref = []
if "nginx" in names and "direct" in names:
    ref.append(("added p99 at c=1, nginx - direct", diff(g("nginx", "c1", "p99_us"), g("direct", "c1", "p99_us")), "µs"))
    ref.append(("RPS at c=64, nginx / direct", ratio(g("nginx", "c64", "rps"), g("direct", "c64", "rps")), "x"))
if "nginx" in ff and "direct" in ff:
    ref.append(("first frame added p50, nginx - direct", diff(ff["nginx"]["p50_us"], ff["direct"]["p50_us"]), "µs"))
    ref.append(("first frame added p99, nginx - direct", diff(ff["nginx"]["p99_us"], ff["direct"]["p99_us"]), "µs"))

def val(v, unit):
    if v is None:
        return "-"
    return f"{v:.2f}x" if unit == "x" else f"{round(v):,} µs"

if checks:
    print()
    w = max(len(c[0]) for c in checks + [(r[0],) for r in ref])
    print(f"{'target check'.ljust(w)}  {'measured':>10}  {'target':>10}  result")
    for name, v, unit, target, ok in checks:
        res = "-" if v is None else ("PASS" if ok(v) else "MISS")
        print(f"{name.ljust(w)}  {val(v, unit):>10}  {target:>10}  {res}")
    for name, v, unit in ref:
        print(f"{name.ljust(w)}  {val(v, unit):>10}  {'(reference)':>10}")
elif ref:
    print()
    for name, v, unit in ref:
        print(f"{name}: {val(v, unit)}")

try:
    busy = float(sys.argv[2]) > 0.10
except ValueError:
    busy = False
if busy:
    print()
    print(f"warning: other processes used {sys.argv[2]} cores on average during the run: they shared the")
    print("         cores with the benchmark, so the p99s and RPS above are not trustworthy; re-run on a quiet machine.")
EOF
