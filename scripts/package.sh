#!/usr/bin/env bash
# Builds a Release restore-orch (build-pkg/, no tests) and packages it as a
# .deb with cpack: build-pkg/restore-orch_<version>_<arch>.deb, stripped,
# with its runtime dependencies declared. Install it with
#   dpkg -i build-pkg/restore-orch_*.deb     (remove: dpkg -r restore-orch)
# or, without a package, `cmake --install build-pkg --strip` (prefix /usr/local).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cmake -S . -B build-pkg -G Ninja -DCMAKE_BUILD_TYPE=Release -DRO_TESTS=OFF -DRO_WERROR=ON >/dev/null
cmake --build build-pkg -j "$(nproc)"
(cd build-pkg && cpack -G DEB >/dev/null)
ls build-pkg/restore-orch_*.deb
