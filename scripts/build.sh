#!/usr/bin/env bash
# Configures and builds one configuration: scripts/build.sh [release|asan|fuzz]
#   release  build/         RelWithDebInfo, -Werror
#   asan     build-asan/    Debug with AddressSanitizer + UBSan, -Werror
#   fuzz     build-fuzz/    clang with libFuzzer targets
set -euo pipefail
cd "$(dirname "$0")/.."
kind=${1:-release}
jobs=$(nproc)
case "$kind" in
  release) dir=build; args=(-DCMAKE_BUILD_TYPE=RelWithDebInfo -DRO_WERROR=ON) ;;
  asan) dir=build-asan; args=(-DCMAKE_BUILD_TYPE=Debug -DRO_SANITIZE=ON -DRO_WERROR=ON) ;;
  fuzz) dir=build-fuzz; args=(-DCMAKE_BUILD_TYPE=RelWithDebInfo -DRO_FUZZ=ON -DCMAKE_CXX_COMPILER=clang++) ;;
  *) echo "build.sh: unknown configuration '$kind' (release, asan, fuzz)" >&2; exit 64 ;;
esac
cmake -S . -B "$dir" -G Ninja "${args[@]}" >/dev/null
cmake --build "$dir" -j "$jobs"
