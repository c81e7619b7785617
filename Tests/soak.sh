#!/usr/bin/env bash
# Soak test: the lab topology (two LAN hosts, a router running masqd, a server; the same
# addresses as `masqd lab`) under a steady mix of traffic for SECONDS, sampling masqd's
# memory and counters into a CSV, then PASS or FAIL.
#
#   Tests/soak.sh [SECONDS]                       (default 600)
#
# Traffic, all at once, until the time is up:
#   h1: an HTTP download of 4 MiB, again and again          (TCP bulk)
#   h1: ping the server 5 times a second                    (ICMP echo, one long flow)
#   h1: ping -s 3000 twice a second                         (fragmented both ways: reassembly)
#   h2: 20 UDP request/replies a second, each from a new port (a new flow each time)
#   h2: 20 short TCP connections a second                   (open, one line, close)
# Every SAMPLE_SECONDS the sampler writes a CSV row: seconds, masqd's VmRSS (KiB), flows,
# mappings, packets, fragments reassembled, the kernel queue's own drops, and every drop
# counter of `masqd stats` (drop_*, fragments_drop_*).
#
# PASS when, after the warm-up (a fifth of the run, at least 20 s):
#   - memory is flat: the highest VmRSS stays within RSS_GROWTH_KIB (default 2048) of VmRSS
#     at the end of the warm-up (every table is allocated at start; traffic that repeats
#     itself must not make masqd grow);
#   - no unexplained drops: every drop counter stays 0 except the explained ones below, and
#     the kernel dropped nothing in the queue (queue_dropped, user_dropped);
#   - every request of the traffic mix succeeded (per kind: ok and failed counts);
#   - masqd ran throughout and stopped on SIGTERM with status 0.
# Explained drops: drop_icmp_unsupported — a LAN host's port unreachable about a UDP reply
# that came after its client gave up and closed the socket (timeouts in the mix): an ICMP
# error about no live session is dropped outbound by design.
#
# Environment: MASQD (binary to test; default: built with `swift build -c release` into
# .build-soak), SOAK_DIR (output: soak.csv, summary.txt, logs; default /tmp/masqd-soak-PID),
# SOAK_PREFIX (namespace prefix, default soak), SAMPLE_SECONDS (5), RSS_GROWTH_KIB (2048).
# Needs root, iproute2, iptables, python3, curl and ping. Not in CI (it is a long run).
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${1:-600}
SAMPLE=${SAMPLE_SECONDS:-5}
GROWTH_KIB=${RSS_GROWTH_KIB:-2048}
P=${SOAK_PREFIX:-soak}
DIR=${SOAK_DIR:-/tmp/masqd-soak-$$}
QUEUE=60
EXPLAINED="drop_icmp_unsupported"
PY=/usr/bin/python3
SERVER=203.0.113.2
WAN=203.0.113.1

if [ "$(id -u)" -ne 0 ]; then echo "soak: needs root (namespaces, iptables)" >&2; exit 1; fi
for tool in ip iptables curl ping "$PY"; do
  command -v "$tool" >/dev/null || { echo "soak: missing $tool (Deploy/install-deps.sh)" >&2; exit 1; }
done
if [ -z "${MASQD:-}" ]; then
  echo "== building masqd (release) in .build-soak"
  swift build -c release --product masqd --scratch-path .build-soak
  MASQD=$(swift build -c release --product masqd --scratch-path .build-soak --show-bin-path)/masqd
fi
MASQD=$(readlink -f "$MASQD")
mkdir -p "$DIR"
echo "== soak for ${DURATION}s with $MASQD; output in $DIR"

ns() { ip netns exec "$P-$1" "${@:2}"; }
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for n in r h1 h2 s; do
    if [ -e "/run/netns/$P-$n" ]; then
      for pid in $(ip netns pids "$P-$n" 2>/dev/null); do kill -9 "$pid" 2>/dev/null || true; done
      ip netns del "$P-$n" 2>/dev/null || true
    fi
  done
}
trap cleanup EXIT

# --- the topology (as LabTopology) ---
cleanup
for n in r h1 h2 s; do ip netns add "$P-$n"; ip -n "$P-$n" link set lo up; done
ip -n "$P-r" link add br0 type bridge
ip -n "$P-r" addr add 192.0.2.1/24 dev br0
ip -n "$P-r" link set br0 up
for i in 1 2; do
  ip -n "$P-r" link add "lan$i" mtu 1500 type veth peer name eth0 mtu 1500 netns "$P-h$i"
  ip -n "$P-r" link set "lan$i" master br0 up
  ip -n "$P-h$i" addr add "192.0.2.1$((i - 1))/24" dev eth0
  ip -n "$P-h$i" link set eth0 up
  ip -n "$P-h$i" route add default via 192.0.2.1
