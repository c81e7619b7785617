#!/usr/bin/env bash
# Runs every test: the example package's (Examples/RendezvousHelper, a helper built outside
# masqd), unit tests of the core and the binding, and the integration tests that
# build router topologies in network namespaces and push real traffic through the real
# engine; then the benchmarks' allocation gate, a bounded fuzz run (60 s) and the deploy
# walkthrough (README's "Deploying on a router" on Debian 12 under systemd-nspawn). Needs root
# (namespaces, iptables): run by another user, it runs itself through sudo. Installs what it
# needs first. Arguments go to `swift test` (e.g. --filter); MASQD_SKIP_BENCH_GATE=1,
# MASQD_SKIP_FUZZ=1, MASQD_SKIP_WALKTHROUGH=1 and MASQD_SKIP_FAST_PATH_MODE=1 (the suites run
# again with --fast-path) leave those steps out.
set -euo pipefail
cd "$(dirname "$0")/.."

# Root is needed throughout (apt, namespaces, iptables). As root (a fresh Debian often has no
# sudo) everything runs here; otherwise the script runs itself again through sudo, keeping
# PATH (sudo's secure_path would hide the Swift toolchain) and the MASQD_* and proxy settings
# (sudo's env_reset drops them), and hands what it built back to the caller at the end.
if [ "$(id -u)" -ne 0 ]; then
  if ! command -v sudo >/dev/null 2>&1; then
    echo "run-all: the tests need root (apt, network namespaces, iptables): run it as root, or install sudo" >&2
    exit 1
  fi
  keep=("PATH=$PATH" "MASQD_RUN_ALL_OWNER=$(id -u):$(id -g)")
  while IFS= read -r name; do
    case "$name" in
      MASQD_*|CI|http_proxy|https_proxy|no_proxy) keep+=("$name=${!name}") ;;
    esac
  done < <(compgen -e)
  exec sudo env "${keep[@]}" "$0" "$@"
fi
if [ -n "${MASQD_RUN_ALL_OWNER:-}" ]; then
  # Started through sudo: the checkout is the caller's, so are the build folders made in it.
  trap 'chown -R "$MASQD_RUN_ALL_OWNER" .' EXIT
fi

Deploy/install-deps.sh --tests

# The example package (a helper built outside masqd, with its own tests and its own masqd
# binary, Examples/RendezvousHelper/.build): built and tested first, because ExternalHelperTests
# in the main package's `swift test` runs that binary.
(cd Examples/RendezvousHelper && swift build && swift test)

# The integration tests start the real masqd binary from the build folder.
swift build
swift test "$@"

if [ $# -eq 0 ] && [ "${MASQD_SKIP_FAST_PATH_MODE:-0}" != 1 ]; then
  # The kernel fast path as a run mode (#16): suites whose flows it takes over, again with
  # --fast-path on every engine the shared topologies start (MASQD_TEST_FAST_PATH=1,
  # IntegrationSupport). Only in a full run; MASQD_SKIP_FAST_PATH_MODE=1 leaves it out.
  MASQD_TEST_FAST_PATH=1 swift test --skip-build \
    --filter 'MasqueradeTests|NATSemanticsTests|FTPTests|TFTPTests|HairpinTests|FragmentTests|TCPGuardTests|StateRestartTests|ReloadAndMetricsTests'
fi

if [ "${MASQD_SKIP_BENCH_GATE:-0}" != 1 ]; then
  # Allocations per operation are exact, so they gate every run: a translation that starts
  # allocating fails here (Benchmarks/Thresholds). Times vary too much between machines and
  # days to gate on; they are compared by hand (README "Performance").
  (cd Benchmarks && swift package benchmark thresholds check --metric mallocCountTotal --no-progress)
fi

if [ "${MASQD_SKIP_FUZZ:-0}" != 1 ]; then
  # Its own build folder: a developer's long run in .build-fuzz is neither rebuilt nor mixed in.
  FUZZ_OUT="$PWD/.build-fuzz-ci" Tests/Fuzz/run-fuzz.sh 60
fi
if [ "${MASQD_SKIP_WALKTHROUGH:-0}" != 1 ]; then
  # 77: this host cannot boot the Debian router at all (no mirror, no nspawn); said loudly,
  # not counted as a failure of the README's steps. Any other non-zero status fails the run.
  status=0
  Tests/deploy-walkthrough.sh || status=$?
  if [ "$status" -eq 77 ]; then
    echo "run-all: WARNING: the deploy walkthrough was SKIPPED: this host cannot boot its Debian router (see above)" >&2
  elif [ "$status" -ne 0 ]; then
    exit "$status"
  fi
fi
