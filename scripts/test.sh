#!/usr/bin/env bash
# Installs dependencies, builds the release and the sanitizer configurations,
# runs every test of both through ctest, then runs each fuzz target (the
# image reader and plan builder, the dump's /proc parsers, the tmpfs
# archive unpacker) for FUZZ_SECONDS (default 60).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh

status=0
for kind in release asan; do
  dir=build; [ "$kind" = asan ] && dir=build-asan
  echo "== build $kind (at ${SECONDS}s)"
  scripts/build.sh "$kind"
  echo "== ctest $kind (at ${SECONDS}s)"
  # A first run has no timings of its own: ctest would start the longest
  # tests last. test/ctest-costs.txt (seconds, from a past run) makes it
  # start them first; later runs use what ctest measured.
  costs=$dir/Testing/Temporary/CTestCostData.txt
  [ -e "$costs" ] || { mkdir -p "$(dirname "$costs")"; cp test/ctest-costs.txt "$costs"; }
  ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
    ctest --test-dir "$dir" -j "$(nproc)" --output-on-failure --timeout 600 || status=1
done

# Each fuzz target runs FUZZ_SECONDS on a growing copy of its seed corpus
# test/fuzz/corpus-<target>/ (the copy under build-fuzz/, never in git).
# Inputs up to 1 MiB reach deep trees and long chains; ASan's quarantine is
# bounded so that memory stays flat over a long run.
fuzz_targets=(plan_fuzz proc_fuzz tmpfs_fuzz)
seconds=${FUZZ_SECONDS:-60}
echo "== fuzz: ${#fuzz_targets[@]} target(s) x ${seconds}s = $(( ${#fuzz_targets[@]} * seconds ))s (at ${SECONDS}s)"
scripts/build.sh fuzz "${fuzz_targets[@]}" >/dev/null  # only what the fuzzers link
for target in "${fuzz_targets[@]}"; do
  run=build-fuzz/corpus-$target
  mkdir -p "$run"
  cp -n test/fuzz/corpus-$target/* "$run"/ 2>/dev/null || true
  if ! ASAN_OPTIONS=quarantine_size_mb=64:malloc_context_size=10 \
       build-fuzz/$target -max_total_time="$seconds" -max_len=1048576 -timeout=10 -rss_limit_mb=2048 \
       -print_final_stats=1 -artifact_prefix=build-fuzz/$target- "$run" >build-fuzz/$target.log 2>&1; then
    tail -40 build-fuzz/$target.log
    echo "fuzz: $target found a crash (input saved under build-fuzz/$target-*)"
    status=1
  else
    echo "fuzz: $target: $(grep -E "^Done [0-9]+ runs" build-fuzz/$target.log || true)"
    grep -E "^stat::(number_of_executed_units|peak_rss_mb)|cov: [0-9]+" build-fuzz/$target.log | tail -3 || true
  fi
done
echo "== done in ${SECONDS}s"
exit $status
