#!/usr/bin/env python3
"""End-to-end comparison of the paths a packet can take through a Linux router, measured
side by side in one run on one namespace topology (client -> router -> server):

  plain      kernel forwarding, no NAT
  masquerade kernel MASQUERADE (iptables nat table, conntrack)
  nfq_echo   the reference NFQUEUE consumer (../shared/bench/nfq_echo.c): every packet
             returned in its verdict with a completed checksum - the limit of this design
  masqd      masqd translating (same iptables steering rules as nfq_echo)
  masqd-Nq   with --queues N: masqd with N queues, one worker each, sharing one state; the
             two directions of the one flow hash to different queues (--queue-balance)
  masqd-fastpath  masqd --fast-path: established flows translated by its tc-BPF program
             (needs masqd_fastpath.bpf.o next to the binary: Deploy/build-bpf.sh); run when
             that object exists or when named in --modes

For each mode, in interleaved rounds: iperf3 TCP throughput, iperf3 UDP packet rate with
64-byte payloads, and sockperf UDP ping-pong round-trip latency (p50/p99). Prints medians
and the ratios masqd/nfq_echo and masqd/kernel MASQUERADE.

usage: sudo Benchmarks/e2e.py --masqd .build/release/masqd [--rounds 3] [--seconds 5] [--queues 2]
       sudo Benchmarks/e2e.py --masqd .build/release/masqd --modes nfq_echo,masqd --rtt-only --rounds 8
       (the RTT A/B: interleaved rounds, the per-round differences and their median)
Needs: iproute2, iptables, iperf3, sockperf, gcc, libnetfilter-queue-dev (Deploy/install-deps.sh
installs all but iperf3 and sockperf: apt-get install iperf3 sockperf).
Traffic stays inside the namespaces this script creates (TEST-NET addresses only).
"""
import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import time

PREFIX = "mqe2e"
CLIENT, ROUTER, SERVER = f"{PREFIX}-c", f"{PREFIX}-r", f"{PREFIX}-s"
CLIENT_ADDR, ROUTER_LAN, ROUTER_WAN, SERVER_ADDR = "192.0.2.10", "192.0.2.1", "203.0.113.1", "203.0.113.2"
QUEUE = 7
MODES = ["plain", "masquerade", "nfq_echo", "masqd"]
FAST_PATH_MODE = "masqd-fastpath"


def sh(*argv, check=True, capture=True, timeout=120):
    r = subprocess.run(argv, capture_output=capture, text=True, timeout=timeout)
    if check and r.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({r.returncode}): {r.stderr.strip()}")
    return r


def ns(name, *argv, **kw):
    return sh("ip", "netns", "exec", name, *argv, **kw)


def teardown():
    for n in (CLIENT, ROUTER, SERVER):
        subprocess.run(["ip", "netns", "del", n], capture_output=True)


def build_topology():
    teardown()
    for n in (CLIENT, ROUTER, SERVER):
        sh("ip", "netns", "add", n)
        sh("ip", "-n", n, "link", "set", "lo", "up")
    # Same MTU on both ends of each veth (KERNEL-FACTS fact 7).
    sh("ip", "link", "add", f"{PREFIX}a", "netns", CLIENT, "type", "veth", "peer", "name", "lan0", "netns", ROUTER)
    sh("ip", "link", "add", f"{PREFIX}b", "netns", SERVER, "type", "veth", "peer", "name", "wan0", "netns", ROUTER)
    sh("ip", "-n", CLIENT, "link", "set", f"{PREFIX}a", "name", "eth0")
    sh("ip", "-n", SERVER, "link", "set", f"{PREFIX}b", "name", "eth0")
    sh("ip", "-n", CLIENT, "addr", "add", f"{CLIENT_ADDR}/24", "dev", "eth0")
    sh("ip", "-n", ROUTER, "addr", "add", f"{ROUTER_LAN}/24", "dev", "lan0")
    sh("ip", "-n", ROUTER, "addr", "add", f"{ROUTER_WAN}/24", "dev", "wan0")
    sh("ip", "-n", SERVER, "addr", "add", f"{SERVER_ADDR}/24", "dev", "eth0")
    for n, dev in ((CLIENT, "eth0"), (ROUTER, "lan0"), (ROUTER, "wan0"), (SERVER, "eth0")):
        sh("ip", "-n", n, "link", "set", dev, "up")
    sh("ip", "-n", CLIENT, "route", "add", "default", "via", ROUTER_LAN)
    # The server can reach the LAN directly: needed by the modes that do not translate.
    sh("ip", "-n", SERVER, "route", "add", "192.0.2.0/24", "via", ROUTER_WAN)
    ns(ROUTER, "sysctl", "-qw", "net.ipv4.ip_forward=1")