done
ip -n "$P-r" link add wan0 mtu 1500 type veth peer name eth0 mtu 1500 netns "$P-s"
ip -n "$P-r" addr add $WAN/24 dev wan0
ip -n "$P-r" link set wan0 up
ip -n "$P-s" addr add $SERVER/24 dev eth0
ip -n "$P-s" link set eth0 up
ns r sysctl -qw net.ipv4.ip_forward=1

# --- masqd ---
OPTS=(--queue $QUEUE --wan wan0 --lan 192.0.2.0/24)
CONTROL=$DIR/control.sock
ns r "$MASQD" rules install "${OPTS[@]}"
# Not through ns(): $! must be masqd itself (ip netns exec execs it), for its VmRSS.
ip netns exec "$P-r" "$MASQD" run "${OPTS[@]}" --control "$CONTROL" >"$DIR/masqd.log" 2>&1 &
ENGINE=$!
PIDS+=("$ENGINE")
for _ in $(seq 100); do ns r "$MASQD" stats --control "$CONTROL" >/dev/null 2>&1 && break; sleep 0.1; done
ns r "$MASQD" stats --control "$CONTROL" >/dev/null || { echo "soak: masqd did not start:"; cat "$DIR/masqd.log"; exit 1; }

# --- servers ---
mkdir -p "$DIR/www"
head -c $((4 << 20)) /dev/urandom >"$DIR/www/file.bin"
SHA=$(sha256sum "$DIR/www/file.bin" | cut -c1-64)
ns s "$PY" -m http.server 8080 --bind $SERVER --directory "$DIR/www" >"$DIR/http.log" 2>&1 &
PIDS+=($!)
ns s "$PY" -c '
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("0.0.0.0", 9999))
while True:
    d, a = s.recvfrom(2048); s.sendto(b"echo " + d, a)' >"$DIR/udpecho.log" 2>&1 &
PIDS+=($!)
ns s "$PY" -c '
import socket
t = socket.socket(); t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
t.bind(("0.0.0.0", 7000)); t.listen(128)
while True:
    c, _ = t.accept(); c.sendall(b"ok\n"); c.close()' >"$DIR/tcpserver.log" 2>&1 &
PIDS+=($!)
sleep 1

