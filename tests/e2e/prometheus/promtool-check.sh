#!/usr/bin/env bash
# promtool checks that need no running gateway (Debian's `prometheus` package, installed by
# deploy/install-deps.sh):
#
#   promtool-check.sh rules        promtool check rules deploy/prometheus/alerts.yml
#   promtool-check.sh rules-test   promtool test rules tests/e2e/prometheus/alerts_test.yml
#   promtool-check.sh config       promtool check config deploy/prometheus/prometheus.yml
#   promtool-check.sh metrics METRICS_TOOL     promtool check metrics on `metrics_tool sample`
#   promtool-check.sh dashboard METRICS_TOOL   every dashboard query parses as PromQL
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../../.." && pwd)

if ! command -v promtool >/dev/null 2>&1; then
  echo "promtool not found: install Debian's 'prometheus' package (deploy/install-deps.sh)" >&2
  exit 1
fi

mode=${1:-}
case "$mode" in
  rules) exec promtool check rules "$ROOT/deploy/prometheus/alerts.yml" ;;
  rules-test) exec promtool test rules "$HERE/alerts_test.yml" ;;
  config) exec promtool check config "$ROOT/deploy/prometheus/prometheus.yml" ;;
  metrics)
    # promtool reads the exposition on stdin; lint problems also make it exit non-zero.
    "$2" sample | promtool check metrics
    ;;
  dashboard)
    tmp=$(mktemp "${TMPDIR:-/tmp}/turnout-dashboard-rules.XXXXXX.yml")
    trap 'rm -f "$tmp"' EXIT
    "$2" dashboard-rules "$ROOT/deploy/grafana/dashboard.json" >"$tmp"
    promtool check rules "$tmp"
    ;;
  *)
    echo "usage: $0 rules|rules-test|config|metrics TOOL|dashboard TOOL" >&2
    exit 2
    ;;
esac
