#!/usr/bin/env bash
# Undoes Deploy/install.sh: stops and disables masqd.service, takes masqd's iptables rules
# out (`masqd rules remove`), and deletes the binary, the unit, the sysctl file and the
# installed README. /etc/masqd/masqd.yaml and the saved translation state in /var/lib/masqd
# are kept unless --purge is given.
#
# The rules are removed before anything else is deleted; if that fails (say the config
# file no longer describes the installed rules), nothing is deleted, so the masqd binary
# is still there to remove them: fix it and run this again, or pass --force.
#
# Forwarding (net.ipv4.ip_forward) and accept_local keep their current values: turning
# forwarding off under a running router would cut it off. They return to the kernel's
# defaults at the next boot, since masqd.service, which turned them on, is gone.
#
# Environment: DESTDIR=DIR uninstalls from a staging tree made by install.sh (no
# systemctl, no rules).
set -euo pipefail

purge=no
force=no
for arg in "$@"; do
  case "$arg" in
    --purge) purge=yes ;;
    --force) force=yes ;;
    -h|--help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; echo "usage: $0 [--purge] [--force]"; exit 0 ;;
    *) echo "uninstall: unknown argument $arg (usage: $0 [--purge] [--force])" >&2; exit 2 ;;
  esac
done

destdir="${DESTDIR:-}"
masqd="$destdir/usr/local/sbin/masqd"
config="$destdir/etc/masqd/masqd.yaml"

say() { echo "uninstall: $*"; }
die() { echo "uninstall: $*" >&2; exit 1; }

if [ -z "$destdir" ] && [ "$(id -u)" -ne 0 ]; then
  die "run as root (sudo $0)"
fi

if [ -z "$destdir" ]; then
  if [ -d /run/systemd/system ] && systemctl cat masqd.service >/dev/null 2>&1; then
    systemctl disable --now masqd.service || die "could not stop masqd.service"
    say "stopped and disabled masqd.service"
  fi

  if [ -x "$masqd" ] && [ -f "$config" ]; then
    if "$masqd" rules remove --config "$config"; then
      say "removed masqd's iptables rules"
    elif [ "$force" = yes ]; then
      say "masqd rules remove failed; going on (--force). Left-over rules carry the comment \"masqd queue N\" (iptables-save | grep masqd)"
    else
      die "masqd rules remove --config $config failed; nothing deleted (fix it, or --force)"
    fi
  elif [ "$force" != yes ]; then
    die "cannot remove the rules: need $masqd and $config (or --force to delete the files anyway)"
  fi
fi

removed=()
for f in "$masqd" \
         "$destdir/etc/systemd/system/masqd.service" \
         "$destdir/etc/sysctl.d/99-masqd.conf" \
         "$destdir/usr/local/share/doc/masqd/README.md"; do
  if [ -e "$f" ] || [ -L "$f" ]; then rm -f "$f"; removed+=("$f"); fi
done
rmdir "$destdir/usr/local/share/doc/masqd" 2>/dev/null || true
for f in "${removed[@]}"; do say "removed $f"; done

state_dir="$destdir/var/lib/masqd"
if [ "$purge" = yes ]; then
  rm -f "$config"
  rmdir "$destdir/etc/masqd" 2>/dev/null || true
  say "removed $config"
  if [ -d "$state_dir" ]; then rm -rf "$state_dir"; say "removed $state_dir (saved translation state)"; fi
else
  if [ -e "$config" ]; then say "kept $config (--purge removes it)"; fi
  if [ -d "$state_dir" ]; then say "kept $state_dir (--purge removes it)"; fi
fi

if [ -z "$destdir" ] && [ -d /run/systemd/system ]; then
  systemctl daemon-reload
  systemctl reset-failed masqd.service 2>/dev/null || true
fi
if [ -d "$destdir/etc/systemd/system/masqd.service.d" ]; then
  say "kept drop-ins in $destdir/etc/systemd/system/masqd.service.d (yours; delete them by hand)"
fi
