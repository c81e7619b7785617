#!/usr/bin/env bash
# Installs masqd on this router (README.md, "Deploying on a router"):
#   /usr/local/sbin/masqd                 the binary (from .build/release/masqd: run
#                                         `swift build -c release` first)
#   /etc/systemd/system/masqd.service     the service (rules in, engine running)
#   /etc/sysctl.d/99-masqd.conf           kernel settings explained (forwarding is turned
#                                         on by the service, after its rules)
#   /etc/masqd/masqd.yaml                 the deployment, from Deploy/masqd.yaml, only if
#                                         there is none yet (an edited one is never replaced)
#   /usr/local/share/doc/masqd/README.md  the documentation the unit points to
# It starts nothing and changes no running setting: edit /etc/masqd/masqd.yaml, then
# `systemctl enable --now masqd`. Run it again after a rebuild to upgrade.
#
# Environment: MASQD_BINARY=PATH installs another build; DESTDIR=DIR installs under DIR
# (a staging tree: no systemctl is run).
set -euo pipefail

repo="$(cd "$(dirname "$0")/.." && pwd)"
binary="${MASQD_BINARY:-$repo/.build/release/masqd}"
destdir="${DESTDIR:-}"

sbin="$destdir/usr/local/sbin"
unitdir="$destdir/etc/systemd/system"
sysctldir="$destdir/etc/sysctl.d"
confdir="$destdir/etc/masqd"
docdir="$destdir/usr/local/share/doc/masqd"

say() { echo "install: $*"; }
die() { echo "install: $*" >&2; exit 1; }

if [ -z "$destdir" ] && [ "$(id -u)" -ne 0 ]; then
  die "run as root (sudo $0)"
fi
[ -x "$binary" ] || die "$binary: no such executable; build it first with: swift build -c release"
# The binary must start here: a release build links the Swift runtime of the toolchain it
# was built with, so it runs where that toolchain is installed.
"$binary" --help >/dev/null 2>&1 || die "$binary does not run on this machine: $("$binary" --help 2>&1 | head -n 1)"
for f in masqd.service 99-masqd.conf masqd.yaml; do
  [ -f "$repo/Deploy/$f" ] || die "Deploy/$f is missing from $repo"
done

install -d -m 0755 "$sbin" "$unitdir" "$sysctldir" "$docdir"
install -m 0755 "$binary" "$sbin/masqd"
say "installed $sbin/masqd"
install -m 0644 "$repo/Deploy/masqd.service" "$unitdir/masqd.service"
say "installed $unitdir/masqd.service"
install -m 0644 "$repo/Deploy/99-masqd.conf" "$sysctldir/99-masqd.conf"
say "installed $sysctldir/99-masqd.conf"
install -m 0644 "$repo/README.md" "$docdir/README.md"

install -d -m 0755 "$confdir"
if [ -e "$confdir/masqd.yaml" ]; then
  say "kept $confdir/masqd.yaml (compare with Deploy/masqd.yaml for new settings)"
else
  install -m 0644 "$repo/Deploy/masqd.yaml" "$confdir/masqd.yaml"
  say "installed $confdir/masqd.yaml: set wan and lan in it before starting masqd"
fi

if [ -z "$destdir" ] && [ -d /run/systemd/system ]; then
  systemctl daemon-reload
  if systemctl is-active --quiet masqd; then
    say "masqd is running the old binary: systemctl restart masqd (traffic stops for a moment, it does not leak)"
  fi
fi

cat <<EOF
install: next:
  1. edit /etc/masqd/masqd.yaml (wan, lan, forwards)
  2. check it:            masqd rules print --config /etc/masqd/masqd.yaml
  3. start it at boot:    systemctl enable --now masqd   (rules in, then forwarding on)
EOF