def steering_rules(action):
    for table, chain, spec in (("raw", "PREROUTING", ["-i", "wan0"]),
                               ("mangle", "POSTROUTING", ["-o", "wan0", "-s", "192.0.2.0/24"])):
        ns(ROUTER, "iptables", "-w", "-t", table, action, chain, *spec, "-j", "NFQUEUE", "--queue-num", str(QUEUE))


class Mode:
    """Sets a forwarding mode up in the router namespace and takes it down again."""

    def __init__(self, name, masqd, nfq_echo):
        self.name, self.masqd, self.nfq_echo, self.process = name, masqd, nfq_echo, None

    def __enter__(self):
        if self.name == "masquerade":
            ns(ROUTER, "iptables", "-w", "-t", "nat", "-A", "POSTROUTING", "-o", "wan0", "-j", "MASQUERADE")
        elif self.name == "nfq_echo":
            self.process = subprocess.Popen(["ip", "netns", "exec", ROUTER, self.nfq_echo, str(QUEUE)],
                                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            time.sleep(0.5)
            steering_rules("-I")
        elif self.name.startswith("masqd"):
            options = self.masqd_queue_options() + self.masqd_fast_path_options() + ["--wan", "wan0", "--lan", "192.0.2.0/24", "--control", f"/run/masqd/{PREFIX}.sock"]
            self.process = subprocess.Popen(["ip", "netns", "exec", ROUTER, self.masqd, "run", *options],
                                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            for _ in range(100):
                if subprocess.run([self.masqd, "stats", "--control", f"/run/masqd/{PREFIX}.sock"], capture_output=True).returncode == 0:
                    break
                time.sleep(0.1)
            ns(ROUTER, self.masqd, "rules", "install", *options)
        return self

    def masqd_queue_options(self):
        # "masqd-2q": two queues, two workers sharing one state (--queues).
        if self.name.endswith("q"):
            count = int(self.name[len("masqd-"):-1])
            return ["--queues", f"{QUEUE}-{QUEUE + count - 1}"]
        return ["--queue", str(QUEUE)]

    def masqd_fast_path_options(self):
        return ["--fast-path"] if self.name == FAST_PATH_MODE else []

    def __exit__(self, *exc):
        if self.name == "masquerade":
            ns(ROUTER, "iptables", "-w", "-t", "nat", "-F", "POSTROUTING")
            subprocess.run(["ip", "netns", "exec", ROUTER, "conntrack", "-F"], capture_output=True)
        elif self.name == "nfq_echo":
            steering_rules("-D")
        elif self.name.startswith("masqd"):
            ns(ROUTER, self.masqd, "rules", "remove", *self.masqd_queue_options(), "--wan", "wan0", "--lan", "192.0.2.0/24")
        if self.process:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()


def background(namespace, *argv):
    return subprocess.Popen(["ip", "netns", "exec", namespace, *argv], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def tcp_throughput(seconds):
    server = background(SERVER, "iperf3", "-s", "-1", "-B", SERVER_ADDR)
    time.sleep(0.3)
    try:
        r = ns(CLIENT, "iperf3", "-c", SERVER_ADDR, "-t", str(seconds), "-J", timeout=seconds + 30)
        data = json.loads(r.stdout)
        return data["end"]["sum_received"]["bits_per_second"] / 1e9
    finally:
        server.kill()
        server.wait()


def udp_packet_rate(seconds):
    server = background(SERVER, "iperf3", "-s", "-1", "-B", SERVER_ADDR)
    time.sleep(0.3)
    try:
        r = ns(CLIENT, "iperf3", "-c", SERVER_ADDR, "-u", "-b", "0", "-l", "64", "-t", str(seconds), "-J", timeout=seconds + 30)
        data = json.loads(r.stdout)
        s = data["end"]["sum"]
        received = s["packets"] - s["lost_packets"]
        return received / s["seconds"] / 1e3
    finally:
        server.kill()
        server.wait()


def rtt(seconds):
    server = background(SERVER, "sockperf", "server", "-i", SERVER_ADDR, "-p", "11111")
    time.sleep(0.3)
    try:
        r = ns(CLIENT, "sockperf", "ping-pong", "-i", SERVER_ADDR, "-p", "11111", "-t", str(seconds), "-m", "64", timeout=seconds + 30)
        percentiles = {}
        for line in r.stdout.splitlines():
            if "percentile" in line and "=" in line:
                label = line.split("percentile")[1].split("=")[0].strip()
                percentiles[label] = float(line.split("=")[1].strip())
        return percentiles.get("50.000"), percentiles.get("99.000")
    finally:
        server.kill()
        server.wait()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--masqd", required=True, help="path to the masqd binary (a release build)")
    parser.add_argument("--nfq-echo-source", default=os.path.join(os.path.dirname(__file__), "..", "..", "shared", "bench", "nfq_echo.c"))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--queues", type=int, default=1,
                        help="also run masqd with this many queues/workers (mode masqd-Nq), for the scaling numbers")
    parser.add_argument("--modes", help="comma-separated subset of the modes, e.g. nfq_echo,masqd (an RTT A/B)")
    parser.add_argument("--rtt-only", action="store_true", help="measure only the round-trip time (more rounds in the same time)")
    args = parser.parse_args()
    parser_modes = MODES + ([f"masqd-{args.queues}q"] if args.queues > 1 else []) + [FAST_PATH_MODE]
    masqd = os.path.abspath(args.masqd)
    has_object = os.path.exists(os.path.join(os.path.dirname(masqd), "masqd_fastpath.bpf.o"))
    modes = args.modes.split(",") if args.modes else [m for m in parser_modes if m != FAST_PATH_MODE or has_object]
    unknown = [m for m in modes if m not in parser_modes]
    if unknown:
        sys.exit(f"e2e: --modes {args.modes}: unknown mode(s) {', '.join(unknown)} (known: {', '.join(parser_modes)})")
    if os.geteuid() != 0:
        sys.exit("e2e: needs root (network namespaces, iptables)")
    nfq_echo = "/tmp/masqd-e2e-nfq_echo"
    sh("gcc", "-O2", args.nfq_echo_source, "-o", nfq_echo, "-lnetfilter_queue", "-lmnl")

    results = {m: {"tcp": [], "udp": [], "p50": [], "p99": []} for m in modes}
    try:
        for round_number in range(args.rounds):
            for mode in modes:
                # A fresh topology per mode: once the nat table has loaded conntrack into the
                # router namespace it would stay, and tax (and defragment for) the other modes.
                build_topology()
                with Mode(mode, masqd, nfq_echo):
                    tcp = float("nan") if args.rtt_only else tcp_throughput(args.seconds)
                    udp = float("nan") if args.rtt_only else udp_packet_rate(args.seconds)
                    p50, p99 = rtt(args.seconds)
                results[mode]["tcp"].append(tcp)
                results[mode]["udp"].append(udp)
                if p50 is not None:
                    results[mode]["p50"].append(p50)
                    results[mode]["p99"].append(p99)
                print(f"round {round_number + 1} {mode:10s} tcp {tcp:6.2f} Gbit/s  udp {udp:7.1f} kpps  rtt p50 {p50} us p99 {p99} us", flush=True)
    finally:
        teardown()

    med = {m: {k: (statistics.median(v) if v else float("nan")) for k, v in r.items()} for m, r in results.items()}
    print()
    print(f"medians of {args.rounds} rounds, {args.seconds} s each")
    print(f"{'path':12s} {'TCP Gbit/s':>11s} {'UDP 64B kpps':>13s} {'RTT p50 us':>11s} {'RTT p99 us':>11s}")
    for m in modes:
        r = med[m]
        print(f"{m:12s} {r['tcp']:11.2f} {r['udp']:13.1f} {r['p50']:11.1f} {r['p99']:11.1f}")
    print()
    if "masqd" in modes and "nfq_echo" in modes and len(results["masqd"]["p50"]) == len(results["nfq_echo"]["p50"]):
        # Rounds are interleaved, so a round's difference cancels most of the machine's drift.
        diffs = [m - n for m, n in zip(results["masqd"]["p50"], results["nfq_echo"]["p50"])]
        print(f"RTT p50 masqd - nfq_echo per round: {', '.join(f'{d:+.1f}' for d in diffs)} us; median {statistics.median(diffs):+.1f} us")
    for subject, reference in (("masqd", "nfq_echo"), ("masqd", "masquerade"), (FAST_PATH_MODE, "masquerade")):
        if subject not in modes or reference not in modes:
            continue
        a, b = med[subject], med[reference]
        print(f"{subject}/{reference}: TCP {a['tcp'] / b['tcp']:.2f}  UDP {a['udp'] / b['udp']:.2f}  "
              f"RTT p50 {a['p50'] - b['p50']:+.1f} us  p99 {a['p99'] - b['p99']:+.1f} us")
    for m in [m for m in modes if m not in MODES and m != FAST_PATH_MODE and "masqd" in modes]:
        a, b = med[m], med["masqd"]
        print(f"{m}/masqd: TCP {a['tcp'] / b['tcp']:.2f}  UDP {a['udp'] / b['udp']:.2f}  "
              f"RTT p50 {a['p50'] - b['p50']:+.1f} us  p99 {a['p99'] - b['p99']:+.1f} us")


if __name__ == "__main__":
    main()
