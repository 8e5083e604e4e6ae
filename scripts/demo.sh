#!/usr/bin/env bash
# Installs dependencies, builds, generates the demo image sets and runs
# restore-orch on them:
#  - demo-tree: a process tree (sessions, groups, a dead session leader, a
#    zombie, two programs resumed by exec, a pipe with unread data between
#    two tasks, a seccomp filter) restored for real, shown from inside its
#    PID namespace, then killed;
#  - demo-images: a full image set (a mount namespace with shared, slave and
#    external mounts, AutoFS mounts with a master and a catatonic one, pipes,
#    a FIFO with data) planned with --dry-run, then restored for real and
#    shown from inside its namespaces.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh release >/dev/null

encode() {  # encode JSON_DIR IMAGE_DIR
  rm -rf "$2"
  mkdir -p "$2"
  for json in "$1"/*.json; do
    name=$(basename "$json" .json)
    case "$name" in tmpfs-dev-*) out="$name.tar.gz.img" ;; *) out="$name.img" ;; esac
    build/restore-orch image encode -i "$json" -o "$2/$out"
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
# The external mounts of demo-images: the caller's /dev and /usr (with
# /lib and /lib64 from it, for programs to run), and a directory holding
# the FIFO. Nothing of the caller's is bound unless named.
srv=$PWD/build/demo-srv
mkdir -p "$srv"
rm -f "$srv/demo.fifo"
mkfifo "$srv/demo.fifo"
externals=(--external dev=/dev --external usr=/usr --external lib=/usr/lib --external lib64=/usr/lib64 --external "srv=$srv")
echo "== restore-orch --images build/demo-images --dry-run ${externals[*]}"
build/restore-orch --images build/demo-images --dry-run "${externals[@]}"
echo
echo "== restore-orch --images build/demo-images --detach ${externals[*]}"
root=$(build/restore-orch --images build/demo-images --detach "${externals[@]}")
echo "restored; seen from inside its PID and mount namespaces:"
nsenter --target "$root" --pid --mount -- /usr/bin/sh -c '
  findmnt -o TARGET,FSTYPE,PROPAGATION,OPTIONS
  ps -eo pid,ppid,pgid,sid,stat,comm
  for p in 1 2 3 4; do echo "fds of $p:"; ls -l /proc/$p/fd | tail -n +2 | sed "s/^.* \([0-9]* -> .*\)/  \1/"; done
  echo "/peer (a bind of /shared/sub, from the tmpfs image): $(cat /peer/hello.txt)"'
echo "== restore-orch verify --images build/demo-images --pid $root"
build/restore-orch verify --images build/demo-images --pid "$root"
kill -KILL "$root"
echo
echo "== the whole cycle: a live tree, restore-orch dump, restore-orch --images, verify"
# A tree in its own PID and mount namespaces: pid 1 (sleep) with a tmpfs at
# /mnt holding a file, a zombie (the finished echo of the pipeline) and a
# child sleep whose stdin is a pipe with "unread" still in it.
cycle=$PWD/build/demo-cycle
rm -rf "$cycle"
unshare --pid --mount --fork --propagation private sh -c '
  mount -t tmpfs -o size=1m demo /mnt && echo "kept across the cycle" > /mnt/note
  exec setsid sh -c "echo unread | sleep 1000 & exec sleep 1000"' </dev/null >/dev/null 2>&1 &
outer=$!
for _ in $(seq 100); do
  tree=$(cat /proc/$outer/task/$outer/children 2>/dev/null | tr -d " " || true)
  [ -n "$tree" ] && [ "$(readlink /proc/$tree/exe)" = "$(readlink -f /bin/sleep)" ] && break
  sleep 0.05
done
sleep 0.2
echo "== restore-orch dump --tree $tree --images $cycle --stats $cycle-dump.json"
build/restore-orch dump --tree "$tree" --images "$cycle" --stats "$cycle-dump.json"
wait "$outer" || true
echo "dumped and killed; dump times (the tree was stopped for downtime_ms):"
cat "$cycle-dump.json"
build/restore-orch image show "$cycle"
# The dump holds each task's memory and registers: the tasks continue.
root=$(build/restore-orch --images "$cycle" --detach --ext-mount-map auto)
echo "== restored as pid $root; restore-orch verify --images $cycle --pid $root"
build/restore-orch verify --images "$cycle" --pid "$root"
nsenter --target "$root" --pid --mount -- sh -c '
  ps -eo pid,ppid,pgid,sid,stat,comm 2>/dev/null || true
  echo "/mnt/note: $(cat /mnt/note)"
  for fd0 in /proc/[0-9]*/fd/0; do
    case "$(readlink "$fd0")" in pipe:*) echo "still in the pipe at $fd0: $(timeout 2 cat "$fd0")" ;; esac
  done'
kill -KILL "$root"
