#!/bin/sh
# Fails when the restorer's section holds a relocation: code that reaches
# outside it (libc, a sanitizer, .rodata) would break once it is copied into
# the bootstrap zone.
set -eu
for obj in "$@"; do
  relocs=$(objdump -r -j rstblob "$obj" 2>/dev/null | grep -E '^[0-9a-f]{8,}' || true)
  if [ -n "$relocs" ]; then
    echo "restorer: $obj: section rstblob refers outside itself:" >&2
    echo "$relocs" >&2
    exit 1
  fi
  if ! objdump -h "$obj" | grep -q ' rstblob '; then
    echo "restorer: $obj has no section rstblob" >&2
    exit 1
  fi
done
