import Foundation
import Masqd
import MasqdLab
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// A paced packet flooder for ExhaustionTests: plain Python with a raw socket (IP_HDRINCL),
/// so it sends tens of thousands of crafted packets per second where scapy manages a few
/// thousand. Sources, ports and destinations are drawn per packet as the kind says.
enum Flood {
    enum Kind: String {
        /// TCP SYNs from random addresses in SRC_PREFIX/24 and random ports to DST:DPORT.
        case synFromManySources = "syn-many-sources"
        /// TCP SYNs from SRC, random source ports, to DST and random destination ports.
        case synToManyPorts = "syn-many-ports"
        /// UDP from SRC:SPORT to DST and consecutive destination ports (a port scan).
        case udpScan = "udp-scan"
        /// TCP SYNs from SRC, random source ports, to DST:DPORT (one host's flood of one service).
        case synToOnePort = "syn-one-port"
    }

    static let script = #"""
    import random, socket, struct, sys, time
    kind, src, dst, sport, dport, first, count, rate, seed = sys.argv[1:10]
    sport, dport, first, count, rate = int(sport), int(dport), int(first), int(count), int(rate)
    random.seed(int(seed))
    def csum(b):
        if len(b) % 2: b += b"\0"
        s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
        s = (s >> 16) + (s & 0xffff); s += s >> 16
        return ~s & 0xffff
    def ip(s, d, proto, l4):
        h = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(l4), random.randrange(65536), 0, 64, proto, 0, s, d)
        return h[:10] + struct.pack("!H", csum(h)) + h[12:] + l4
    def tcp_syn(s, d, sp, dp):
        t = struct.pack("!HHIIBBHHH", sp, dp, random.randrange(1 << 32), 0, 5 << 4, 0x02, 64240, 0, 0)
        c = csum(s + d + struct.pack("!BBH", 0, 6, len(t)) + t)
        return ip(s, d, 6, t[:16] + struct.pack("!H", c) + t[18:])
    def udp(s, d, sp, dp, data=b"scan"):
        u = struct.pack("!HHHH", sp, dp, 8 + len(data), 0) + data
        c = csum(s + d + struct.pack("!BBH", 0, 17, len(u)) + u) or 0xffff
        return ip(s, d, 17, u[:6] + struct.pack("!H", c) + u[8:])
    sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    S, D = socket.inet_aton(src), socket.inet_aton(dst)
    prefix = S[:3]
    sent, start, burst = 0, time.time(), 100
    while sent < count:
        for _ in range(min(burst, count - sent)):
            n = first + sent
            if kind == "syn-many-sources":
                p = tcp_syn(prefix + bytes([random.randrange(2, 254)]), D, random.randrange(1024, 65536), dport)
            elif kind == "syn-one-port":
                p = tcp_syn(S, D, random.randrange(1024, 65536), dport)
            elif kind == "syn-many-ports":
                p = tcp_syn(S, D, random.randrange(1024, 65536), random.randrange(1, 65536))
            else:
                p = udp(S, D, sport, 1 + n % 65535)
            try:
                sock.sendto(p, (dst, 0))
            except OSError:
                pass   # a full socket buffer or an unreachable neighbour: the flood goes on
            sent += 1
        ahead = sent / rate - (time.time() - start)
        if ahead > 0: time.sleep(ahead)
    print("sent %d in %.2f s" % (sent, time.time() - start), flush=True)
    """#

    /// Sends `count` packets from `node` at about `rate` per second; returns the flooder's report.
    @discardableResult
    static func run(_ lab: LabTopology, from node: LabTopology.Node, _ kind: Kind, source: String, destination: String,
                    sourcePort: Int = 0, destinationPort: Int = 0, first: Int = 0, count: Int, rate: Int = 10_000,
                    seed: Int = 1) throws -> String {
        let argv = [LabTopology.python, "-c", script, kind.rawValue, source, destination, String(sourcePort), String(destinationPort),
                    String(first), String(count), String(rate), String(seed)]
        let result = try lab.run(node, argv, timeout: Double(count) / Double(rate) + 30)
        guard result.succeeded else { throw IntegrationFailure("flood \(kind.rawValue) from \(lab.namespace(node)) failed: \(result.summary)") }
        return result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }
}

/// The engine's memory through a flood: before, after each half, and the peak.
struct MemoryTrace: CustomStringConvertible {
    var baseline = 0
    var afterFirstHalf = 0
    var afterSecondHalf = 0
    var peak = 0

    var description: String {
        "VmRSS KiB: baseline \(baseline), after half 1 \(afterFirstHalf), after half 2 \(afterSecondHalf), peak \(peak)"
    }

    /// The bounds every exhaustion test applies (the caps make them hold):
    /// - growth over the whole flood below `tableBudgetKiB`: every table is allocated at start
    ///   for its cap; a flood can only touch pages of it for the first time, never add rows;
    /// - growth during the second half, when the caps are already full and every packet takes
    ///   the refusal path, below 1 MiB: 10 000 packets, so a leak of even 100 bytes a packet shows.
    ///   (Nothing else may run then: a big packet lands in a receive slot page never touched
    ///   before, and the 64 slots of 64 KiB can add up to 4 MiB that way.)
    func check(tableBudgetKiB: Int, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(peak - baseline < tableBudgetKiB, "masqd grew by \(peak - baseline) KiB during the flood, budget \(tableBudgetKiB) KiB; \(self)",
                sourceLocation: sourceLocation)
        #expect(afterSecondHalf - afterFirstHalf < 1024, "masqd grew by \(afterSecondHalf - afterFirstHalf) KiB in the second half; \(self)",
                sourceLocation: sourceLocation)
    }
}
