#!/usr/bin/env bash
# Action script for restore-orch (--action-script): restarts, after the
# restore, the AutoFS masters that remember the old device number of their
# mounts. A restored AutoFS superblock has a new device number and root
# inode; systemd (its .automount units) and automount's direct mounts
# compare them and then ignore the kernel's requests. Restarting the master
# inside the restored namespaces makes it pick the mounts up anew.
#
# It acts at post-resume only, inside the tree's PID and mount namespaces
# (nsenter into the root task), on what the caller names:
#   RESTORE_ORCH_RESTART_UNITS     systemd units to restart, space-separated
#                                  (e.g. proc-sys-fs-binfmt_misc.automount);
#                                  only when the tree's pid 1 is systemd
#   RESTORE_ORCH_RESTART_COMMANDS  shell commands to run, one per line
#                                  (e.g. "pkill -HUP -x automount")
# A unit whose automount point has a filesystem mounted on top gets that
# filesystem bound aside during the restart and back afterwards, as the
# unit would otherwise refuse to stop.
set -euo pipefail

[ "${RESTORE_ORCH_ACTION:-${CRTOOLS_SCRIPT_ACTION:-}}" = post-resume ] || exit 0
root=${RESTORE_ORCH_ROOT_PID:-${CRTOOLS_INIT_PID:-}}
[ -n "$root" ] && [ "$root" != 0 ] || { echo "restart-autofs-masters: no root task pid" >&2; exit 1; }

inside() { nsenter --target "$root" --pid --mount -- "$@"; }

if [ -n "${RESTORE_ORCH_RESTART_UNITS:-}" ]; then
  if [ "$(inside cat /proc/1/comm)" != systemd ]; then
    echo "restart-autofs-masters: pid 1 of the tree is not systemd; units left alone" >&2
  else
    for unit in $RESTORE_ORCH_RESTART_UNITS; do
      where=$(inside systemctl show -P Where "$unit")
      aside=""
      # Something mounted on the automount point: keep it aside meanwhile.
      if [ -n "$where" ] && inside findmnt -n -o FSTYPE --mountpoint "$where" | grep -qv '^autofs$'; then
        aside=$(inside mktemp -d /tmp/restart-autofs.XXXXXX)
        inside mount --bind "$where" "$aside"
        inside umount -l "$where"
      fi
      inside systemctl restart "$unit"
      if [ -n "$aside" ]; then
        inside mount --bind "$aside" "$where"
        inside umount -l "$aside"
        inside rmdir "$aside"
      fi
    done
  fi
fi

if [ -n "${RESTORE_ORCH_RESTART_COMMANDS:-}" ]; then
  while IFS= read -r command; do
    [ -n "$command" ] || continue
    inside sh -c "$command"
  done <<< "$RESTORE_ORCH_RESTART_COMMANDS"
fi
