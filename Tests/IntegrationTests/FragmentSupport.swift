import Foundation
import Masqd
import MasqdLab
import MasqdShell
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Helpers for FragmentTests (issue #4): a second Python tool next to the lab helper, written
/// into the topology's work directory, with big-datagram UDP echo tools, scapy-crafted
/// fragment sequences (reversed, overlapping) and a raw-socket flood of incomplete datagrams.
enum Frag {
    /// Where the fragment tool lives in a topology.
    static func scriptPath(_ lab: LabTopology) -> String { lab.workDir + "/fragtool.py" }

    /// Writes the tool into the topology (idempotent).
    static func install(_ lab: LabTopology) throws {
        let path = scriptPath(lab)
        if !FileManager.default.fileExists(atPath: path) {
            try source.write(toFile: path, atomically: true, encoding: .utf8)
        }
    }

    /// The command line that runs one of the tool's commands.
    static func tool(_ lab: LabTopology, _ args: [String]) throws -> [String] {
        try install(lab)
        return [LabTopology.python, "-u", scriptPath(lab)] + args
    }

    /// Runs one of the tool's commands in a node and waits for it.
    @discardableResult
    static func run(_ lab: LabTopology, _ node: LabTopology.Node, _ args: [String], timeout: Double = 60) throws -> CommandResult {
        try lab.run(node, try tool(lab, args), timeout: timeout)
    }

    /// Starts one of the tool's commands in the background and waits for "ready" (or, with
    /// `ready: nil`, not at all).
    static func spawn(_ lab: LabTopology, _ node: LabTopology.Node, _ args: [String], name: String,
                      ready: String? = "ready", timeout: Double = 15) throws -> BackgroundProcess {
        let process = try lab.spawn(node, try tool(lab, args), name: name)
        if let ready, !process.waitForOutput(containing: ready, timeout: timeout) {
            process.stop()
            throw IntegrationFailure("\(name) (\(args.joined(separator: " "))) did not start in \(lab.namespace(node)):\n\(process.output)")
        }
        return process
    }

    /// scapy is needed for the crafted-fragment tests: a clear failure if it is missing.
    static func requireScapy() throws {
        let probe = try Shell.run([LabTopology.python, "-c", "import scapy.all"], timeout: 60)
        guard probe.succeeded else {
            throw IntegrationFailure("these tests need scapy for \(LabTopology.python) (apt-get install -y python3-scapy, see Deploy/install-deps.sh):\n\(probe.summary)")
        }
    }

    /// iputils ping (`ping -s SIZE`), as Deploy/install-deps.sh installs it.
    static func requirePing() throws -> String {
        guard let ping = Shell.which("ping") else {
            throw IntegrationFailure("these tests need iputils ping (apt-get install -y iputils-ping)")
        }
        return ping
    }

    /// `ping -c COUNT -s SIZE` from `node`; returns (sent, received) as ping reports them.
    static func ping(_ lab: LabTopology, from node: LabTopology.Node, to destination: String, size: Int,
                     count: Int = 5, interval: String = "0.2") throws -> (sent: Int, received: Int, result: CommandResult) {
        let ping = try requirePing()
        let result = try lab.run(node, [ping, "-n", "-c", String(count), "-s", String(size), "-i", interval, "-W", "2", destination],
                                 timeout: Double(count) * 3 + 10)
        // "5 packets transmitted, 5 received, 0% packet loss, time 805ms"
        var sent = -1, received = -1
        if let line = result.lines.first(where: { $0.contains("packets transmitted") }) {
            let f = line.split(separator: " ")
            if f.count > 3 { sent = Int(f[0]) ?? -1; received = Int(f[3]) ?? -1 }
        }
        return (sent, received, result)
    }

    /// The fragment counters of `masqd stats` (every line starting with "fragments_").
    static func fragmentStats(_ stats: [String: Int]) -> String {
        stats.filter { $0.key.hasPrefix("fragments_") }.sorted { $0.key < $1.key }
            .map { "\($0.key) \($0.value)" }.joined(separator: "\n")
    }

    /// Sum of the fragments_drop_cap_* counters.
    static func capDrops(_ stats: [String: Int]) -> Int {
        stats.filter { $0.key.hasPrefix("fragments_drop_cap_") }.values.reduce(0, +)
    }

    /// Polls `masqd stats` while `process` runs (and `extra` more seconds), returning every sample.
    static func sampleStats(_ lab: LabTopology, _ masqd: String, while process: BackgroundProcess,
                            extra: Double = 0.5, limit: Double = 120) throws -> [[String: Int]] {
        var samples: [[String: Int]] = []
        let start = Date()
        var stoppedAt: Date?
        while Date().timeIntervalSince(start) < limit {
            samples.append(try Semantics.stats(lab, masqd))
            if !process.isRunning {
                if stoppedAt == nil { stoppedAt = Date() }
                if Date().timeIntervalSince(stoppedAt!) >= extra { break }
            }
            usleep(30_000)
        }
        return samples
    }

    /// Checks every sample against the caps: bytes held ≤ bytes max, fragments held ≤ 2048,
    /// datagrams in progress ≤ 1024.
    static func expectWithinCaps(_ samples: [[String: Int]], sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(!samples.isEmpty, "no stats samples", sourceLocation: sourceLocation)
        for (index, s) in samples.enumerated() {
            let held = s["fragments_held"] ?? -1, bytes = s["fragments_bytes_held"] ?? -1
            let max = s["fragments_bytes_max"] ?? -1, datagrams = s["fragments_datagrams_in_progress"] ?? -1
            let ok = held >= 0 && held <= 2048 && bytes >= 0 && max > 0 && bytes <= max && max <= 4 << 20
                && datagrams >= 0 && datagrams <= 1024
            #expect(ok, "sample \(index): fragments_held \(held) (cap 2048), fragments_bytes_held \(bytes) of fragments_bytes_max \(max) (cap 4 MiB), datagrams_in_progress \(datagrams) (cap 1024)",
                    sourceLocation: sourceLocation)
            if !ok { return }
        }
    }

    static let source = #"""
# masqd fragment test tool: big UDP echo, crafted fragments (scapy), incomplete-datagram flood.
import os, socket, struct, sys, time, select, argparse, hashlib, errno

def out(*a):
    print(*a, flush=True)

def pattern(size, seed):
    # Deterministic, non-repeating bytes: a corrupted or shifted piece changes the hash.
    b = bytearray(); i = 0
    while len(b) < size:
        b += hashlib.sha256(b"%d-%d-%d" % (seed, size, i)).digest(); i += 1
    return bytes(b[:size])

def sha(b):
    return hashlib.sha256(b).hexdigest()[:16]

def bigecho(a):
    # Echoes every datagram back unchanged; logs its source, length and hash.
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.setsockopt(socket.SOL_SOCKET, 33, 8 << 20)  # SO_RCVBUFFORCE
    s.bind(("", a.port)); out("ready")
    while True:
        data, peer = s.recvfrom(65535)
        out("got from %s:%d len=%d sha=%s" % (peer[0], peer[1], len(data), sha(data)))
        s.sendto(data, peer)

def bigsend(a):
    # Sends one datagram per size and waits for the identical datagram back.
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.setsockopt(socket.SOL_SOCKET, 33, 8 << 20)
    s.bind(("", a.sport))
    ok = 0; sizes = [int(x) for x in a.sizes.split(",")]
    for size in sizes:
        data = pattern(size, a.seed); good = False
        out("sending len=%d sha=%s" % (size, sha(data)))
        for attempt in range(a.tries):
            s.sendto(data, (a.dst, a.port))
            deadline = time.time() + a.timeout
            while not good:
                left = deadline - time.time()
                if left <= 0 or not select.select([s], [], [], left)[0]: break
                reply, peer = s.recvfrom(65535)
                if reply == data:
                    good = True
                    out("echo len=%d sha=%s from %s:%d attempt=%d" % (len(reply), sha(reply), peer[0], peer[1], attempt + 1))
                else:
                    out("WRONG reply len=%d sha=%s from %s:%d" % (len(reply), sha(reply), peer[0], peer[1]))
            if good: break
        if good: ok += 1
        else: out("no echo for len=%d" % size)
    out("echoed %d of %d" % (ok, len(sizes)))
    sys.exit(0 if ok == len(sizes) else 1)

def listen(a):
    # Prints every UDP datagram on PORT for --wait seconds, then "done".
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, 33, 8 << 20)
    s.bind(("", a.port)); out("ready")
    deadline = time.time() + a.wait
    while True:
        left = deadline - time.time()
        if left <= 0: break
        if select.select([s], [], [], left)[0]:
            data, peer = s.recvfrom(65535)
            out("got from %s:%d len=%d sha=%s" % (peer[0], peer[1], len(data), sha(data)))
    out("done")

