#!/usr/bin/env bash
# Installs everything restore-orch needs to build and test, from Debian 12's
# packages only. Run as root. Does nothing when all are present.
set -euo pipefail

packages=(
  g++                  # the compiler (C++20)
  cmake                # the build
  ninja-build          # fast incremental builds
  pkg-config           # finds libseccomp and libmnl
  libprotobuf-dev      # image schemas: messages, JSON mapping, reflection
  protobuf-compiler    # protoc, generates C++ from images/proto/*.proto
  libboost-dev         # Boost.Interprocess (header-only): the shared restore arena
  libseccomp-dev       # seccomp filters of restored tasks, syscall fault injection
  libfmt-dev           # formatting of log lines and errors
  libcli11-dev         # command line with subcommands and truthful --help
  nlohmann-json3-dev   # the crit-shaped JSON around image entries, exact 64-bit numbers
  libmnl-dev           # netlink messages: a network namespace's links, addresses and routes (rtnetlink)
  libarchive-dev       # unpacks tmpfs contents (CRIU's tmpfs-dev-<dev>.tar.gz.img)
  libgtest-dev         # GoogleTest
  libgmock-dev         # GoogleMock (ships with GoogleTest's CMake config)
  libbenchmark-dev     # Google Benchmark, test/bench
  clang                # libFuzzer builds of the fuzz targets
  libclang-rt-14-dev   # clang's fuzzer and sanitizer runtimes
  criu                 # crit, CRIU's image tool, for the interop tests
  python3-protobuf     # crit's protobuf module (criu depends on it too)
  procps               # ps, to show a restored tree in the demo
  util-linux           # nsenter and unshare, used by the demo
  iproute2             # ip: the tests set up and check a restored network namespace from outside
  autofs               # Debian's automount, resumed in a restored tree by an end-to-end test
  groff-base           # renders the generated man pages in a test (cli_docs_test), catching roff errors
  dpkg-dev             # dpkg-shlibdeps: cpack finds the .deb's runtime dependencies with it (package test, scripts/package.sh)
  binutils             # readelf: the package test checks the packaged binary is stripped
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "setup.sh: missing packages (${missing[*]}); run as root to install them" >&2
  exit 1
fi
echo "setup.sh: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# No service may start on this machine because of an install (autofs would
# mount its maps in the host's namespace): deny starts while installing.
made_policy=""
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
  chmod 755 /usr/sbin/policy-rc.d
  made_policy=1
fi
status=0
apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null || status=$?
[ -n "$made_policy" ] && rm -f /usr/sbin/policy-rc.d
# automount is for the tests only: never started at boot either.
if [ $status -eq 0 ] && [ -e /etc/init.d/autofs ]; then
  update-rc.d autofs disable >/dev/null 2>&1 || true
  systemctl disable autofs.service >/dev/null 2>&1 || true
fi
exit $status
