#!/usr/bin/env bash
# Runs integration tests against a masqd built with a sanitizer: AddressSanitizer (heap and
# stack overflows, use after free, leaks at exit) and ThreadSanitizer (data races between the
# queue workers and the main loop).
#
#   Tests/run-sanitized.sh [address|thread|both] [FILTER]
#       default: both, FILTER "IntegrationTests.(MasqueradeTests|FragmentTests)"
#
# Each sanitizer's masqd is built into its own scratch path (.build-asan, .build-tsan); the
# test bundle itself is built once, without a sanitizer, in .build-sanitized-tests, and
# finds the sanitized binary through MASQD_EXECUTABLE (IntegrationSupport.swift). The
# sanitizer's reports go to files (ASAN_OPTIONS/TSAN_OPTIONS log_path) under
# .build-sanitized-tests/reports/KIND/, because the engine's own output is deleted with its
# test's namespaces; any report there fails the run, and is printed.
#
# Not part of Tests/run-all.sh or CI: two extra builds and the slower binaries take about
# ten minutes for the default subset on a 2-core machine. Run it before a release, after
# touching the engine's threads, the binding's buffers or the translator's tables.
# Needs root, like every integration test. Environment: SANITIZED_SCRATCH_PREFIX (default
# .build-) to place the three scratch directories elsewhere.
set -euo pipefail
cd "$(dirname "$0")/.."

KINDS=${1:-both}
FILTER=${2:-"IntegrationTests.(MasqueradeTests|FragmentTests)"}
PREFIX=${SANITIZED_SCRATCH_PREFIX:-.build-}
TESTS_SCRATCH=${PREFIX}sanitized-tests

case $KINDS in
  address|thread) ;;
  both) KINDS="address thread" ;;
  *) echo "usage: $0 [address|thread|both] [FILTER]" >&2; exit 2 ;;
esac
if [ "$(id -u)" -ne 0 ]; then
  echo "run-sanitized: the integration tests need root (network namespaces, iptables); re-run with sudo" >&2
  exit 1
fi

echo "== building the test bundle (no sanitizer) in $TESTS_SCRATCH"
swift build --build-tests --scratch-path "$TESTS_SCRATCH"

failed=0
for kind in $KINDS; do
  case $kind in address) scratch=${PREFIX}asan ;; thread) scratch=${PREFIX}tsan ;; esac
  echo "== building masqd with --sanitize=$kind in $scratch"
  swift build --product masqd --sanitize="$kind" --scratch-path "$scratch"
  binary=$(swift build --product masqd --sanitize="$kind" --scratch-path "$scratch" --show-bin-path)/masqd
  reports=$PWD/$TESTS_SCRATCH/reports/$kind
  rm -rf "$reports"
  mkdir -p "$reports"
  # ASan: keep running after a report is impossible, so an error ends masqd (the test then
  # fails on "masqd run died") and leaves a report; leaks are reported when masqd exits.
  # One leak is suppressed: FoundationEssentials' String(contentsOf:) loses the 4 KiB buffer
  # of every file it reads (seen with Swift 6.3.1); Shell.run reads each command's output
  # with it, so every `rules install` and the lab report it. The engine's loop never calls it.
  # TSan: races are reported and masqd carries on; the reports decide.
  printf 'leak:readBytesFromFile\n' >"$reports/../lsan.supp"
  export LSAN_OPTIONS="suppressions=$PWD/$TESTS_SCRATCH/reports/lsan.supp:print_suppressions=0"
  export ASAN_OPTIONS="log_path=$reports/asan:detect_leaks=1:abort_on_error=0"
  export TSAN_OPTIONS="log_path=$reports/tsan:halt_on_error=0:second_deadlock_stack=1"
  echo "== running '$FILTER' against $binary"
  set +e
  MASQD_EXECUTABLE=$binary swift test --skip-build --scratch-path "$TESTS_SCRATCH" --filter "$FILTER" 2>&1 \
    | tee "$reports/../$kind-tests.log" | grep -E "^(✔|✘) (Test|Suite)|Test run with|error:"
  status=${PIPESTATUS[0]}
  set -e
  unset ASAN_OPTIONS TSAN_OPTIONS LSAN_OPTIONS
  found=$(find "$reports" -type f | sort)
  if [ -n "$found" ]; then
    echo "== $kind sanitizer reports:"
    for f in $found; do echo "--- $f"; head -n 60 "$f"; done
    failed=1
  else
    echo "== $kind: no sanitizer report"
  fi
  if [ "$status" -ne 0 ]; then
    echo "== $kind: the tests failed (exit status $status); log: $reports/../$kind-tests.log"
    failed=1
  fi
done
exit $failed
