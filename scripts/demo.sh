#!/usr/bin/env bash
# Installs dependencies, builds, generates the demo image sets and runs
# restore-orch on them:
#  - demo-tree: a process tree (sessions, groups, a dead session leader, a
#    zombie, two programs resumed by exec, a pipe with unread data between
#    two tasks, a seccomp filter) restored for real, shown from inside its
#    PID namespace, then killed;
#  - demo-images: a full image set (pipes, FIFOs, mounts with shared/slave
#    groups, AutoFS) validated and planned with --dry-run; restoring mount
#    trees is not built yet.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh release >/dev/null

encode() {  # encode JSON_DIR IMAGE_DIR
  rm -rf "$2"
  mkdir -p "$2"
  for json in "$1"/*.json; do
    build/restore-orch image encode -i "$json" -o "$2/$(basename "$json" .json).img"
  done
}
encode scripts/demo-tree build/demo-tree
encode scripts/demo-images build/demo-images

echo "== restore-orch check"
build/restore-orch check
echo
echo "== restore-orch image show build/demo-tree"
build/restore-orch image show build/demo-tree
echo
echo "== restore-orch --images build/demo-tree --detach --stats build/demo-tree-stats.json"
root=$(build/restore-orch --images build/demo-tree --detach --stats build/demo-tree-stats.json)
echo "restored; the root task is pid $root here and pid 1 in its namespace. Seen from inside:"
nsenter --target "$root" --pid -- unshare --mount --propagation private \
  sh -c 'mount -t proc proc /proc && ps -eo pid,ppid,pgid,sid,stat,comm &&
         for p in 1 2 3 4; do echo "fds of $p:"; ls -l /proc/$p/fd | tail -n +2 | sed "s/^.* \([0-9]* -> .*\)/  \1/"; done &&
         grep -H Seccomp: /proc/4/status'
kill -KILL "$root"
echo "per-stage times:"
cat build/demo-tree-stats.json
echo
echo "== restore-orch image show build/demo-images"
build/restore-orch image show build/demo-images
echo
echo "== restore-orch --images build/demo-images --dry-run"
build/restore-orch --images build/demo-images --dry-run
