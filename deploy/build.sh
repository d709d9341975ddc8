#!/usr/bin/env bash
# Configures and builds turnout with CMake + Ninja (+ ccache when present).
#   deploy/build.sh release   -> build/turnout (optimised, no tests): the README, the Dockerfile
#   deploy/build.sh debug     -> build-debug/ (-O0, with tests)
#   deploy/build.sh asan      -> build-asan/ (-O0, AddressSanitizer + UBSan, with tests)
#   deploy/build.sh tsan      -> build-tsan/ (-O1, ThreadSanitizer, with tests)
#   deploy/build.sh fuzz      -> build-fuzz/ (clang-16 libFuzzer targets only; fuzz/run.sh runs them)
set -euo pipefail
cd "$(dirname "$0")/.."
mode="${1:-release}"
# ccache and precompiled headers: these sloppiness settings let ccache cache PCH users.
export CCACHE_SLOPPINESS="${CCACHE_SLOPPINESS:-pch_defines,time_macros,include_file_mtime,include_file_ctime}"
jobs="${TURNOUT_JOBS:-$(nproc)}"
case "$mode" in
  release) dir=build; flags=(-DCMAKE_BUILD_TYPE=Release -DTURNOUT_TESTS=OFF) ;;
  debug)   dir=build-debug; flags=(-DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS_DEBUG="-O0 -g1") ;;
  asan)    dir=build-asan; flags=(-DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS_DEBUG="-O0 -g1" -DTURNOUT_SANITIZE=ON) ;;
  # -O1: TSan at -O0 runs the integration tests several times slower.
  tsan)    dir=build-tsan; flags=(-DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS_DEBUG="-O1 -g1" -DTURNOUT_TSAN=ON) ;;
  fuzz)    dir=build-fuzz; flags=(-DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS_DEBUG="-O1 -g1" -DTURNOUT_FUZZ=ON
                                  -DTURNOUT_TESTS=OFF -DCMAKE_CXX_COMPILER=clang++-16) ;;
  *) echo "usage: $0 release|debug|asan|tsan|fuzz" >&2; exit 2 ;;
esac
cmake -S . -B "$dir" -G Ninja "${flags[@]}" >/dev/null
cmake --build "$dir" -j "$jobs"
