#!/usr/bin/env python3
"""End-to-end comparison of the paths a packet can take through a Linux router, measured
side by side in one run on one namespace topology (client -> router -> server):

  plain      kernel forwarding, no NAT
  masquerade kernel MASQUERADE (iptables nat table, conntrack)
  nfq_echo   the reference NFQUEUE consumer (../shared/bench/nfq_echo.c): every packet
             returned in its verdict with a completed checksum - the limit of this design
  masqd      masqd translating: `masqd run --queue 7 --wan wan0 --lan 192.0.2.0/24 --control
             PATH`, its rules from `masqd rules install` with the same options
  masqd-plain  masqd exactly as INTERFACE.md deploys it: `masqd run --queue 0 --wan wan0 --lan
             192.0.2.0/24`, then `masqd rules install` with the same (no other option)
  masqd-Nq   with --queues N: masqd with N queues, one worker each, sharing one state; the
             two directions of the one flow hash to different queues (--queue-balance)
  masqd-fastpath  masqd --fast-path: established flows translated by its tc-BPF program
             (needs masqd_fastpath.bpf.o next to the binary: Deploy/build-bpf.sh); run when
             that object exists or when named in --modes
  nfq_echo-rules  (only with --modes) nfq_echo behind masqd's own rule set instead of the two
             bare NFQUEUE rules: what masqd's rules cost, apart from the engine
  masqd-pinned, nfq_echo-pinned  (only with --modes) the packet thread pinned to CPU
             --pin-cpu (masqd --worker-cpus N; nfq_echo under taskset -c N): the same
             placement every round, against the scheduler's choice in the other modes
  masqd-busypoll  (only with --modes) masqd --busy-poll --busy-poll-us: the worker polls
             the queue for that long after each batch instead of sleeping at once

--halt-poll-ns N sets the guest's cpuidle halt polling (/sys/module/haltpoll/parameters/
guest_halt_poll_ns) for the run and puts the old value back at the end: an idle vCPU then
polls up to N ns before it halts, so a packet that wakes it finds it running. A machine
setting for every mode alike, to test whether halted vCPUs are what makes a round slow.

nfq_echo gets two rules (raw PREROUTING from the WAN, mangle POSTROUTING from the LAN to the
WAN); masqd installs its own, which also drop spoofed sources (addrtype), check the LAN
side's reverse path (rpfilter) and queue hairpin candidates: each a match on every packet.
Nothing is pinned to a CPU (but in the -pinned modes) and no priority is changed, as in a plain
deployment.

For each mode, in interleaved rounds (the order reversed every other round, so drift in the
machine's speed does not favour one mode): iperf3 TCP throughput, iperf3 UDP packet rate with
64-byte payloads, and sockperf UDP ping-pong latency with 64-byte messages (p50/p99;
sockperf's "latency" is half the round trip, its own convention, and so are these columns).
Prints medians, the ratios masqd/nfq_echo and masqd/kernel MASQUERADE, each round's latency
difference to nfq_echo, and draws every message's latency as a CDF (SVG, --plot).
For each masqd mode it also prints masqd's own view from `masqd stats` (its latency
histograms' sums and counts): the mean time per packet of the engine's own work, and of
receive to verdict sent (the verdict's send carries the packet through the rest of the
router's kernel path inline, so that one is mostly kernel).

usage: sudo Benchmarks/e2e.py --masqd .build/release/masqd [--rounds 3] [--seconds 5] [--queues 2]
                                [--plot Benchmarks/e2e-latency.svg]
       sudo Benchmarks/e2e.py --masqd .build/release/masqd --modes nfq_echo,masqd,masqd-plain --rtt-only --rounds 8
       (the latency A/B: interleaved rounds, the per-round differences and their median)
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

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import e2e_plot  # noqa: E402

PREFIX = "mqe2e"
CLIENT, ROUTER, SERVER = f"{PREFIX}-c", f"{PREFIX}-r", f"{PREFIX}-s"
CLIENT_ADDR, ROUTER_LAN, ROUTER_WAN, SERVER_ADDR = "192.0.2.10", "192.0.2.1", "203.0.113.1", "203.0.113.2"
QUEUE = 7
LAN = "192.0.2.0/24"
MODES = ["plain", "masquerade", "nfq_echo", "masqd", "masqd-plain"]
FAST_PATH_MODE = "masqd-fastpath"
# Diagnostic modes, run only when --modes names them.
EXTRA_MODES = ["nfq_echo-rules", "nfq_echo-pinned", "masqd-pinned", "masqd-busypoll"]
HALT_POLL = "/sys/module/haltpoll/parameters/guest_halt_poll_ns"


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

    def __init__(self, name, masqd, nfq_echo, args):
        self.name, self.masqd, self.nfq_echo, self.process = name, masqd, nfq_echo, None
        self.pin_cpu, self.busy_poll_us = args.pin_cpu, args.busy_poll_us
        # masqd's own view of the mode's packets (`masqd stats`): mean ns per packet of its
        # own work and of receive to verdict sent; None for the other consumers.
        self.engine_means = None

    def __enter__(self):
        if self.name == "masquerade":
            ns(ROUTER, "iptables", "-w", "-t", "nat", "-A", "POSTROUTING", "-o", "wan0", "-j", "MASQUERADE")
        elif self.name.startswith("nfq_echo"):
            pin = ["taskset", "-c", str(self.pin_cpu)] if self.name == "nfq_echo-pinned" else []
            self.start(*pin, self.nfq_echo, str(QUEUE))
            if self.name == "nfq_echo-rules":
                ns(ROUTER, self.masqd, "rules", "install", *self.masqd_options())
            else:
                steering_rules("-I")
        elif self.name.startswith("masqd"):
            options = self.masqd_options()
            self.start(self.masqd, "run", *options)
            ns(ROUTER, self.masqd, "rules", "install", *options)
        return self

    def start(self, *argv):
        """Starts the consumer in the router and waits until its queue is bound (the kernel's
        queue list, not a control socket: the same wait for every consumer)."""
        self.process = subprocess.Popen(["ip", "netns", "exec", ROUTER, *argv], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        queue = int(self.masqd_queue_options()[1].split("-")[0])
        for _ in range(100):
            if self.process.poll() is not None:
                raise RuntimeError(f"{' '.join(argv)} ended ({self.process.returncode}): {self.process.stderr.read().decode().strip()}")
            if queue in bound_queues():
                return
            time.sleep(0.05)
        raise RuntimeError(f"{' '.join(argv)}: queue {queue} not bound after 5 s")

    def masqd_options(self):
        # The plain deployment: INTERFACE.md's command line and nothing else.
        if self.name == "masqd-plain":
            return ["--queue", "0", "--wan", "wan0", "--lan", LAN]
        pin = ["--worker-cpus", str(self.pin_cpu)] if self.name == "masqd-pinned" else []
        poll = ["--busy-poll", str(self.busy_poll_us)] if self.name == "masqd-busypoll" else []
        return self.masqd_queue_options() + self.masqd_fast_path_options() + pin + poll + ["--wan", "wan0", "--lan", LAN, "--control", self.control_path()]

    def control_path(self):
        # masqd-plain passes no --control: the daemon's default for its queue 0.
        return "/run/masqd/queue-0.sock" if self.name == "masqd-plain" else f"/run/masqd/{PREFIX}.sock"

    def masqd_queue_options(self):
        # "masqd-2q": two queues, two workers sharing one state (--queues).
        if self.name.endswith("q"):
            count = int(self.name[len("masqd-"):-1])
            return ["--queues", f"{QUEUE}-{QUEUE + count - 1}"]
        return ["--queue", "0" if self.name == "masqd-plain" else str(QUEUE)]

    def masqd_fast_path_options(self):
        return ["--fast-path"] if self.name == FAST_PATH_MODE else []

    def __exit__(self, *exc):
        if self.name == "masquerade":
            ns(ROUTER, "iptables", "-w", "-t", "nat", "-F", "POSTROUTING")
            subprocess.run(["ip", "netns", "exec", ROUTER, "conntrack", "-F"], capture_output=True)
        elif self.name in ("nfq_echo", "nfq_echo-pinned"):
            steering_rules("-D")
        elif self.name.startswith("masqd") or self.name == "nfq_echo-rules":
            ns(ROUTER, self.masqd, "rules", "remove", *self.masqd_options())
        if self.name.startswith("masqd"):
            self.engine_means = self.read_engine_means()
        if self.process:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()


    def read_engine_means(self):
        """Mean ns per packet from masqd's histograms: (own work, receive to verdict sent)."""
        r = ns(ROUTER, self.masqd, "stats", "--control", self.control_path(), check=False)
        values = dict(line.split(" ", 1) for line in r.stdout.splitlines() if " " in line)
        def mean(name):
            count = int(values.get(f"{name}_count", "0"))
            return int(values[f"{name}_sum"]) / count if count else float("nan")
        return mean("latency_per_packet_ns"), mean("latency_receive_to_verdict_ns")


