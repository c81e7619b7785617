#!/usr/bin/env python3
"""Where the time goes in the kernel fast path: system-wide perf profiles of an iperf3 run
through masqd --fast-path and, for comparison, through kernel MASQUERADE.

For each mode (and each of TCP and UDP with 64-byte payloads), on Benchmarks/e2e.py's
namespace topology, runs iperf3 for 8 s and records `perf record -a -g` (cpu-clock: this
virtual machine has no hardware counters) for 5 s of it into
/tmp/masqd-perf-<mode>-<tcp|udp>.data, then prints the top symbols of the traffic's own
threads (iperf3, ksoftirqd). Read them further with
  perf report -i /tmp/masqd-perf-masqd-fastpath-tcp.data --comms iperf3 --no-children --sort sym --stdio

usage: sudo Benchmarks/profile-fastpath.py [--masqd .build/release/masqd]
Needs what e2e.py needs, plus perf (Debian: linux-perf), and the BPF object next to masqd
(Deploy/build-bpf.sh). Traffic stays in its namespaces.
"""
import argparse
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import e2e  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--masqd", default=".build/release/masqd")
    parser.add_argument("--top", type=int, default=25, help="symbols to print per profile")
    args = parser.parse_args()
    masqd = os.path.abspath(args.masqd)
    for mode in (e2e.FAST_PATH_MODE, "masquerade"):
        for kind, extra in (("tcp", []), ("udp", ["-u", "-b", "0", "-l", "64"])):
            e2e.build_topology()
            data = f"/tmp/masqd-perf-{mode}-{kind}.data"
            try:
                with e2e.Mode(mode, masqd, None):
                    server = e2e.background(e2e.SERVER, "iperf3", "-s", "-1", "-B", e2e.SERVER_ADDR)
                    time.sleep(0.3)
                    client = subprocess.Popen(["ip", "netns", "exec", e2e.CLIENT, "iperf3", "-c", e2e.SERVER_ADDR, "-t", "8", *extra],
                                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                    time.sleep(1.5)
                    e2e.sh("perf", "record", "-a", "-g", "-e", "cpu-clock", "-o", data, "--", "sleep", "5", timeout=60)
                    client.wait(timeout=30)
                    server.kill()
                    server.wait()
            finally:
                e2e.teardown()
            # Only the traffic's own work: the iperf3 processes and the softirq threads (other
            # programs on the machine are in the recording too).
            report = e2e.sh("perf", "report", "-i", data, "--comms", "iperf3,ksoftirqd/0,ksoftirqd/1", "--no-children",
                            "--sort", "sym", "--stdio", "-g", "none",
                            "--percent-limit", "0.5", timeout=300).stdout
            lines = [line for line in report.splitlines() if line.strip() and not line.startswith("#")]
            print(f"== {mode} {kind}: top symbols ({data})")
            print("\n".join(lines[:args.top]), flush=True)


if __name__ == "__main__":
    if os.geteuid() != 0:
        sys.exit("profile-fastpath: needs root")
    main()
