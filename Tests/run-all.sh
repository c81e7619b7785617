#!/usr/bin/env bash
# Runs every test: unit tests of the core and the binding, and the integration tests that
# build router topologies in network namespaces and push real traffic through the real
# engine. Needs root (namespaces, iptables); installs what it needs first.
set -euo pipefail
cd "$(dirname "$0")/.."

Deploy/install-deps.sh --tests

if [ "$(id -u)" -ne 0 ]; then
  echo "run-all: the integration tests need root (network namespaces, iptables); re-run with sudo" >&2
  exit 1
fi

# The integration tests start the real masqd binary from the build folder.
swift build
swift test "$@"
