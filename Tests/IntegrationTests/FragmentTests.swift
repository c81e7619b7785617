import Foundation
import Masqd
import MasqdLab
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// IPv4 fragments end to end (issue #4): the engine holds fragments, reassembles, translates
/// the whole datagram and the kernel refragments it. Fragmented pings and big UDP datagrams
/// both ways, fragments out of order, overlapping fragments, floods of incomplete datagrams
/// against the caps, and the same traffic when conntrack makes the kernel reassemble first.
/// Real namespaces, real iptables, the real masqd binary; every test has its own namespace
/// prefix (mq<pid>fr?) and NFQUEUE number (indices 16-23). Serialized: the floods load the CPU
/// and the other tests measure timing-sensitive round trips.
@Suite(.serialized, .integrationLimit)
struct FragmentTests: LabAddresses {
    // MARK: 1. fragmented pings

    @Test("ping -s 4000 and -s 20000 from h1 to the server: every reply arrives, datagrams reassembled both ways", arguments: Integration.firewalls)
    func fragmentedPing(firewall: FirewallChoice) throws {
        try Integration.withEngine(Integration.tag("fra", firewall), queue: Integration.queue(16, firewall), firewall: firewall) { lab, masqd in
            let sniff = try lab.spawnHelper(.server, ["sniff", "eth0"], name: "sniff-s")
            for size in [4000, 20000] {
                let ping = try Frag.ping(lab, from: .host1, to: server, size: size, count: 5)
                #expect(ping.sent == 5 && ping.received == 5 && ping.result.succeeded,
                        "ping -s \(size): \(ping.received) of \(ping.sent) replies:\n\(ping.result.summary)")
            }
            let stats = try Semantics.stats(lab, masqd)
            let text = Frag.fragmentStats(stats)
            // 10 requests out and 10 replies in, every one of them fragmented.
            #expect((stats["fragments_datagrams_reassembled"] ?? 0) >= 20, "expected >= 20 reassembled datagrams:\n\(text)")
            #expect((stats["fragments_offered"] ?? 0) >= 20 * 3, "expected >= 60 fragments offered:\n\(text)")
            #expect(stats["fragments_datagrams_discarded"] == 0, "no datagram should have been discarded:\n\(text)")
            #expect(stats["fragments_held"] == 0 && stats["fragments_bytes_held"] == 0 && stats["fragments_datagrams_in_progress"] == 0,
                    "nothing should be left in reassembly:\n\(text)")
            // The server saw the requests from the WAN address only (and refragmented to its MTU).
            let seen = SniffedPacket.parse(sniff.lines).filter { $0.incoming && $0.proto == "icmp" }
            #expect(!seen.isEmpty, "the server saw no ICMP:\n\(sniff.output)")
            #expect(seen.allSatisfy { $0.source == wan }, "the server saw ICMP from other sources than \(wan):\n\(sniff.output)")
            let pieces = seen.filter { $0.icmpKind == nil }.count
            #expect(pieces >= 10 * 2, "the server should receive the requests as fragments again (refragmented), saw \(pieces) non-first pieces:\n\(sniff.output)")
        }
    }

    // MARK: 2. big UDP datagrams both ways

    @Test("UDP datagrams of 1600, 9000, 30000 and 60000 bytes echoed h1 → server → h1, and server → port forward → h1 → server")
    func bigUDPEcho() throws {
        let sizes = "1600,9000,30000,60000"
        try Integration.withEngine("frb", queue: Integration.queue(17), options: ["--forward", "udp:9000=\(h1):9000"]) { lab, masqd in
            // Outbound: h1 sends, the server echoes what it got.
            let echoS = try Frag.spawn(lab, .server, ["bigecho", "9999"], name: "bigecho-s")
            let out = try Frag.run(lab, .host1, ["bigsend", server, "9999", "--sport", "41000", "--sizes", sizes, "--seed", "11"], timeout: 60)
            #expect(out.succeeded && out.stdout.contains("echoed 4 of 4"), "h1 → server:\n\(out.summary)")
            let sent = out.lines.filter { $0.hasPrefix("sending ") }.map { String($0.dropFirst("sending ".count)) }
            #expect(sent.count == 4, "\(out.output)")
            for item in sent {
                // "len=60000 sha=..." exactly as sent, from the WAN address and h1's port (preserved or not).
                #expect(echoS.lines.contains { $0.hasPrefix("got from \(wan):") && $0.hasSuffix(" \(item)") },
                        "the server's echo did not get \(item) from \(wan):\n\(echoS.output)")
                #expect(out.lines.contains { $0.hasPrefix("echo \(item) from \(server):9999 ") },
                        "h1 did not get \(item) back from \(server):9999:\n\(out.output)")
            }
            #expect(!echoS.lines.contains { $0.hasPrefix("got from") && !$0.hasPrefix("got from \(wan):") },
                    "the server saw other sources than \(wan):\n\(echoS.output)")

            // Inbound through the forward: the server sends to 203.0.113.1:9000, h1 echoes.
            let echoH = try Frag.spawn(lab, .host1, ["bigecho", "9000"], name: "bigecho-h1")
            let back = try Frag.run(lab, .server, ["bigsend", wan, "9000", "--sport", "46000", "--sizes", sizes, "--seed", "12"], timeout: 60)
            #expect(back.succeeded && back.stdout.contains("echoed 4 of 4"), "server → forward → h1:\n\(back.summary)")
            let sentBack = back.lines.filter { $0.hasPrefix("sending ") }.map { String($0.dropFirst("sending ".count)) }
            #expect(sentBack.count == 4, "\(back.output)")
            for item in sentBack {
                #expect(echoH.lines.contains("got from \(server):46000 \(item)"),
                        "h1's echo did not get \(item) from \(server):46000:\n\(echoH.output)")
                #expect(back.lines.contains { $0.hasPrefix("echo \(item) from \(wan):9000 ") },
                        "the server did not get \(item) back from \(wan):9000:\n\(back.output)")
            }
            let stats = try Semantics.stats(lab, masqd)
            // 1600 bytes: 2 fragments; every size is fragmented, 4 datagrams each way per direction.
            #expect((stats["fragments_datagrams_reassembled"] ?? 0) >= 16, "expected >= 16 reassembled datagrams:\n\(Frag.fragmentStats(stats))")
            #expect(stats["fragments_datagrams_discarded"] == 0, "\(Frag.fragmentStats(stats))")
        }
    }

    // MARK: 3. fragments in reverse order

    @Test("a UDP datagram sent as reversed fragments (scapy) arrives whole and masqueraded at the server")
    func reversedFragments() throws {
        try Frag.requireScapy()
        try Integration.withEngine("frc", queue: Integration.queue(18)) { lab, masqd in
            let listener = try Frag.spawn(lab, .server, ["listen", "7777", "--wait", "30"], name: "listen-s")
            let crafted = try Frag.run(lab, .host1, ["crafted", "reversed", server, "7777", "--sport", "43000", "--size", "3000", "--seed", "5"], timeout: 60)
            #expect(crafted.succeeded, "\(crafted.summary)")
            // "datagram len=3000 sha=XXXX udp-checksum=..."
            let datagram = Semantics.line(crafted.lines, startingWith: "datagram ")?.split(separator: " ").prefix(3).dropFirst().joined(separator: " ") ?? "?"
            #expect(crafted.stdout.contains("sent 4 fragments in reverse order: 3000+8 2000+1000MF 1000+1000MF 0+1000MF"),
                    "scapy did not send the expected reversed fragments:\n\(crafted.output)")
            #expect(listener.waitForOutput(containing: "got from \(wan):", timeout: 5),
                    "the server's listener got nothing from \(wan):\n\(listener.output)")
            #expect(listener.lines.contains { $0.hasPrefix("got from \(wan):") && $0.hasSuffix(" \(datagram)") },
                    "the server did not get the whole datagram (\(datagram)) from \(wan):\n\(listener.output)")
            #expect(!listener.lines.contains { $0.hasPrefix("got from \(h1)") }, "untranslated datagram at the server:\n\(listener.output)")
            let stats = try Semantics.stats(lab, masqd)
            #expect(stats["fragments_offered"] == 4 && stats["fragments_datagrams_reassembled"] == 1,
                    "expected 4 fragments offered and 1 datagram reassembled:\n\(Frag.fragmentStats(stats))")
        }
    }

    // MARK: 4. overlapping fragments

    @Test("overlapping fragments with different data are never delivered, counted as overlap; the engine keeps translating")
    func overlappingFragments() throws {
        try Frag.requireScapy()
        try Integration.withEngine("frd", queue: Integration.queue(19)) { lab, masqd in
            let sniff = try lab.spawnHelper(.server, ["sniff", "eth0"], name: "sniff-s")
            let listener = try Frag.spawn(lab, .server, ["listen", "7777", "--wait", "4"], name: "listen-s")
            let crafted = try Frag.run(lab, .host1, ["crafted", "overlap", server, "7777", "--sport", "43001", "--size", "3000", "--id", "5000"], timeout: 60)
            #expect(crafted.succeeded && crafted.stdout.contains("sent overlapping datagrams id=5000 and id=5001 (8 fragments)"), "\(crafted.summary)")
            #expect(listener.waitForOutput(containing: "done", timeout: 10), "\(listener.output)")
            #expect(!listener.lines.contains { $0.hasPrefix("got from") },
                    "an overlapping datagram was delivered to the server:\n\(listener.output)")
            let leaked = SniffedPacket.parse(sniff.lines).filter { $0.incoming && $0.proto == "udp" }
            #expect(leaked.isEmpty, "UDP (or fragments of it) reached the server:\n\(sniff.output)")

            let stats = try Semantics.stats(lab, masqd)
            let text = Frag.fragmentStats(stats)
            #expect((stats["fragments_drop_overlap"] ?? 0) >= 2, "both datagrams overlap: expected fragments_drop_overlap >= 2:\n\(text)")
            #expect(stats["fragments_datagrams_reassembled"] == 0, "nothing should have been reassembled:\n\(text)")

            // Still alive and translating: a normal UDP exchange and a fragmented ping work.
            let echo = try lab.spawnHelper(.server, ["udpecho", "9999"], name: "udpecho-s")
            let udp = try lab.run(.host1, lab.helper(["udpsend", server, "9999", "--sport", "43002", "--msg", "after-overlap"]), timeout: 15)
            #expect(udp.succeeded && udp.stdout.contains("'echo after-overlap seen-from \(wan):"), "\(udp.summary)\n\(echo.output)")
            let ping = try Frag.ping(lab, from: .host1, to: server, size: 4000, count: 3)
            #expect(ping.received == 3, "fragmented ping after the overlaps:\n\(ping.result.summary)")
            // The same process (counters not reset) answers and has counted the new traffic;
            // Semantics.withEngine also checks that `masqd run` is still running at the end.
            let later = try Semantics.stats(lab, masqd)
            #expect((later["packets_received"] ?? 0) >= (stats["packets_received"] ?? 0) + 8 && later["fragments_drop_overlap"] == stats["fragments_drop_overlap"],
                    "the engine's counters did not continue (restart?): before \(stats["packets_received"] ?? -1) packets, after \(later["packets_received"] ?? -1)")
            #expect((later["fragments_datagrams_reassembled"] ?? 0) >= 6, "the fragmented ping after the overlaps was not reassembled:\n\(Frag.fragmentStats(later))")
        }
    }

    // MARK: 5. floods of incomplete datagrams

    @Test("5000 first fragments from h1: per-source cap holds, memory within caps; h2's fragmented ping and h1's plain UDP still work")
    func firstFragmentFloodFromLANHost() throws {
        try Integration.withEngine("fre", queue: Integration.queue(20)) { lab, masqd in
            let echo = try lab.spawnHelper(.server, ["udpecho", "9999"], name: "udpecho-s")
            let flood = try Frag.spawn(lab, .host1, ["flood", server, "7777", "--count", "5000", "--src", h1, "--hold", "4"],
                                       name: "flood-h1", ready: "flood sent", timeout: 60)
            // The flood's datagrams stay in reassembly for 30 s: traffic now runs "during" it.
            let ping = try Frag.ping(lab, from: .host2, to: server, size: 4000, count: 3)
            #expect(ping.received == 3, "h2's fragmented ping during h1's flood:\n\(ping.result.summary)")
            let udp = try lab.run(.host1, lab.helper(["udpsend", server, "9999", "--sport", "43003", "--msg", "during-flood"]), timeout: 15)
            #expect(udp.succeeded && udp.stdout.contains("'echo during-flood seen-from \(wan):"), "h1's plain UDP during its flood:\n\(udp.summary)\n\(echo.output)")
            let samples = try Frag.sampleStats(lab, masqd, while: flood)
            Frag.expectWithinCaps(samples)
            let last = samples.last ?? [:]
            let text = Frag.fragmentStats(last)
            #expect((last["fragments_drop_cap_per_source"] ?? 0) >= 5000 - 64, "one source: all but 64 datagrams give way to newer ones under the per-source cap:\n\(text)")
            // h1's flood leaves at most 64 datagrams (h2's pings are complete by now).
            #expect(samples.allSatisfy { ($0["fragments_datagrams_in_progress"] ?? 0) <= 64 + 2 },
                    "more than 64 of h1's datagrams in reassembly: max \(samples.map { $0["fragments_datagrams_in_progress"] ?? 0 }.max() ?? -1)")
            #expect((last["fragments_held"] ?? 0) >= 1, "the flood's first fragments should be held until the timeout:\n\(text)")
            #expect(flood.output.contains("flood sent 5000 fragments"), "\(flood.output)")
        }
    }

    @Test("WAN flood of 8000-byte first fragments from 254 sources: bytes capped, plain traffic unaffected, LAN fragmented ping during and after the 30 s timeout")
    func firstFragmentFloodFromWAN() throws {
        try Integration.withEngine("frf", queue: Integration.queue(21)) { lab, masqd in
            // Jumbo WAN link (both ends, KERNEL-FACTS fact 7) so one fragment costs 32 storage blocks.
            try lab.check(.router, ["ip", "link", "set", LabTopology.wanInterface, "mtu", "9000"])
            try lab.check(.server, ["ip", "link", "set", "eth0", "mtu", "9000"])
            let echo = try lab.spawnHelper(.server, ["udpecho", "9999"], name: "udpecho-s")
            let flood = try Frag.spawn(lab, .server, ["flood", wan, "7777", "--count", "1500", "--size", "8000",
                                                      "--sources", "198.51.100.0/24", "--hold", "3"],
                                       name: "flood-s", ready: "ready")
            let samples = try Frag.sampleStats(lab, masqd, while: flood)
            Frag.expectWithinCaps(samples)
            let last = samples.last ?? [:]
            var text = Frag.fragmentStats(last)
            #expect(flood.output.contains("flood sent 1500 fragments"), "\(flood.output)")
            // Full storage evicts the oldest incomplete datagrams instead of refusing new ones.
            #expect((last["fragments_drop_evicted"] ?? 0) > 0, "1500 x 8000 bytes exceed 4 MiB: expected fragments_drop_evicted > 0:\n\(text)")
            #expect((last["fragments_bytes_held"] ?? 0) > (last["fragments_bytes_max"] ?? 0) / 2,
                    "the storage should be mostly full after the flood:\n\(text)")
            #expect((last["fragments_held"] ?? 0) + (last["fragments_drop_evicted"] ?? 0) + Frag.capDrops(last) >= 1500,
                    "every flood fragment is held, evicted or refused by a cap:\n\(text)")

            // During: unfragmented traffic is untouched.
            let udp = try lab.run(.host1, lab.helper(["udpsend", server, "9999", "--sport", "43004", "--msg", "during-wan-flood"]), timeout: 15)
            #expect(udp.succeeded && udp.stdout.contains("'echo during-wan-flood seen-from \(wan):"), "plain UDP during the WAN flood:\n\(udp.summary)\n\(echo.output)")
            let small = try Frag.ping(lab, from: .host1, to: server, size: 56, count: 3)
            #expect(small.received == 3, "plain ping during the WAN flood:\n\(small.result.summary)")
            // During: a LAN host's fragmented ping must not be starved by WAN strangers.
            let during = try Frag.ping(lab, from: .host1, to: server, size: 4000, count: 3)
            let duringStats = try Semantics.stats(lab, masqd)
            #expect(during.received == 3,
                    "h1's fragmented ping during a WAN flood from spoofed sources got \(during.received) of 3 replies:\n\(during.result.summary)\n\(Frag.fragmentStats(duringStats))")

            // After the 30 s timeout everything held is gone and fragmented traffic works.
            let emptied = try Semantics.waitUntil(timeout: 40) {
                let s = try Semantics.stats(lab, masqd)
                return s["fragments_held"] == 0 && s["fragments_bytes_held"] == 0 && s["fragments_datagrams_in_progress"] == 0
            }
            let after = try Semantics.stats(lab, masqd)
            text = Frag.fragmentStats(after)
            #expect(emptied, "reassembly state did not drain within 40 s of the flood:\n\(text)")
            #expect((after["fragments_drop_timeout"] ?? 0) > 0, "expected timeouts to be counted:\n\(text)")
            let ping = try Frag.ping(lab, from: .host1, to: server, size: 4000, count: 3)
            #expect(ping.received == 3, "h1's fragmented ping after the timeout:\n\(ping.result.summary)")
        }
    }

    @Test("WAN flood of 1100 datagrams x 3 fragments from 254 sources: datagram and fragment caps hold, the oldest are evicted")
    func fragmentFloodHitsCountCaps() throws {
        try Integration.withEngine("frg", queue: Integration.queue(22)) { lab, masqd in
            let echo = try lab.spawnHelper(.server, ["udpecho", "9999"], name: "udpecho-s")
            // Round 1: 1100 first fragments (1024 fit), round 2 and 3: further pieces of the same datagrams.
            let flood = try Frag.spawn(lab, .server, ["flood", wan, "7777", "--count", "1100", "--frags", "3",
                                                      "--sources", "198.51.100.0/24", "--hold", "3"],
                                       name: "flood-s", ready: "ready")
            let samples = try Frag.sampleStats(lab, masqd, while: flood)
            Frag.expectWithinCaps(samples)
            let last = samples.last ?? [:]
            let text = Frag.fragmentStats(last)
            #expect(flood.output.contains("flood sent 3300 fragments"), "\(flood.output)")
            // 76 of the 1100 first fragments find the datagram table (1024) full: each evicts the
            // oldest incomplete datagram rather than being refused.
            #expect((last["fragments_drop_evicted"] ?? 0) >= 1100 - 1024, "expected >= 76 evictions:\n\(text)")
            #expect((last["fragments_drop_cap_datagrams"] ?? 0) == 0, "eviction makes room, so nothing is refused by the datagram cap:\n\(text)")
            let maxHeld = samples.map { $0["fragments_held"] ?? 0 }.max() ?? 0
            #expect(maxHeld >= 1024 && maxHeld <= 2048, "fragments held should fill up to the datagram cap and never pass the fragment cap: max fragments_held sampled \(maxHeld):\n\(text)")
            #expect((last["fragments_offered"] ?? 0) >= 3300, "\(text)")
            // The kernel queue is not clogged: unfragmented traffic still flows both ways.
            let udp = try lab.run(.host1, lab.helper(["udpsend", server, "9999", "--sport", "43005", "--msg", "during-count-flood"]), timeout: 15)
            #expect(udp.succeeded && udp.stdout.contains("'echo during-count-flood seen-from \(wan):"), "plain UDP during the flood:\n\(udp.summary)\n\(echo.output)")
            let nfq = try lab.run(.router, ["cat", "/proc/net/netfilter/nfnetlink_queue"]).stdout
            let ours = nfq.split(separator: "\n").first { $0.split(separator: " ").first.map(String.init) == String(Integration.queue(22)) }
            let waiting = ours.flatMap { line in line.split(separator: " ").filter { !$0.isEmpty }.dropFirst(2).first.flatMap { Int($0) } } ?? -1
            #expect(waiting >= 0 && waiting <= 2048 + 64, "packets waiting in the kernel queue: \(waiting) (\(ours.map(String.init) ?? nfq))")
        }
    }

    // MARK: 6. conntrack in the router namespace

    @Test("with a conntrack rule in the router (the kernel reassembles first) ping -s 4000 and a 30000-byte UDP echo still work")
    func withConntrack() throws {
        try Integration.withEngine("frh", queue: Integration.queue(23)) { lab, masqd in
            try lab.check(.router, ["iptables", "-w", "-A", "FORWARD", "-m", "conntrack", "--ctstate", "INVALID", "-j", "DROP"])
            let ping = try Frag.ping(lab, from: .host1, to: server, size: 4000, count: 5)
            #expect(ping.sent == 5 && ping.received == 5, "ping -s 4000 with conntrack:\n\(ping.result.summary)")
            let echo = try Frag.spawn(lab, .server, ["bigecho", "9999"], name: "bigecho-s")
            let udp = try Frag.run(lab, .host1, ["bigsend", server, "9999", "--sport", "41001", "--sizes", "30000", "--seed", "13"], timeout: 30)
            #expect(udp.succeeded && udp.stdout.contains("echoed 1 of 1"), "30000-byte UDP echo with conntrack:\n\(udp.summary)")
            let item = Semantics.line(udp.lines, startingWith: "sending ").map { String($0.dropFirst("sending ".count)) } ?? "?"
            #expect(echo.lines.contains { $0.hasPrefix("got from \(wan):") && $0.hasSuffix(" \(item)") },
                    "the server did not get \(item) from \(wan):\n\(echo.output)")
            let stats = try Semantics.stats(lab, masqd)
            // Reassembled by the kernel's defrag before raw PREROUTING: the engine sees whole datagrams.
            #expect(stats["fragments_offered"] == 0,
                    "with conntrack the kernel should hand over whole datagrams (KERNEL-FACTS fact 4):\n\(Frag.fragmentStats(stats))")
            #expect((stats["verdict_accept_rewritten"] ?? stats["packets_accept_rewritten"] ?? 1) > 0, "\(stats)")
        }
    }
}
