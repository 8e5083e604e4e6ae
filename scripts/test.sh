#!/usr/bin/env bash
# Installs dependencies, builds the release and the sanitizer configurations,
# runs every test of both through ctest, then fuzzes the image reader and
# plan builder for FUZZ_SECONDS (default 60).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh

status=0
for kind in release asan; do
  dir=build; [ "$kind" = asan ] && dir=build-asan
  echo "== build $kind"
  scripts/build.sh "$kind"
  echo "== ctest $kind"
  ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
    ctest --test-dir "$dir" -j "$(nproc)" --output-on-failure --timeout 600 || status=1
done

echo "== fuzz plan_fuzz for ${FUZZ_SECONDS:-60}s"
scripts/build.sh fuzz >/dev/null
run=build-fuzz/corpus-run
mkdir -p "$run"
cp -n test/fuzz/corpus/* "$run"/ 2>/dev/null || true
if ! build-fuzz/plan_fuzz -max_total_time="${FUZZ_SECONDS:-60}" -max_len=65536 -timeout=10 \
     -artifact_prefix=build-fuzz/ "$run" >build-fuzz/fuzz.log 2>&1; then
  tail -40 build-fuzz/fuzz.log
  echo "fuzz: plan_fuzz found a crash (input saved under build-fuzz/)"
  status=1
else
  grep -E "^Done [0-9]+ runs" build-fuzz/fuzz.log || true
fi
exit $status
