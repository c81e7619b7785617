#!/usr/bin/env bash
# Builds masqd's kernel fast path program (Sources/CFastPath/bpf/masqd_fastpath.bpf.c) into
# masqd_fastpath.bpf.o next to the masqd binary, where `masqd run --fast-path` looks first.
# SwiftPM does not compile BPF objects: run this after `swift build` (any configuration).
#   Deploy/build-bpf.sh                 # into .build/debug and .build/release (those that exist)
#   Deploy/build-bpf.sh DIR             # into DIR
# clang: $CLANG, else the Swift toolchain's (it has the BPF target), else clang on PATH.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
source="$root/Sources/CFastPath/bpf/masqd_fastpath.bpf.c"
clang="${CLANG:-}"
if [ -z "$clang" ]; then
  swift_clang="$(dirname "$(readlink -f "$(command -v swift 2>/dev/null || echo /nonexistent)")")/clang"
  if [ -x "$swift_clang" ]; then clang="$swift_clang"; else clang="clang"; fi
fi
# The BPF target has no multiarch include path of its own: asm/types.h lives there.
multiarch="/usr/include/$(gcc -dumpmachine 2>/dev/null || echo x86_64-linux-gnu)"
if [ $# -gt 0 ]; then
  outputs=("$@")
else
  outputs=()
  for d in "$root/.build/debug" "$root/.build/release"; do [ -d "$d" ] && outputs+=("$d"); done
  [ ${#outputs[@]} -gt 0 ] || { echo "build-bpf: no .build/debug or .build/release: run swift build first, or name a directory" >&2; exit 1; }
fi
for dir in "${outputs[@]}"; do
  mkdir -p "$dir"
  "$clang" -target bpf -O2 -g -Wall -Werror -I"$multiarch" -c "$source" -o "$dir/masqd_fastpath.bpf.o.tmp"
  mv "$dir/masqd_fastpath.bpf.o.tmp" "$dir/masqd_fastpath.bpf.o"
  echo "build-bpf: $dir/masqd_fastpath.bpf.o"
done
