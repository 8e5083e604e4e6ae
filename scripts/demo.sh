#!/usr/bin/env bash
# Installs dependencies, builds, generates the demo image set and runs
# restore-orch on it. At this stage the main job is the validated restore
# plan (--dry-run); the restore itself follows in later issues.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh release >/dev/null

demo=build/demo-images
rm -rf "$demo"
mkdir -p "$demo"
for json in scripts/demo-images/*.json; do
  build/restore-orch image encode -i "$json" -o "$demo/$(basename "$json" .json).img"
done

echo "== restore-orch check"
build/restore-orch check
echo
echo "== restore-orch image show $demo"
build/restore-orch image show "$demo"
echo
echo "== restore-orch --images $demo --dry-run"
build/restore-orch --images "$demo" --dry-run
