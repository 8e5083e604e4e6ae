#!/usr/bin/env bash
# package_test.sh BUILD_DIR VERSION: builds the .deb from BUILD_DIR with
# cpack (staged in a temporary directory: the build tree's binary is not
# touched), checks its metadata and contents, installs it with dpkg -i,
# runs the installed restore-orch (--version, check, a man page, the
# completion), then purges it: the machine is left as it was found.
# Skips (77) when not root, without dpkg, or when restore-orch is already
# installed here (by a package or by hand): then it would not be ours to remove.
set -uo pipefail
build=$1
version=$2
skip() { echo "SKIP: $*"; exit 77; }
fail() { echo "FAIL: $*"; exit 1; }

[ "$(id -u)" -eq 0 ] || skip "dpkg -i needs root"
command -v dpkg >/dev/null && command -v cpack >/dev/null || skip "no dpkg or cpack"
[ -f "$build/CPackConfig.cmake" ] || fail "no $build/CPackConfig.cmake"

# One package test at a time on this machine (another checkout's too).
exec 9>/run/restore-orch-package-test.lock
flock -w 600 9 || fail "another package test holds the lock"

if dpkg-query -W -f='${Status}' restore-orch 2>/dev/null | grep -q "installed"; then
  skip "the restore-orch package is installed on this machine already"
fi
for f in /usr/bin/restore-orch /usr/share/man/man1/restore-orch.1.gz /usr/libexec/restore-orch; do
  [ -e "$f" ] && skip "$f exists already"
done

work=$(mktemp -d /tmp/restore-orch-package.XXXXXX)
installed=""
cleanup() {
  if [ -n "$installed" ]; then
    dpkg -P restore-orch >"$work/purge.log" 2>&1 || cat "$work/purge.log"
  fi
  rm -rf "$work"
}
trap cleanup EXIT

binary_before=$(sha256sum "$build/restore-orch" | cut -d' ' -f1)
start=$(date +%s)
(cd "$work" && cpack --config "$build/CPackConfig.cmake" -B "$work/out" >"$work/cpack.log" 2>&1) ||
  { cat "$work/cpack.log"; fail "cpack failed"; }
deb=$(ls "$work"/out/restore-orch_"$version"_*.deb 2>/dev/null | head -1)
[ -n "$deb" ] || { cat "$work/cpack.log"; fail "no restore-orch_${version}_*.deb"; }
echo "built $(basename "$deb") ($(stat -c %s "$deb") bytes) in $(( $(date +%s) - start )) s"
[ "$(sha256sum "$build/restore-orch" | cut -d' ' -f1)" = "$binary_before" ] || fail "cpack changed $build/restore-orch"

# Metadata: the runtime dependencies, linked and dlopen()ed.
depends=$(dpkg-deb -f "$deb" Depends)
echo "Depends: $depends"
for dep in libc6 libstdc++6 libprotobuf32 libfmt9 libseccomp2 libarchive13; do
  tr ',' '\n' <<<"$depends" | sed 's/^ *//; s/ .*//' | grep -qxF "$dep" || fail "Depends lacks $dep: $depends"
done
[ "$(dpkg-deb -f "$deb" Package)" = restore-orch ] || fail "package name"
[ "$(dpkg-deb -f "$deb" Version)" = "$version" ] || fail "package version"

# Contents: binary, action script, a man page per command, completion, docs, schemas.
dpkg-deb -c "$deb" | awk '{print $6}' | sed 's|^\./|/|' >"$work/contents"
for f in /usr/bin/restore-orch /usr/libexec/restore-orch/restart-autofs-masters.sh \
         /usr/share/man/man1/restore-orch.1.gz /usr/share/man/man1/restore-orch-restore.1.gz \
         /usr/share/man/man1/restore-orch-dump.1.gz /usr/share/man/man1/restore-orch-check.1.gz \
         /usr/share/man/man1/restore-orch-verify.1.gz /usr/share/man/man1/restore-orch-image.1.gz \
         /usr/share/bash-completion/completions/restore-orch /usr/share/doc/restore-orch/README.md \
         /usr/share/doc/restore-orch/image-format.md /usr/share/restore-orch/proto/resume.proto; do
  grep -qx "$f" "$work/contents" || fail "the package lacks $f"
done
mkdir "$work/x" && dpkg-deb -x "$deb" "$work/x"
readelf -S "$work/x/usr/bin/restore-orch" | grep -q '\.debug_info' && fail "the packaged binary is not stripped"
[ -x "$work/x/usr/libexec/restore-orch/restart-autofs-masters.sh" ] || fail "the action script is not executable"
echo "binary: $(stat -c %s "$work/x/usr/bin/restore-orch") bytes stripped ($(stat -c %s "$build/restore-orch") in the build tree)"

# Installed with dpkg -i and run from /usr/bin.
dpkg -i "$deb" >"$work/install.log" 2>&1 || { cat "$work/install.log"; installed=1; fail "dpkg -i failed"; }
installed=1
dpkg-query -W -f='${Status}\n' restore-orch | grep -q "install ok installed" || fail "not installed"
out=$(/usr/bin/restore-orch --version) || fail "restore-orch --version failed"
[ "$out" = "restore-orch $version" ] || fail "--version printed '$out'"
if grep -qw autofs /proc/filesystems; then
  /usr/bin/restore-orch check >"$work/check.log" 2>&1 || { cat "$work/check.log"; fail "restore-orch check failed"; }
else
  # A kernel without AutoFS: check must fail and name it.
  /usr/bin/restore-orch check >"$work/check.log" 2>&1 && fail "restore-orch check passed on a kernel without AutoFS"
  grep -q '^dev-autofs  *FAIL' "$work/check.log" || { cat "$work/check.log"; fail "restore-orch check does not name dev-autofs"; }
fi
zcat /usr/share/man/man1/restore-orch-dump.1.gz | grep -qF 'leave\-running' || fail "the dump man page lacks --leave-running"
if command -v man >/dev/null; then
  MANPAGER=cat MANWIDTH=100 man restore-orch-dump 2>/dev/null | grep -q "EXIT STATUS" || fail "man restore-orch-dump does not show"
fi
bash -c 'source /usr/share/bash-completion/completions/restore-orch && COMP_WORDS=(restore-orch du) COMP_CWORD=1 &&
         _restore_orch && [ "${COMPREPLY[*]}" = dump ]' || fail "the installed completion does not complete 'du'"

# Removed (purged): nothing of it is left.
dpkg -P restore-orch >"$work/purge.log" 2>&1 || { cat "$work/purge.log"; fail "dpkg -P failed"; }
installed=""
dpkg-query -W -f='${Status}' restore-orch 2>/dev/null | grep -q "installed" && fail "still installed after dpkg -P"
while read -r f; do
  [ -f "$f" ] && fail "$f is left after dpkg -P"
done <"$work/contents"
[ -e /usr/libexec/restore-orch ] && fail "/usr/libexec/restore-orch is left"
[ "$(sha256sum "$build/restore-orch" | cut -d' ' -f1)" = "$binary_before" ] || fail "the build tree's binary changed"
echo "installed, ran and purged restore-orch $version in $(( $(date +%s) - start )) s"
