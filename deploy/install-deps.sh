#!/usr/bin/env bash
# Installs everything turnout needs to build, test and benchmark on Debian 12 (clang-16 and
# libFuzzer only for fuzz/).
# The README, .ci/run and the Dockerfile all call this one script.
#   deploy/install-deps.sh            build + test dependencies
#   deploy/install-deps.sh --runtime  only the shared libraries the binary needs
set -euo pipefail

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

runtime_pkgs=(
  ca-certificates libssl3 libyaml-cpp0.7 libspdlog1.10 libfmt9
  libprometheus-cpp-core1.0
)
build_pkgs=(
  build-essential cmake ninja-build ccache pkg-config git curl ca-certificates
  libboost1.81-dev libboost-url1.81-dev libssl-dev prometheus-cpp-dev
  libspdlog-dev libfmt-dev rapidjson-dev libyaml-cpp-dev libgtest-dev libgmock-dev
  openssl wrk nginx-light procps prometheus
  clang-16 libfuzzer-16-dev libclang-rt-16-dev clang-format
)
# Node 20 ships on the CI machines (nodesource); Debian's nodejs/npm conflict with it.
if ! command -v node >/dev/null 2>&1; then build_pkgs+=(nodejs npm); fi

pkgs=("${build_pkgs[@]}")
if [ "${1:-}" = "--runtime" ]; then pkgs=("${runtime_pkgs[@]}"); fi

export DEBIAN_FRONTEND=noninteractive
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# Debian's prometheus package (promtool and a server for the tests) starts its own server on
# :9090 where systemd runs: that is turnout's admin port. The tests start their own server.
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet prometheus 2>/dev/null; then
  $SUDO systemctl disable --now prometheus >/dev/null 2>&1 || true
fi
