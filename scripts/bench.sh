#!/usr/bin/env bash
# Builds the release configuration and runs the benchmarks (as root).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh release >/dev/null
build/restore_bench "$@"
build/threads_bench
