-- wrk script for bench/run.sh: non-streaming POST /v1/chat/completions with a
-- small JSON body. The model name comes from BENCH_MODEL (default "smart").
--
--   BENCH_MODEL=smart wrk -t1 -c1 -d10s -s bench/chat.lua http://127.0.0.1:8080
--
-- done() prints one machine-readable line (latencies in microseconds):
--   BENCH requests=N duration_s=F rps=F p50_us=N p90_us=N p99_us=N p999_us=N max_us=N mean_us=F errors=N non2xx=N

local model = os.getenv("BENCH_MODEL") or "smart"

wrk.method = "POST"
wrk.path = "/v1/chat/completions"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Accept"] = "application/json"
wrk.body = '{"model":"' .. model .. '","messages":[' ..
  '{"role":"system","content":"You are a terse assistant."},' ..
  '{"role":"user","content":"Say hello in five words."}],' ..
  '"max_tokens":16,"temperature":0}'

function done(summary, latency, requests)
  local e = summary.errors
  local socket_errors = e.connect + e.read + e.write + e.timeout
  local secs = summary.duration / 1e6
  io.write(string.format(
    "BENCH requests=%d duration_s=%.3f rps=%.1f p50_us=%d p90_us=%d p99_us=%d p999_us=%d max_us=%d mean_us=%.1f errors=%d non2xx=%d\n",
    summary.requests, secs, summary.requests / secs,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency:percentile(99.9), latency.max, latency.mean,
    socket_errors, e.status))
end
