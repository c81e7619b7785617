#!/usr/bin/env bash
# Installs the Debian packages masqd needs to build, to run its lab, and to run its tests.
# Safe to run again: apt-get skips what is already installed.
set -euo pipefail

packages=(
  # build
  libnetfilter-queue-dev libnfnetlink-dev libmnl-dev pkg-config
  # run: the rules installer and the lab
  iptables iproute2 iputils-ping curl python3
  # tests: crafted packets, captures, traffic tools
  python3-scapy tcpdump socat netcat-openbsd procps stun-client stun-server vsftpd lftp python3-pyftpdlib ngircd iperf3 sockperf
)

sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: everything is installed"
  exit 0
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
