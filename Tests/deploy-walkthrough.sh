#!/usr/bin/env bash
# Follows README.md's "Deploying on a router" (steps 1–7 and the fail-closed paragraph)
# literally, as a new user would, on a fresh Debian 12 booted with systemd as PID 1 under
# `systemd-nspawn --boot`. The container's network namespace is the router of this topology
# (all in namespaces made here, TEST-NET addresses only):
#
#   LAN host (wk-lan)         router (wk-router: the container)         "internet" (wk-inet)
#   eth0 192.0.2.10/24 ---- eth1 192.0.2.1/24 | eth0 203.0.113.1/24 ---- eth0 203.0.113.2/24
#   default via 192.0.2.1                                                HTTP server on :8080,
#                                                                        no route to the LAN
#
# The "internet" server has no route back to 192.0.2.0/24: a request only gets an answer if
# it was masqueraded behind 203.0.113.1, and a counting rule there shows any packet that
# leaked out with a LAN source address.
#
# Each step prints `== step N: …`, the commands as typed (router#: a root shell on the router,
# in the checkout; lan$ / inet$: the other namespaces) with their output, and PASS or FAIL;
# the first FAIL ends the run, non-zero. On exit the machine is powered off, the namespaces
# deleted and the rootfs copy removed.
#
# The router installs the Debian package that Deploy/package-deb.sh builds on the host (the
# "build machine"); it has no Swift toolchain and no checkout. Tests/run-all.sh runs this
# last; the first run debootstraps Debian 12 into the cache (a few minutes, ~300 MB), and
# every run boots a whole system and takes a few minutes. Needs root, the Swift toolchain
# the host builds with, and a Debian mirror (apt).
#
# Environment: MASQD_WALK_CACHE=DIR (default /var/cache/masqd-walkthrough: the pristine
# rootfs, reused; delete it to start over), MASQD_WALK_MIRROR=URL (default
# http://deb.debian.org/debian).
set -euo pipefail

