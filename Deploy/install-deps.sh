#!/usr/bin/env bash
# Installs the Debian packages masqd needs to build and run (and its lab demo); with
# --tests, also the test tools, some of which are servers Debian starts on install
# (vsftpd, ngircd, stun-server, tftpd-hpa, kamailio) — so not for a production router.
# Safe to run again: apt-get skips what is already installed.
set -euo pipefail

packages=(
  # build
  libnetfilter-queue-dev libnfnetlink-dev libmnl-dev pkg-config
  # the package: Deploy/package-deb.sh (dpkg-shlibdeps)
  dpkg-dev
  # run: the rules installer (iptables or nft, --firewall) and the lab
  iptables nftables iproute2 iputils-ping curl python3
  # the kernel fast path (--fast-path): libbpf to build and run, bpftool to inspect its map
  libbpf-dev bpftool
)
if [ "${1:-}" = "--tests" ]; then
  packages+=(
    # crafted packets, captures, traffic tools, real protocol peers, unit checks
    python3-scapy tcpdump socat netcat-openbsd procps stun-client stun-server
    vsftpd lftp python3-pyftpdlib ngircd iperf3 sockperf systemd tftp-hpa tftpd-hpa sip-tester kamailio
    # the Prometheus text format's reference parser, for the metrics endpoint's tests
    python3-prometheus-client
    # Deploy/package-deb.sh's --lintian check, for the deploy walkthrough
    lintian
    # nfdump's IPFIX collector (nfcapd) and reader, for the NAT event export's tests
    nfdump
    # the HA failover test: VRRP between two router namespaces (Deploy/keepalived/)
    keepalived
  )
elif [ -n "${1:-}" ]; then
  echo "usage: $0 [--tests]" >&2
  exit 2
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: everything is installed"
  exit 0
fi
echo "install-deps: installing ${missing[*]}"
# As root, apt-get directly (a fresh Debian often has no sudo); otherwise through sudo.
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  if ! command -v sudo >/dev/null 2>&1; then
    echo "install-deps: installing packages needs root: run it as root, or install sudo" >&2
    exit 1
  fi
  sudo="sudo"
fi

export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