def write_halt_poll(value):
    with open(HALT_POLL, "w") as f:
        f.write(str(value))


def bound_queues():
    """The queue numbers bound in the router (/proc/net/netfilter/nfnetlink_queue, first column)."""
    r = ns(ROUTER, "cat", "/proc/net/netfilter/nfnetlink_queue", check=False)
    return {int(line.split()[0]) for line in r.stdout.splitlines() if line.split()}


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


def rtt(seconds, full_log, attempts=2):
    """sockperf ping-pong: p50 and p99 of its summary (half the round trip, µs); every
    message's latency goes to `full_log` for the plot. A client that fails (sockperf now and
    then exits 7 on a loaded machine) is run once more with a new server."""
    for attempt in range(attempts):
        try:
            return rtt_once(seconds, full_log)
        except RuntimeError as failure:
            if attempt == attempts - 1:
                raise
            print(f"  sockperf failed, once more: {failure}", flush=True)


def rtt_once(seconds, full_log):
    server = background(SERVER, "sockperf", "server", "-i", SERVER_ADDR, "-p", "11111")
    time.sleep(0.3)
    try:
        r = ns(CLIENT, "sockperf", "ping-pong", "-i", SERVER_ADDR, "-p", "11111", "-t", str(seconds), "-m", "64",
               "--full-log", full_log, timeout=seconds + 30)
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
    parser.add_argument("--pin-cpu", type=int, default=1, help="the CPU of the -pinned modes' packet thread (default 1)")
    parser.add_argument("--busy-poll-us", type=int, default=200, help="masqd-busypoll's --busy-poll (default 200)")
    parser.add_argument("--halt-poll-ns", type=int,
                        help="set the guest's halt polling (guest_halt_poll_ns) for the run, every mode alike")
    parser.add_argument("--rtt-only", action="store_true", help="measure only the round-trip time (more rounds in the same time)")
    parser.add_argument("--plot", default="/tmp/masqd-e2e-latency.svg",
                        help="the latency CDF of every mode, all rounds' messages (SVG); 'none' for no plot")
    args = parser.parse_args()
    parser_modes = MODES + ([f"masqd-{args.queues}q"] if args.queues > 1 else []) + [FAST_PATH_MODE]
    masqd = os.path.abspath(args.masqd)
    has_object = os.path.exists(os.path.join(os.path.dirname(masqd), "masqd_fastpath.bpf.o"))
    modes = args.modes.split(",") if args.modes else [m for m in parser_modes if m != FAST_PATH_MODE or has_object]
    unknown = [m for m in modes if m not in parser_modes + EXTRA_MODES]
    if unknown:
        sys.exit(f"e2e: --modes {args.modes}: unknown mode(s) {', '.join(unknown)} (known: {', '.join(parser_modes + EXTRA_MODES)})")
    if os.geteuid() != 0:
        sys.exit("e2e: needs root (network namespaces, iptables)")
    nfq_echo = "/tmp/masqd-e2e-nfq_echo"
    sh("gcc", "-O2", args.nfq_echo_source, "-o", nfq_echo, "-lnetfilter_queue", "-lmnl")
    full_log = f"/tmp/masqd-e2e-{os.getpid()}.csv"

    results = {m: {"tcp": [], "udp": [], "p50": [], "p99": []} for m in modes}
    samples = {m: [] for m in modes}
    engine_means = {m: [] for m in modes}
    loads = []
    halt_poll_before = None
    if args.halt_poll_ns is not None:
        if not os.path.exists(HALT_POLL):
            sys.exit(f"e2e: --halt-poll-ns: {HALT_POLL} does not exist (no haltpoll cpuidle driver)")
        halt_poll_before = open(HALT_POLL).read().strip()
        write_halt_poll(args.halt_poll_ns)
        print(f"guest_halt_poll_ns {halt_poll_before} -> {args.halt_poll_ns} for this run", flush=True)
    try:
        for round_number in range(args.rounds):
            loads.append(os.getloadavg()[0])
            print(f"round {round_number + 1}: load average {loads[-1]:.2f} over {os.cpu_count()} CPUs", flush=True)
            # Every other round in reverse order: a mode is not always the one after a flood.
            for mode in (modes if round_number % 2 == 0 else modes[::-1]):
                # A fresh topology per mode: once the nat table has loaded conntrack into the
                # router namespace it would stay, and tax (and defragment for) the other modes.
                build_topology()
                with Mode(mode, masqd, nfq_echo, args) as running:
                    tcp = float("nan") if args.rtt_only else tcp_throughput(args.seconds)
                    udp = float("nan") if args.rtt_only else udp_packet_rate(args.seconds)
                    p50, p99 = rtt(args.seconds, full_log)
                samples[mode] += e2e_plot.read_sockperf_full_log(full_log)
                results[mode]["tcp"].append(tcp)
                results[mode]["udp"].append(udp)
                results[mode]["p50"].append(p50 if p50 is not None else float("nan"))
                results[mode]["p99"].append(p99 if p99 is not None else float("nan"))
                print(f"round {round_number + 1} {mode:14s} tcp {tcp:6.2f} Gbit/s  udp {udp:7.1f} kpps  latency p50 {p50} us p99 {p99} us", flush=True)
                if running.engine_means:
                    own, residence = running.engine_means
                    engine_means[mode].append(running.engine_means)
                    print(f"round {round_number + 1} {mode:14s} masqd's own mean per packet: work {own:.0f} ns, receive to verdict sent {residence:.0f} ns", flush=True)
    finally:
        teardown()
        if halt_poll_before is not None:
            write_halt_poll(halt_poll_before)
        if os.path.exists(full_log):
            os.unlink(full_log)

    med = {m: {k: statistics.median(v) if v else float("nan") for k, v in r.items()} for m, r in results.items()}
    print()
    print(f"medians of {args.rounds} rounds, {args.seconds} s each; load average {', '.join(f'{x:.2f}' for x in loads)} at the rounds' starts")
    print("latency: sockperf ping-pong, 64-byte messages, half the round trip (sockperf's convention)")
    print(f"{'path':14s} {'TCP Gbit/s':>11s} {'UDP 64B kpps':>13s} {'lat p50 us':>11s} {'lat p99 us':>11s}")
    for m in modes:
        r = med[m]
        print(f"{m:14s} {r['tcp']:11.2f} {r['udp']:13.1f} {r['p50']:11.1f} {r['p99']:11.1f}")
    print()
    engines = [m for m in modes if m.startswith("masqd") or m == "nfq_echo-rules"]
    if "nfq_echo" in modes:
        # Rounds are interleaved, so a round's difference cancels most of the machine's drift.
        for m in engines:
            # A pinned engine is compared with the pinned reference when both ran.
            reference = "nfq_echo-pinned" if m == "masqd-pinned" and "nfq_echo-pinned" in modes else "nfq_echo"
            for q in ("p50", "p99"):
                diffs = [a - b for a, b in zip(results[m][q], results[reference][q])]
                print(f"latency {q} {m} - {reference} per round: {', '.join(f'{d:+.1f}' for d in diffs)} us; "
                      f"median {statistics.median(diffs):+.1f} us")
    for m in engines:
        if engine_means[m]:
            own = statistics.median(x[0] for x in engine_means[m])
            residence = statistics.median(x[1] for x in engine_means[m])
            print(f"{m}: masqd's own mean per packet (median of rounds): work {own:.0f} ns, receive to verdict sent {residence:.0f} ns")
    for m in engines:
        for reference in ("nfq_echo", "masquerade"):
            if reference not in modes:
                continue
            a, b = med[m], med[reference]
            print(f"{m}/{reference}: TCP {a['tcp'] / b['tcp']:.2f}  UDP {a['udp'] / b['udp']:.2f}  "
                  f"latency p50 {a['p50'] - b['p50']:+.1f} us  p99 {a['p99'] - b['p99']:+.1f} us")
    for m in [m for m in modes if m.endswith("q") and "masqd" in modes]:
        a, b = med[m], med["masqd"]
        print(f"{m}/masqd: TCP {a['tcp'] / b['tcp']:.2f}  UDP {a['udp'] / b['udp']:.2f}  "
              f"latency p50 {a['p50'] - b['p50']:+.1f} us  p99 {a['p99'] - b['p99']:+.1f} us")
    if args.plot != "none" and any(samples.values()):
        e2e_plot.write_cdf_svg(args.plot, samples,
                               f"sockperf ping-pong, 64 B, through the router: {args.rounds} rounds × {args.seconds} s per path")
        print(f"latency CDF: {args.plot}")


if __name__ == "__main__":
    main()