repo="$(cd "$(dirname "$0")/.." && pwd)"
cache="${MASQD_WALK_CACHE:-/var/cache/masqd-walkthrough}"
# The mirror the host's apt uses (its proxy too, which debootstrap only takes from http_proxy).
host_mirror() {
  local uri
  uri=$(awk '/^URIs:/ && $2 !~ /security/ {print $2; exit}' /etc/apt/sources.list.d/*.sources 2>/dev/null)
  [ -n "$uri" ] || uri=$(awk '$1 == "deb" && $0 !~ /security/ {for (i = 2; i <= NF; i++) if ($i ~ /^https?:/) {print $i; exit}}' /etc/apt/sources.list 2>/dev/null)
  echo "${uri:-http://deb.debian.org/debian}"
}
mirror="${MASQD_WALK_MIRROR:-$(host_mirror)}"
if [ -z "${http_proxy:-}" ]; then
  apt_proxy=$(apt-config dump 2>/dev/null | sed -n 's/^Acquire::http::Proxy "\(.*\)";$/\1/p' | head -n 1)
  if [ -n "$apt_proxy" ]; then export http_proxy="$apt_proxy"; fi
fi
machine="wk-router"
ns_router="wk-router" ns_lan="wk-lan" ns_inet="wk-inet"
work="$cache/run"                 # this run's copy of the rootfs, its console log, the web root
root="$work/rootfs"
config=/etc/masqd/masqd.yaml
url="http://203.0.113.2:8080/"
started=$SECONDS

# --- Output and checks -------------------------------------------------------------------

step() { echo; echo "== step $1: $2   [$((SECONDS - started)) s]"; }
pass() { echo "PASS: $*"; }
fail() {
  echo "FAIL: $*"
  if [ -n "${out_file:-}" ] && [ -s "$out_file" ]; then
    echo "--- output of the last command:"; sed 's/^/    /' "$out_file"
  fi
  if [ -n "${leader:-}" ]; then
    echo "--- on the router: systemctl status masqd; journalctl -u masqd -n 40"
    router_shell "systemctl status masqd --no-pager -l; journalctl -u masqd --no-pager -n 40" 2>&1 | sed 's/^/    /'
  fi
  exit 1
}
# The host cannot provide the router at all (no Debian mirror for debootstrap, a kernel or
# sandbox where systemd-nspawn cannot boot a system): not a finding about the README. Exit 77,
# which Tests/run-all.sh reports as SKIPPED with this reason instead of failing the run.
skip_environment() {
  echo "SKIPPED (environment, not the README): $*"
  exit 77
}

out_file=""   # output of the last command run through run_at
rc=0          # its exit status
out=""        # its output

# run_at WHERE PROMPT COMMAND: run COMMAND with bash in WHERE (router, lan, inet), print it as
# typed and its output indented; $out and $rc hold the result (a failure does not stop us:
# the caller checks).
run_at() {
  local where=$1 prompt=$2 command=$3
  echo "$prompt $command"
  set +e
  case "$where" in
    router) router_shell "$command" >"$out_file" 2>&1 ;;
    lan) ip netns exec "$ns_lan" bash -c "$command" </dev/null >"$out_file" 2>&1 ;;
    inet) ip netns exec "$ns_inet" bash -c "$command" </dev/null >"$out_file" 2>&1 ;;
  esac
  rc=$?
  set -e
  out="$(cat "$out_file")"
  # Long outputs (masqd stats) are cut for the transcript; the checks see all of $out.
  local lines
  lines=$(grep -c '' <<<"$out" || true)
  if [ -z "$out" ]; then :
  elif [ "$lines" -gt 25 ]; then
    head -n 12 <<<"$out" | sed 's/^/    /'; echo "    … ($((lines - 12)) more lines)"
  else
    sed 's/^/    /' <<<"$out"
  fi
  if [ "$rc" -ne 0 ]; then echo "    (exit status $rc)"; fi
  return 0
}
R() { run_at router "router#" "$1"; }      # as root on the router, in /root
LAN() { run_at lan "lan\$" "$1"; }
INET() { run_at inet "inet\$" "$1"; }

ok() { [ "$rc" -eq 0 ] || fail "$1 (exit status $rc)"; pass "$1"; }
fails() { [ "$rc" -ne 0 ] || fail "$1 (it succeeded)"; pass "$1"; }
has() { grep -Eq -- "$1" <<<"$out" || fail "$2 (no line matching /$1/)"; pass "$2"; }
lacks() { if grep -Eq -- "$1" <<<"$out"; then fail "$2 (a line matches /$1/)"; fi; pass "$2"; }

# A root shell on the router, in root's home (where the .deb was copied): started by the router's own systemd
# (systemd-run), so it has the container's capabilities, not those of nsenter on the host.
leader=""
router_shell() {
  nsenter -t "$leader" -m -u -i -n -p -r -w -- systemd-run --quiet --wait --pipe --collect \
    -p WorkingDirectory=/root -E HOME=/root -E LANG=C.UTF-8 -E TERM=dumb \
    /bin/bash -c "$1" </dev/null
}
# The same, straight from the host: for booting and powering off.
router_exec() { nsenter -t "$leader" -m -u -i -n -p -r -w -- "$@"; }

# --- The web, the leak counter ------------------------------------------------------------

curl_lan() { LAN "curl -sS --max-time ${1:-5} $url"; }
served_to() { tail -n 1 "$work/http.log" | awk '{print $1}'; }   # client of the last request
leaked() {   # packets that reached the "internet" with a LAN source address
  ip netns exec "$ns_inet" iptables -w -t raw -nvxL PREROUTING | awk '/wk-leak/ {print $1}'
}
masqd_rules() { R "iptables-save | grep -- 'masqd queue' | sort"; }

# --- Cleanup ---------------------------------------------------------------------------------

nspawn_pid="" http_pid=""
cleanup() {
  local status=$?
  set +e
  trap - EXIT INT TERM
  # A signal can land while a command's output goes to $out_file: back to the terminal.
  exec 1>&7 2>&8
  if [ -n "$http_pid" ]; then kill "$http_pid" 2>/dev/null; wait "$http_pid" 2>/dev/null; fi
  stop_router
  for ns in "$ns_lan" "$ns_inet" "$ns_router"; do ip netns del "$ns" 2>/dev/null; done
  if [ "$status" -ne 0 ] && [ -f "$work/console.log" ]; then
    cp "$work/console.log" "/tmp/masqd-walkthrough-console.log"
    echo "(the router's console log: /tmp/masqd-walkthrough-console.log)"
  fi
  rm -rf "$work"
  echo
  local verdict=FAILED
  if [ "$status" -eq 0 ]; then verdict=PASSED; elif [ "$status" -eq 77 ]; then verdict="SKIPPED (environment)"; fi
  echo "walkthrough: $verdict in $((SECONDS - started)) s"
  exit "$status"
}

# Powers the machine off (or kills it if it will not go) and waits for nspawn to end.
stop_router() {
  [ -n "$nspawn_pid" ] || return 0
  if [ -n "$leader" ] && kill -0 "$leader" 2>/dev/null; then
    router_exec /bin/systemctl poweroff >/dev/null 2>&1
  fi
  for _ in $(seq 1 30); do kill -0 "$nspawn_pid" 2>/dev/null || break; sleep 1; done
  if kill -0 "$nspawn_pid" 2>/dev/null; then
    # Killing the container's PID 1 ends its whole PID namespace; nspawn then exits.
    [ -n "$leader" ] && kill -KILL "$leader" 2>/dev/null
    sleep 1
    kill -KILL "$nspawn_pid" 2>/dev/null
  fi
  wait "$nspawn_pid" 2>/dev/null
  nspawn_pid="" leader=""
  # nspawn keeps a propagation directory under /run/systemd/nspawn/ and, with /run not on
  # tmpfs here, declines to delete it itself.
  rm -rf "/run/systemd/nspawn/propagate/$machine"
}

# Boots the rootfs copy in the router namespace; sets nspawn_pid and leader (the container's
# PID 1 as the host sees it) and waits until systemd says the system is up.
boot_router() {
  # nspawn leaves /proc/sys read-only; a private network namespace gets /proc/sys/net
  # writable, but only with --private-network, not with --network-namespace-path: ask for it.
  # (Only net.*, which is per namespace: the host's kernel settings stay out of reach.)
  # Likewise CAP_NET_ADMIN, which a router's root has and masqd.service keeps: nspawn grants
  # it by itself only with --private-network.
  SYSTEMD_NSPAWN_API_VFS_WRITABLE=network \
  systemd-nspawn --boot --quiet --register=no --keep-unit --console=read-only \
    --directory="$root" --machine="$machine" --capability=CAP_NET_ADMIN \
    --network-namespace-path="/run/netns/$ns_router" \
    >>"$work/console.log" 2>&1 &
  nspawn_pid=$!
  local deadline=$((SECONDS + 90)) child state=""
  while [ -z "$leader" ]; do
    [ "$SECONDS" -lt "$deadline" ] || skip_environment "systemd-nspawn: the container's PID 1 did not appear (console: $work/console.log)"
    kill -0 "$nspawn_pid" 2>/dev/null || { tail -n 20 "$work/console.log"; skip_environment "systemd-nspawn exited before the router booted"; }
    for child in $(pgrep -P "$nspawn_pid" || true); do
      # PID 1 in its own PID namespace, and already systemd (set up, pivoted).
      if grep -Eq '^NSpid:.*[[:space:]]1$' "/proc/$child/status" 2>/dev/null &&
         [[ "$(readlink "/proc/$child/exe" 2>/dev/null)" == */lib/systemd/systemd ]]; then
        leader=$child
      fi
    done
    [ -n "$leader" ] || sleep 0.5
  done
  while :; do
    state=$(router_exec systemctl is-system-running 2>/dev/null || true)
    case "$state" in running|degraded) break ;; esac
    [ "$SECONDS" -lt "$deadline" ] || { tail -n 30 "$work/console.log"; fail "the router did not finish booting (state: ${state:-no answer})"; }
    sleep 1
  done
  echo "router: systemd $state (PID 1 is host PID $leader)"
  if [ "$state" = degraded ]; then router_exec systemctl --failed --no-legend | sed 's/^/    failed: /'; fi
}

