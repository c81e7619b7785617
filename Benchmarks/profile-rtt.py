#!/usr/bin/env python3
"""Where the time goes in a ping-pong through the router: perf profiles of nfq_echo and masqd.

For each of nfq_echo and masqd, on Benchmarks/e2e.py's namespace topology, runs sockperf
ping-pong for 8 s and records `perf record -F 4999 -g` of the consumer for 5 s of it into
/tmp/masqd-perf-<mode>.data. Read them with e.g.
  perf report -i /tmp/masqd-perf-masqd.data --no-children --sort dso --stdio
  perf report -i /tmp/masqd-perf-masqd.data --no-children --dso masqd --sort sym --stdio

usage: sudo Benchmarks/profile-rtt.py [--masqd .build/release/masqd]
Needs what e2e.py needs, plus perf (Debian: linux-perf). Traffic stays in its namespaces.
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
    args = parser.parse_args()
    masqd = os.path.abspath(args.masqd)
    nfq_echo = "/tmp/masqd-e2e-nfq_echo"
    e2e.sh("gcc", "-O2", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared", "bench", "nfq_echo.c"),
           "-o", nfq_echo, "-lnetfilter_queue", "-lmnl")
    for mode in ("nfq_echo", "masqd"):
        e2e.build_topology()
        try:
            with e2e.Mode(mode, masqd, nfq_echo) as running:
                server = e2e.background(e2e.SERVER, "sockperf", "server", "-i", e2e.SERVER_ADDR, "-p", "11111")
                time.sleep(0.5)
                client = subprocess.Popen(["ip", "netns", "exec", e2e.CLIENT, "sockperf", "ping-pong", "-i", e2e.SERVER_ADDR,
                                           "-p", "11111", "-t", "8", "-m", "64"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                time.sleep(1.5)
                # `ip netns exec` execs the consumer: its pid is the consumer's.
                subprocess.run(["perf", "record", "-q", "-F", "4999", "-g", "-o", f"/tmp/masqd-perf-{mode}.data",
                                "-p", str(running.process.pid), "--", "sleep", "5"], check=True)
                client.wait()
                server.terminate()
            print(f"{mode}: /tmp/masqd-perf-{mode}.data")
        finally:
            e2e.teardown()


if __name__ == "__main__":
    main()