def crafted(a):
    # Scapy: one UDP datagram sent as fragments in a chosen order, or overlapping ones.
    from scapy.all import IP, UDP, Raw, fragment, send, conf
    conf.verb = 0
    data = pattern(a.size, a.seed)
    whole = IP(bytes(IP(dst=a.dst, id=a.id) / UDP(sport=a.sport, dport=a.port) / Raw(data)))
    out("datagram len=%d sha=%s udp-checksum=0x%04x" % (len(data), sha(data), whole[UDP].chksum))
    if a.mode == "reversed":
        frags = fragment(whole, fragsize=a.fragsize)
        frags.reverse()
        send(frags)
        out("sent %d fragments in reverse order: %s" % (len(frags), " ".join("%d+%d%s" % (f.frag * 8, len(f.payload), "MF" if f.flags.MF else "") for f in frags)))
        return
    # overlap: L4 bytes cut by hand; two datagrams, each with a piece that overlaps another
    # piece with different bytes. Neither may be delivered.
    l4 = bytes(whole[UDP]); n = len(l4); step = a.fragsize
    assert n > 2 * step + 8 and step % 8 == 0 and step >= 512
    def frag(ident, off, body, more):
        return IP(dst=a.dst, id=ident, proto=17, flags="MF" if more else 0, frag=off // 8) / Raw(body)
    junk = lambda k: bytes([0x41 + (k % 26)]) * k
    f0 = lambda i: frag(i, 0, l4[:step], True)
    f1 = lambda i: frag(i, step, l4[step:2 * step], True)
    f2 = lambda i: frag(i, 2 * step, l4[2 * step:], False)
    # A: first piece, then one overlapping its second half with other bytes, then the rest.
    a_id = a.id
    seqA = [f0(a_id), frag(a_id, step // 2, junk(step), True), f1(a_id), f2(a_id)]
    # B: the tail first, then a first piece that reaches into the second piece, then the true first.
    b_id = (a.id + 1) & 0xffff
    bad_first = l4[:8] + junk(step + step // 2 - 8)
    seqB = [f2(b_id), f1(b_id), frag(b_id, 0, bad_first, True), f0(b_id)]
    for p in seqA + seqB:
        send(p); time.sleep(0.01)
    out("sent overlapping datagrams id=%d and id=%d (%d fragments)" % (a_id, b_id, len(seqA) + len(seqB)))

def flood(a):
    # Raw IP (IP_HDRINCL): COUNT datagrams of which only the first --frags pieces (of --size
    # bytes each, never the last piece) are sent, round by round: every datagram's first
    # piece, then every second piece, ... Sources rotate through --sources (a /24's hosts) or --src.
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
    if a.sources:
        base = a.sources.split("/")[0].rsplit(".", 1)[0]
        srcs = ["%s.%d" % (base, h) for h in range(1, 255)]
    else:
        srcs = [a.src]
    srcs = [socket.inet_aton(x) for x in srcs]
    dst = socket.inet_aton(a.dst)
    assert a.size % 8 == 0
    out("ready flooding %d datagrams x %d fragments of %d bytes from %d sources" % (a.count, a.frags, a.size, len(srcs)))
    sent = 0
    claimed = a.size * (a.frags + 2)
    for r in range(a.frags):
        for i in range(a.count):
            ident = 1 + (a.idbase + i) % 65535
            src = srcs[i % len(srcs)]
            if r == 0:
                body = struct.pack("!HHHH", 40000 + i % 1000, a.port, claimed, 0) + b"F" * (a.size - 8)
            else:
                body = b"G" * a.size
            off = r * a.size
            hdr = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(body), ident, 0x2000 | (off // 8), 64, 17, 0, src, dst)
            while True:
                try:
                    s.sendto(hdr + body, (a.dst, 0)); sent += 1; break
                except OSError as e:
                    if e.errno in (errno.ENOBUFS, errno.EAGAIN): time.sleep(0.001); continue
                    raise
            if a.pace and sent % a.pace == 0: time.sleep(0.001)
    out("flood sent %d fragments" % sent)
    if a.hold: time.sleep(a.hold)

p = argparse.ArgumentParser(); sub = p.add_subparsers(dest="cmd", required=True)
x = sub.add_parser("bigecho"); x.add_argument("port", type=int); x.set_defaults(f=bigecho)
x = sub.add_parser("bigsend"); x.add_argument("dst"); x.add_argument("port", type=int); x.add_argument("--sport", type=int, default=0)
x.add_argument("--sizes", default="1600"); x.add_argument("--seed", type=int, default=1)
x.add_argument("--timeout", type=float, default=3); x.add_argument("--tries", type=int, default=1); x.set_defaults(f=bigsend)
x = sub.add_parser("listen"); x.add_argument("port", type=int); x.add_argument("--wait", type=float, default=3); x.set_defaults(f=listen)
x = sub.add_parser("crafted"); x.add_argument("mode", choices=["reversed", "overlap"]); x.add_argument("dst"); x.add_argument("port", type=int)
x.add_argument("--sport", type=int, default=43000); x.add_argument("--size", type=int, default=3000); x.add_argument("--seed", type=int, default=7)
x.add_argument("--id", type=int, default=4321); x.add_argument("--fragsize", type=int, default=1000); x.set_defaults(f=crafted)
x = sub.add_parser("flood"); x.add_argument("dst"); x.add_argument("port", type=int); x.add_argument("--count", type=int, default=5000)
x.add_argument("--frags", type=int, default=1); x.add_argument("--size", type=int, default=1480); x.add_argument("--src", default="0.0.0.0")
x.add_argument("--sources", default=""); x.add_argument("--idbase", type=int, default=0); x.add_argument("--pace", type=int, default=200)
x.add_argument("--hold", type=float, default=0); x.set_defaults(f=flood)
a = p.parse_args()
try: a.f(a)
except KeyboardInterrupt: pass
"""#
}