# --- Setup (not in the README: the machine the new user starts from) --------------------------

[ "$(id -u)" -eq 0 ] || { echo "deploy-walkthrough: run as root (namespaces, a container)" >&2; exit 1; }
mkdir -p "$cache"
exec 9>"$cache/lock"
flock -n 9 || { echo "deploy-walkthrough: another run holds $cache/lock" >&2; exit 1; }
exec 7>&1 8>&2
trap cleanup EXIT
trap 'exit 130' INT TERM

step 0 "a fresh Debian 12 router (host side; not in the README)"
need=()
command -v debootstrap >/dev/null || need+=(debootstrap)
command -v systemd-nspawn >/dev/null || need+=(systemd-container)
command -v curl >/dev/null || need+=(curl)
command -v python3 >/dev/null || need+=(python3)
command -v ping >/dev/null || need+=(iputils-ping)
command -v iptables >/dev/null || need+=(iptables)
command -v dpkg-shlibdeps >/dev/null || need+=(dpkg-dev)   # Deploy/package-deb.sh
command -v lintian >/dev/null || need+=(lintian)
if [ ${#need[@]} -gt 0 ]; then
  echo "host: apt-get install ${need[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# A minimal Debian 12 with systemd, made once and kept pristine; each run boots a copy.
if [ ! -x "$cache/rootfs/usr/lib/systemd/systemd" ]; then
  echo "host: debootstrap bookworm into $cache/rootfs (once; a few minutes)"
  rm -rf "$cache/rootfs.tmp"
  debootstrap --variant=minbase --include=systemd,systemd-sysv,dbus,procps \
    bookworm "$cache/rootfs.tmp" "$mirror" >"$cache/debootstrap.log" 2>&1 ||
    { tail -n 20 "$cache/debootstrap.log"; skip_environment "debootstrap from $mirror failed (log: $cache/debootstrap.log)"; }
  mv "$cache/rootfs.tmp" "$cache/rootfs"
fi
rm -rf "$work"
mkdir -p "$work"
out_file="$work/last-output"
cp -a --reflink=auto "$cache/rootfs" "$root"
echo "$machine" >"$root/etc/hostname"
pass "rootfs: a copy of $cache/rootfs (Debian $(cat "$root/etc/debian_version"), minbase + systemd)"

# The topology. Leftover namespaces of an interrupted run go first (these names are ours).
for ns in "$ns_lan" "$ns_inet" "$ns_router"; do ip netns del "$ns" 2>/dev/null || true; done
for ns in "$ns_router" "$ns_lan" "$ns_inet"; do ip netns add "$ns"; ip -n "$ns" link set lo up; done
ip -n "$ns_router" link add eth0 type veth peer name eth0 netns "$ns_inet"
ip -n "$ns_router" link add eth1 type veth peer name eth0 netns "$ns_lan"
ip -n "$ns_router" addr add 203.0.113.1/24 dev eth0
ip -n "$ns_router" addr add 192.0.2.1/24 dev eth1
ip -n "$ns_inet" addr add 203.0.113.2/24 dev eth0
ip -n "$ns_lan" addr add 192.0.2.10/24 dev eth0
for ns in "$ns_router" "$ns_lan" "$ns_inet"; do
  for dev in $(ip -n "$ns" -o link show | awk -F': ' '$2 != "lo" {sub(/@.*/, "", $2); print $2}'); do
    ip -n "$ns" link set "$dev" up
  done
done
ip -n "$ns_lan" route add default via 192.0.2.1
# Counts what reaches the "internet" with a LAN source: masquerading must leave it at 0.
ip netns exec "$ns_inet" iptables -w -t raw -A PREROUTING -s 192.0.2.0/24 -m comment --comment wk-leak
mkdir -p "$work/www"
echo "hello from the internet" >"$work/www/index.html"
ip netns exec "$ns_inet" python3 -m http.server 8080 --bind 203.0.113.2 --directory "$work/www" \
  >"$work/http.log" 2>&1 &
http_pid=$!
# A fresh router does not forward (a new namespace may inherit the host's setting).
ip netns exec "$ns_router" sysctl -qw net.ipv4.ip_forward=0
pass "topology: LAN 192.0.2.10 - eth1 [router] eth0 203.0.113.1 - 203.0.113.2 (HTTP :8080); router forwarding off"

# --- Step 1 ----------------------------------------------------------------------------------

step 1 "Build the package (on the build machine: here, the host)"
echo "host\$ Deploy/package-deb.sh --lintian"
(cd "$repo" && Deploy/package-deb.sh --lintian) >"$out_file" 2>&1 ||
  fail "Deploy/package-deb.sh failed (another engineer mid-edit? retry in a minute)"
sed 's/^/    /' "$out_file"
deb=$(sed -n 's/^package-deb: built \([^ ]*\.deb\) .*/\1/p' "$out_file")
[ -f "$deb" ] || fail "Deploy/package-deb.sh named no .deb it built"
deb_name=$(basename "$deb")
version=$("$repo/Deploy/package-deb.sh" --print-version)
[ "$deb_name" = "masqd_${version}_$(dpkg --print-architecture).deb" ] || fail "the package is called $deb_name"
pass "built $deb_name, lintian without errors"
# "Copy it to the router". The router's apt fetches the packages masqd depends on now, before
# it boots: in the topology it has no way to a Debian mirror. The install itself (step 2)
# runs on the booted router, from apt's cache.
cp "$deb" "$root/root/$deb_name"
echo "router# apt-get update && apt-get install --download-only -y ./$deb_name    (before boot, with the host's network)"
if ! systemd-nspawn --quiet --register=no --keep-unit --directory="$root" --chdir=/root --pipe -- \
     /bin/bash -c "export DEBIAN_FRONTEND=noninteractive; apt-get update -qq && apt-get install --download-only -y -qq ./$deb_name" \
     >"$out_file" 2>&1; then
  fail "apt-get could not resolve the package's Depends on a fresh Debian 12"
fi
rm -rf "/run/systemd/nspawn/propagate/$(basename "$root")"
{ grep -v '^Attempted to remove disk file system' "$out_file" || true; } | tail -n 3 | sed 's/^/    /'
R_debs=$(ls "$root/var/cache/apt/archives/" | grep -c '\.deb$' || true)
pass "copied to the router's /root; its Depends resolve from the Debian mirror ($R_debs packages fetched)"

step boot "the router boots with systemd as PID 1"
boot_router
# A fresh router has no iproute2 or iptables yet (the package's Depends bring them in step 2).
R "cat /sys/class/net/eth0/operstate /sys/class/net/eth1/operstate /proc/sys/net/ipv4/ip_forward"
[ "$out" = $'up\nup\n0' ] || fail "expected eth0 and eth1 up, forwarding 0"
pass "the router's eth0 and eth1 are up, forwarding is off"
LAN "curl -sS --max-time 3 $url"
fails "no way through the router yet"

# --- Step 2 ----------------------------------------------------------------------------------

step 2 "Install"
R "command -v swift swiftc; ls -d /opt/swift* /usr/share/swift* /usr/lib/swift* 2>/dev/null; true"
[ -z "$out" ] || fail "the router has Swift: $out"
pass "the router has no Swift toolchain"
R "DEBIAN_FRONTEND=noninteractive apt-get install -y ./$deb_name"
ok "apt-get install ./$deb_name"
has 'installed, not started' "postinst says it started nothing"
R "ls -l /usr/sbin/masqd /lib/systemd/system/masqd.service /etc/sysctl.d/99-masqd.conf $config /usr/share/man/man8/masqd.8.gz /usr/share/bash-completion/completions/masqd /usr/share/zsh/vendor-completions/_masqd /usr/share/fish/vendor_completions.d/masqd.fish /usr/share/doc/masqd/README.md /usr/share/doc/masqd/copyright"
ok "the binary, the unit, the sysctl file, the config, the man page, the completions and the docs are in place"
R "ldd /usr/sbin/masqd"
ok "ldd /usr/sbin/masqd"
lacks 'swift|Foundation|dispatch|BlocksRuntime|not found' "it loads no Swift runtime or Foundation library, and finds every library it needs"
has 'libnetfilter_queue\.so\.1 => /' "libnetfilter_queue from Debian"
R "cat /var/lib/dpkg/info/masqd.conffiles"
has "^$config\$" "the config is a conffile"
R "masqd --version; zcat /usr/share/man/man8/masqd.8.gz | sed -n 's/^\.Dt //p'"
has "^$version\$" "masqd --version prints $version"
has '^MASQD 8$' "the man page is masqd(8)"
R "systemctl is-enabled masqd; systemctl is-active masqd; iptables-save | grep -c masqd; cat /proc/sys/net/ipv4/ip_forward"
[ "$out" = $'disabled\ninactive\n0\n0' ] || fail "expected: masqd disabled and inactive, 0 masqd rules, forwarding 0"
pass "it started nothing: masqd disabled and inactive, no rules, forwarding still off"

# --- Step 3 ----------------------------------------------------------------------------------

step 3 "Configure"
R "sed -i 's/^wan: .*/wan: eth0/; s|^  - 192\.168\.1\.0/24\$|  - 192.0.2.0/24|' $config"
ok "set wan to eth0 and lan to 192.0.2.0/24 (this topology's LAN)"
# "delete the example's forward entries": the keys that are set, i.e. not commented out.
R "sed -i '/^forward:/,/^[^ ]/{/^forward:/d;/^  - /d}' $config; grep -nE '^(wan|lan|  - |forward)' $config"
has '^[0-9]+:wan: eth0$' "wan: eth0"
has '^[0-9]+:  - 192\.0\.2\.0/24$' "lan: 192.0.2.0/24"
lacks 'forward' "no forward entries"
# "the keys are the engine options without --; `masqd run --help` lists them": every key the
# file sets or shows commented out.
R "masqd run --help >/tmp/run-help
for key in \$(sed -nE 's/^#? ?([a-z][a-z-]*):( [^ ]*)?\$/\\1/p' $config | sort -u); do
  if grep -qE -- \"--\$key([^a-z-]|\\\$)\" /tmp/run-help; then echo \"--\$key: listed\"; else echo \"--\$key: NOT LISTED\"; fi
done"
has 'wan: listed' "masqd run --help lists the file's keys"
lacks 'NOT LISTED' "all of them"
R "masqd rules print --config $config"
ok "masqd rules print"
has "-o eth0 -s 192\.0\.2\.0/24 .*NFQUEUE --queue-num 0" "it prints the outbound rule for the LAN"
R "iptables-save | grep -c masqd"
has '^0$' "and changes nothing"

# --- Step 4 ----------------------------------------------------------------------------------

step 4 "Start"
R "systemctl enable --now masqd"
ok "systemctl enable --now masqd"
R "cat /proc/sys/net/ipv4/ip_forward"
has '^1$' "forwarding on (the unit turned it on, after rules install)"
sleep 2
R "systemctl is-enabled masqd; systemctl is-active masqd"
has '^enabled$' "enabled at boot"
has '^active$' "running (2 s after the start)"

# --- Step 5 ----------------------------------------------------------------------------------

step 5 "Check"
R "masqd stats"
ok "masqd stats"
has '^external_address 203\.0\.113\.1$' "external_address is the WAN address"
before=$(awk '$1 == "translated_outbound" {print $2}' "$out_file")
curl_lan
ok "the LAN host fetches a page from the internet"
has '^hello from the internet$' "with the server's content"
[ "$(served_to)" = 203.0.113.1 ] || fail "the server saw the client as $(served_to), not 203.0.113.1: $(tail -n 1 "$work/http.log")"
pass "the server saw the client as 203.0.113.1 (masqueraded): $(tail -n 1 "$work/http.log")"
[ "$(leaked)" = 0 ] || fail "$(leaked) packets reached the internet with a LAN source address"
pass "nothing reached the internet with a LAN source address"
R "masqd stats"
after=$(awk '$1 == "translated_outbound" {print $2}' "$out_file")
[ "${after:-0}" -gt "${before:-0}" ] || fail "translated_outbound did not grow ($before -> $after)"
pass "the counters grew (translated_outbound $before -> $after)"
R "masqd flows"
ok "masqd flows"
has '192\.0\.2\.10' "it lists the LAN host's translation"
R "journalctl -u masqd --no-pager"
has 'masqd running: .*WAN eth0 \(203\.0\.113\.1\), LAN 192\.0\.2\.0/24' "the journal has the start line"
# Not part of the README: the journal stamps entries itself, so masqd's lines carry no
# timestamp of their own, and their level is the entry's priority.
R "journalctl -u masqd --no-pager -o cat -p info | grep 'masqd running'"
has '^info: masqd running' "the start line has no timestamp of its own and the journal's priority info"
lacks '^[0-9]{4}-[0-9]{2}-[0-9]{2}' "no second timestamp in the journal"
R "journalctl -u masqd --no-pager -o cat -p notice | grep -c 'masqd running' || true"
has '^0$' "at priority notice and above the info line is filtered out"
# "external_address … none until eth0 has one", "WAN address changes" in the journal.
R "ip addr del 203.0.113.1/24 dev eth0
for i in \$(seq 20); do masqd stats | grep -q '^external_address none\$' && break; sleep 0.5; done
masqd stats | grep '^external_address'"
has '^external_address none$' "with no address on eth0: external_address none"
R "ip addr add 203.0.113.1/24 dev eth0
for i in \$(seq 20); do masqd stats | grep -q '^external_address 203' && break; sleep 0.5; done
masqd stats | grep '^external_address'; journalctl -u masqd --no-pager -o cat | grep 'address is now'"
has '^external_address 203\.0\.113\.1$' "the address back: external_address 203.0.113.1"
has 'WAN eth0 address is now none' "the journal logged the change to none"
has 'WAN eth0 address is now 203\.0\.113\.1' "and back"
R "iptables-save | grep masqd"
has "masqd queue 0" "iptables-save shows the rules"
masqd_rules
rules_running="$out"

# "systemctl enable": after a reboot masqd is back by itself, rules in, before anyone logs in.
# (The router's namespace outlives the container, so its addresses and ip_forward stay as
# they were: forwarding is set back to the kernel's boot value, 0, from the host while the
# router is down, so that the unit turning it on again shows.)
step reboot "masqd comes back after a reboot (enabled in step 4)"
echo "router# systemctl reboot"
router_exec systemctl reboot
for _ in $(seq 1 60); do kill -0 "$nspawn_pid" 2>/dev/null || break; sleep 1; done
kill -0 "$nspawn_pid" 2>/dev/null && fail "the router did not go down for the reboot within 60 s"
set +e; wait "$nspawn_pid"; nspawn_status=$?; set -e
[ "$nspawn_status" = 133 ] || fail "systemd-nspawn exited with $nspawn_status, not 133 (reboot)"
nspawn_pid="" leader=""
rm -rf "/run/systemd/nspawn/propagate/$machine"
ip netns exec "$ns_router" sysctl -qw net.ipv4.ip_forward=0
boot_router
R "systemctl is-active masqd; cat /proc/sys/net/ipv4/ip_forward"
has '^active$' "masqd runs"
has '^1$' "and the unit turned forwarding on"
masqd_rules
[ "$out" = "$rules_running" ] || fail "the rules after the reboot differ from those before"
pass "with the same rules"
R "journalctl -b -u masqd --no-pager -o cat | grep 'masqd running'"
has 'WAN eth0 \(203\.0\.113\.1\)' "started at boot on the WAN address"
curl_lan
ok "traffic flows"

# --- Fail-closed ------------------------------------------------------------------------------

step fail-closed "stopping masqd, or masqd dying, leaves its rules in place"
INET "ping -c 1 -W 2 203.0.113.1"
ok "while masqd runs, the router answers on its WAN address"
LAN "ping -c 1 -W 2 192.0.2.1"
ok "while masqd runs, the router answers LAN hosts"
R "systemctl stop masqd"
ok "systemctl stop masqd"
masqd_rules
[ "$out" = "$rules_running" ] || fail "the rules changed when masqd stopped"
pass "the rules are still in"
served_before=$(wc -l <"$work/http.log")
curl_lan 4
fails "the LAN host's request goes nowhere"
[ "$(wc -l <"$work/http.log")" = "$served_before" ] || fail "the server still answered"
[ "$(leaked)" = 0 ] || fail "$(leaked) packets leaked out with a LAN source address"
pass "nothing leaked out untranslated"
INET "ping -c 1 -W 2 203.0.113.1"
fails "the router's own WAN address is unreachable (\"SSH to the router over the WAN works only while masqd runs\")"
LAN "ping -c 1 -W 2 192.0.2.1"
fails "LAN hosts cannot reach the router either (hairpinning on)"
R "systemctl start masqd"
ok "systemctl start masqd"
sleep 1
curl_lan
ok "traffic resumes when masqd runs again"

# "systemd restarts it 3 s after a failure"
R "systemctl show -p MainPID --value masqd"
old_pid=$out
R "kill -KILL \$(systemctl show -p MainPID --value masqd)"
ok "masqd killed (SIGKILL): it dies"
t0=$SECONDS
new_pid=""
while [ $((SECONDS - t0)) -lt 15 ]; do
  new_pid=$(router_shell "systemctl is-active --quiet masqd && systemctl show -p MainPID --value masqd" 2>/dev/null || true)
  if [ -n "$new_pid" ] && [ "$new_pid" != 0 ] && [ "$new_pid" != "$old_pid" ]; then break; fi
  new_pid=""
  sleep 0.5
done
[ -n "$new_pid" ] || { R "systemctl status masqd --no-pager"; fail "systemd did not restart masqd within 15 s"; }
pass "systemd restarted it after about $((SECONDS - t0)) s"
sleep 1
curl_lan
ok "traffic flows again"

# The recovery commands, each after a start and stop that put the rules back.
R "systemctl stop masqd; masqd rules remove --config $config"
ok "masqd rules remove --config $config"
masqd_rules
[ -z "$out" ] || fail "masqd rules are left"
pass "the rules are out"
curl_lan 3
fails "no answer (the server has no route back to the LAN)"
[ "$(leaked)" -gt 0 ] || fail "no packet with a LAN source reached the internet"
pass "\"with the rules out and masqd stopped, forwarded LAN traffic leaves the WAN untranslated\" ($(leaked) packets)"
leak_count=$(leaked)
R "systemctl start masqd; systemctl stop masqd; masqd rules remove --wan eth0 --lan 192.0.2.0/24"
ok "masqd rules remove --wan eth0 --lan 192.0.2.0/24"
masqd_rules
[ -z "$out" ] || fail "masqd rules are left after the remove with options"
pass "the same rules, given as options: out"
R "systemctl start masqd; systemctl stop masqd; iptables-save | grep -c 'masqd queue'"
has '^[1-9]' "the rules are back"
# The README's loop, verbatim.
loop=$(awk '/^for t in raw mangle/ {f = 1} f {print} f && /done; done/ {exit}' "$repo/README.md")
[ -n "$loop" ] || fail "the README's fail-closed paragraph has no 'for t in raw mangle' loop"
R "$loop"
ok "the README's loop over every masqd rule"
masqd_rules
[ -z "$out" ] || fail "masqd rules are left after the README's loop"
pass "every masqd rule is out"

# "To have systemctl stop masqd take the rules out (fail-open), put the unit's commented
# ExecStopPost= line into a drop-in (systemctl edit masqd)". The editor a user would type
# in is a script that writes the line, uncommented, taken from the installed unit.
# systemctl 252 edits only on a terminal: `script` gives it one.
R "cat >/root/editor <<'END'
#!/bin/sh
{ echo '[Service]'; sed -n 's/^#ExecStopPost=/ExecStopPost=/p' /lib/systemd/system/masqd.service; } >\"\$1\"
END
chmod +x /root/editor
SYSTEMD_EDITOR=/root/editor script -qec 'systemctl edit masqd' /dev/null
cat /etc/systemd/system/masqd.service.d/override.conf"
has '^ExecStopPost=/usr/sbin/masqd rules remove --config /etc/masqd/masqd.yaml$' "the drop-in holds the unit's ExecStopPost= line"
R "systemctl start masqd; iptables-save | grep -c 'masqd queue'; systemctl stop masqd; iptables-save | grep -c 'masqd queue'"
has '^0$' "with it, systemctl stop masqd takes the rules out"
R "systemctl revert masqd; systemctl start masqd"
ok "drop-in reverted, masqd started"
masqd_rules
[ "$out" = "$rules_running" ] || fail "the rules after the restart differ from the first ones"
sleep 1
curl_lan
ok "traffic flows"
[ "$(leaked)" = "$leak_count" ] || fail "more packets leaked out with a LAN source ($leak_count -> $(leaked))"
pass "no more LAN-source packets leaked"

# --- Step 6 ----------------------------------------------------------------------------------

step 6 "Change the settings, upgrade"
R "sed -i 's/^helpers: .*/helpers: none/' $config; systemctl restart masqd"
ok "helpers: none, systemctl restart masqd"
sleep 1
R "journalctl -u masqd --no-pager -o cat _SYSTEMD_INVOCATION_ID=\$(systemctl show -p InvocationID --value masqd)"
has 'masqd running' "the new run logged its start"
lacks '^helper ' "and runs without helpers"
curl_lan
ok "traffic flows"

R "systemctl stop masqd
masqd rules remove --config $config
sed -i 's/^no-hairpin: false/no-hairpin: true/' $config
systemctl start masqd"
ok "stop, rules remove, no-hairpin: true, start"
masqd_rules
rules_now="$out"
lacks 'dst-type LOCAL' "the hairpin rule is gone"
R "masqd rules print --config $config | grep -c 'masqd queue'"
[ "$(grep -c . <<<"$rules_now")" = "$out" ] || fail "$(grep -c . <<<"$rules_now") masqd rules in, $out printed"
pass "exactly the rules the file describes ($out)"
sleep 1
curl_lan
ok "traffic flows"

# Upgrade: the same package again ("a newer one" would be a rebuild with a new version).
R "md5sum $config; systemctl show -p MainPID --value masqd"
sum_before=$(head -n 1 <<<"$out")
pid_before=$(tail -n 1 <<<"$out")
R "DEBIAN_FRONTEND=noninteractive apt-get install -y --reinstall ./$deb_name"
ok "apt-get install --reinstall ./$deb_name"
R "md5sum $config; systemctl is-active masqd; systemctl show -p MainPID --value masqd"
[ "$(head -n 1 <<<"$out")" = "$sum_before" ] || fail "the config changed"
pass "the config is unchanged (a conffile: dpkg keeps an edited one)"
has '^active$' "masqd runs"
[ "$(tail -n 1 <<<"$out")" != "$pid_before" ] || fail "masqd was not restarted with the new binary (MainPID $pid_before)"
pass "postinst restarted it with the new binary (MainPID $pid_before -> $(tail -n 1 <<<"$out"))"
sleep 1
curl_lan
ok "traffic flows"

# --- Step 7 ----------------------------------------------------------------------------------

step 7 "Uninstall"
# "if that fails, nothing is removed": a config masqd cannot read.
R "cp $config /root/masqd.yaml.good; sed -i 's/^wan: eth0\$/wan: [eth0/' $config
DEBIAN_FRONTEND=noninteractive apt-get remove -y masqd"
fails "apt-get remove with a config masqd cannot read"
has 'nothing removed' "prerm says why"
R "dpkg -s masqd | grep '^Status:'; ls /usr/sbin/masqd"
has '^Status: install ok installed$' "the package is still installed"
masqd_rules
[ "$out" = "$rules_now" ] || fail "the rules changed"
pass "with its rules in (fail-closed)"
R "cp /root/masqd.yaml.good $config"
ok "config fixed"
R "DEBIAN_FRONTEND=noninteractive apt-get remove -y masqd"
ok "apt-get remove masqd"
masqd_rules
[ -z "$out" ] || fail "masqd rules are left"
pass "the rules are out"
R "systemctl cat masqd"
fails "the service is gone"
R "ls /etc/systemd/system/multi-user.target.wants/masqd.service"
fails "and no longer enabled"
R "ls /usr/sbin/masqd /lib/systemd/system/masqd.service /etc/sysctl.d/99-masqd.conf"
fails "the binary, the unit and the sysctl file are gone"
R "ls $config; cat /proc/sys/net/ipv4/ip_forward"
ok "the config is kept"
has '^1$' "forwarding stays as it is"

# Purge, after installing again (the kept config comes back into use).
R "DEBIAN_FRONTEND=noninteractive apt-get install -y ./$deb_name && systemctl enable --now masqd"
ok "installed and started again"
R "grep -E '^(wan|  - )' $config"
has '^  - 192\.0\.2\.0/24$' "with the kept config"
sleep 1
curl_lan
ok "traffic flows"
R "ls /var/lib/masqd"
has 'masqd\.state' "the state file is there"
R "DEBIAN_FRONTEND=noninteractive apt-get purge -y masqd"
ok "apt-get purge masqd"
R "ls /etc/masqd"
fails "/etc/masqd is gone"
R "ls /var/lib/masqd"
fails "/var/lib/masqd (the saved state) is gone"
masqd_rules
[ -z "$out" ] || fail "masqd rules are left"
pass "the rules are out"

echo
echo "All of README's \"Deploying on a router\" followed: PASS"