# --- traffic: each kind appends "ok" or "fail" lines to DIR/KIND.result ---
END=$(($(date +%s) + DURATION))
(
  while [ "$(date +%s)" -lt $END ]; do
    got=$(ns h1 curl -sS --max-time 30 http://$SERVER:8080/file.bin 2>>"$DIR/http.err" | sha256sum | cut -c1-64)
    if [ "$got" = "$SHA" ]; then echo ok; else echo fail; fi
  done >"$DIR/http.result"
) &
PIDS+=($!)
(
  while [ "$(date +%s)" -lt $END ]; do
    if ns h1 ping -q -c 5 -i 0.2 -W 2 $SERVER >/dev/null 2>&1; then echo ok; else echo fail; fi
  done >"$DIR/ping.result"
) &
PIDS+=($!)
(
  while [ "$(date +%s)" -lt $END ]; do
    if ns h1 ping -q -c 2 -i 0.5 -W 2 -s 3000 $SERVER >/dev/null 2>&1; then echo ok; else echo fail; fi
  done >"$DIR/fragping.result"
) &
PIDS+=($!)
ns h2 "$PY" -c '
import socket, time, sys
end = int(sys.argv[1])
while time.time() < end:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(2)
    try:
        s.sendto(b"soak", ("'$SERVER'", 9999)); ok = s.recv(100) == b"echo soak"
    except OSError:
        ok = False
    s.close(); print("ok" if ok else "fail", flush=True); time.sleep(0.05)' $END >"$DIR/udp.result" 2>&1 &
PIDS+=($!)
ns h2 "$PY" -c '
import socket, time, sys
end = int(sys.argv[1])
while time.time() < end:
    try:
        c = socket.create_connection(("'$SERVER'", 7000), timeout=3); ok = c.recv(10) == b"ok\n"; c.close()
    except OSError:
        ok = False
    print("ok" if ok else "fail", flush=True); time.sleep(0.05)' $END >"$DIR/tcpshort.result" 2>&1 &
PIDS+=($!)

# --- sampler ---
CSV=$DIR/soak.csv
START=$(date +%s)
stats() { ns r "$MASQD" stats --control "$CONTROL"; }
DROPS=$(stats | awk '$1 ~ /^(drop_|fragments_drop_)/ {print $1}' | tr '\n' ' ')
echo "t_s,rss_kib,flows_active,mappings_active,packets_received,fragments_reassembled,queue_dropped,user_dropped,${DROPS// /,}" | sed 's/,$//' >"$CSV"
while :; do
  now=$(date +%s)
  t=$((now - START))
  kill -0 "$ENGINE" 2>/dev/null || { echo "soak: masqd died at ${t}s" | tee -a "$DIR/summary.txt"; break; }
  rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$ENGINE/status")
  s=$(stats)
  q=$(ns r cat /proc/net/netfilter/nfnetlink_queue | awk -v q=$QUEUE '$1 == q {print $6 "," $7}')
  row="$t,$rss"
  for name in flows_active mappings_active packets_received fragments_datagrams_reassembled; do
    row="$row,$(echo "$s" | awk -v n=$name '$1 == n {print $2}')"
  done
  row="$row,${q:-0,0}"
  for name in $DROPS; do row="$row,$(echo "$s" | awk -v n="$name" '$1 == n {print $2}')"; done
  echo "$row" >>"$CSV"
  [ "$now" -ge "$END" ] && break
  sleep "$SAMPLE"
done

# --- verdict ---
sleep 3 # the last requests finish (each kind checks the clock before starting one)
# masqd must also stop cleanly on SIGTERM, every verdict given.
stopped=1
if kill -0 "$ENGINE" 2>/dev/null; then
  kill -TERM "$ENGINE"
  for _ in $(seq 50); do kill -0 "$ENGINE" 2>/dev/null || break; sleep 0.1; done
  if ! kill -0 "$ENGINE" 2>/dev/null && wait "$ENGINE"; then stopped=0; fi
fi
WARM=$((DURATION / 5)); [ $WARM -lt 20 ] && WARM=20
{
  echo "soak ${DURATION}s, warm-up ${WARM}s, samples every ${SAMPLE}s: $CSV"
  awk -F, -v warm=$WARM -v limit="$GROWTH_KIB" -v explained="$EXPLAINED" '
    NR == 1 { columns = NF; for (i = 1; i <= NF; i++) name[i] = $i; next }
    { for (i = 1; i <= NF; i++) final[i] = $i }
    $1 <= warm { base = $2 }
    $1 > warm && $2 > peak { peak = $2 }
    END {
      fail = 0
      if (base == "" || peak == "") { print "FAIL memory: not enough samples after the warm-up"; fail = 1 }
      else {
        growth = peak - base
        printf "%s memory: VmRSS %d KiB at the end of the warm-up, highest after it %d KiB (growth %d KiB, limit %d)\n", (growth <= limit ? "ok  " : "FAIL"), base, peak, growth, limit
        if (growth > limit) fail = 1
      }
      for (i = 7; i <= columns; i++) {
        if (final[i] + 0 == 0) continue
        ok = (index(" " explained " ", " " name[i] " ") > 0)
        printf "%s %s = %s%s\n", (ok ? "ok  " : "FAIL"), name[i], final[i], (ok ? " (explained)" : " (unexplained)")
        if (!ok) fail = 1
      }
      printf "     flows %s, mappings %s, packets %s, fragmented datagrams reassembled %s\n", final[3], final[4], final[5], final[6]
      exit fail
    }' "$CSV" && mem_drops=0 || mem_drops=1
  traffic=0
  for kind in http ping fragping udp tcpshort; do
    ok=$(grep -c '^ok$' "$DIR/$kind.result" || true)
    bad=$(grep -vc '^ok$' "$DIR/$kind.result" || true)
    if [ "$bad" -eq 0 ] && [ "$ok" -gt 0 ]; then echo "ok   $kind: $ok ok"; else echo "FAIL $kind: $ok ok, $bad failed"; traffic=1; fi
  done
  if [ $stopped -eq 0 ]; then echo "ok   masqd ran to the end and stopped on SIGTERM with status 0"; else echo "FAIL masqd died, or did not stop cleanly on SIGTERM within 5 s (see $DIR/masqd.log)"; fi
  if [ $mem_drops -eq 0 ] && [ $traffic -eq 0 ] && [ $stopped -eq 0 ]; then echo PASS; else echo FAIL; fi
} | tee -a "$DIR/summary.txt"
grep -qx PASS "$DIR/summary.txt"
