#!/usr/bin/env bash
# Configures and builds one configuration: scripts/build.sh [release|asan|fuzz] [TARGET...]
# (every target, or only those named)
#   release  build/         RelWithDebInfo, -Werror
#   asan     build-asan/    Debug (-Og) with AddressSanitizer + UBSan, -Werror
#   fuzz     build-fuzz/    clang with libFuzzer targets
# Each carries line tables only (-g1): backtraces and sanitizer reports keep
# functions, files and lines, and the build takes about a third less time
# than with full debug info (configure by hand for that).
set -euo pipefail
cd "$(dirname "$0")/.."
kind=${1:-release}
shift || true
jobs=$(nproc)
case "$kind" in
  release) dir=build; args=(-DCMAKE_BUILD_TYPE=RelWithDebInfo "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O2 -g1 -DNDEBUG" -DRO_WERROR=ON) ;;
  asan) dir=build-asan; args=(-DCMAKE_BUILD_TYPE=Debug "-DCMAKE_CXX_FLAGS_DEBUG=-Og -g1" -DRO_SANITIZE=ON -DRO_WERROR=ON) ;;
  fuzz) dir=build-fuzz; args=(-DCMAKE_BUILD_TYPE=RelWithDebInfo "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O2 -g1 -DNDEBUG" -DRO_FUZZ=ON -DCMAKE_CXX_COMPILER=clang++) ;;
  *) echo "build.sh: unknown configuration '$kind' (release, asan, fuzz)" >&2; exit 64 ;;
esac
cmake -S . -B "$dir" -G Ninja "${args[@]}" >/dev/null
targets=()
for t in "$@"; do targets+=(--target "$t"); done
cmake --build "$dir" -j "$jobs" "${targets[@]}"
