import Foundation
import Masqd
import MasqdLab
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Issue #20 item 3: spoofed first fragments from the WAN must not blackhole a victim's
/// fragmented traffic. The spoofed pieces are sent with the fragment tool's raw-socket flood
/// (IP_HDRINCL, a chosen source: no real peer sends such packets); the victim's 3000-byte
/// datagrams are real UDP sockets' sends, fragmented by the kernel. Real namespaces, rules
/// and masqd binary; namespace prefix mq<pid>fs?, NFQUEUE index 90. The server is the "resolver".
@Suite(.serialized, .integrationLimit)
struct FragmentSpoofingTests: LabAddresses {
    @Test("64 spoofed first fragments from the WAN claiming h1, then claiming the server: h1's 3000-byte UDP datagram and the server's 3000-byte echo still cross")
    func spoofedFirstFragmentsDoNotBlackholeTheVictim() throws {
        try Integration.withEngine("fsa", queue: Integration.queue(90)) { lab, masqd in
            let echo = try Frag.spawn(lab, .server, ["bigecho", "9999"], name: "bigecho-s")

            // 1. A LAN source claimed from the WAN: dropped as spoofed before it reaches the
            // reassembler, so h1's own outbound datagrams are not held against its cap.
            let before = try Semantics.stats(lab, masqd)
            let spoofLAN = try Frag.run(lab, .server, ["flood", wan, "7777", "--count", "64", "--src", h1, "--idbase", "60000"])
            #expect(spoofLAN.succeeded && spoofLAN.stdout.contains("flood sent 64 fragments"), "\(spoofLAN.summary)")
            let afterLAN = try Semantics.stats(lab, masqd)
            #expect((afterLAN["drop_spoofed_source"] ?? 0) >= (before["drop_spoofed_source"] ?? 0) + 64,
                    "the 64 first fragments claiming \(h1) from the WAN should be dropped as spoofed:\n\(Frag.fragmentStats(afterLAN))")
            #expect(afterLAN["fragments_datagrams_in_progress"] == 0,
                    "no spoofed fragment may be held for reassembly:\n\(Frag.fragmentStats(afterLAN))")
            let out = try Frag.run(lab, .host1, ["bigsend", server, "9999", "--sport", "41100", "--sizes", "3000", "--seed", "21", "--tries", "1"])
            let afterOut = try Semantics.stats(lab, masqd)
            #expect(out.succeeded && out.stdout.contains("echoed 1 of 1"),
                    "h1's 3000-byte datagram after spoofed fragments claiming its address:\n\(out.summary)\n\(Frag.fragmentStats(afterOut))")

            // 2. The resolver's own address claimed (it is a legitimate WAN source, so nothing
            // can drop these early): 64 incomplete datagrams fill the server's per-source share;
            // its real answer evicts the attacker's oldest instead of being refused.
            let spoofServer = try Frag.run(lab, .server, ["flood", wan, "7777", "--count", "64", "--src", server, "--idbase", "60000"])
            #expect(spoofServer.succeeded && spoofServer.stdout.contains("flood sent 64 fragments"), "\(spoofServer.summary)")
            let held = try Semantics.stats(lab, masqd)
            #expect(held["fragments_datagrams_in_progress"] == 64, "the 64 spoofed first fragments should be held:\n\(Frag.fragmentStats(held))")
            let again = try Frag.run(lab, .host1, ["bigsend", server, "9999", "--sport", "41101", "--sizes", "3000", "--seed", "22", "--tries", "1"])
            let stats = try Semantics.stats(lab, masqd)
            #expect(again.succeeded && again.stdout.contains("echoed 1 of 1"),
                    "the server's 3000-byte echo after 64 spoofed first fragments claiming its address:\n\(again.summary)\n\(Frag.fragmentStats(stats))\n\(echo.output)")
            #expect((stats["fragments_drop_cap_per_source"] ?? 0) >= 1,
                    "the echo's datagram should have evicted one of the attacker's (counted as cap_per_source):\n\(Frag.fragmentStats(stats))")
            #expect(stats["fragments_datagrams_in_progress"] == 63, "63 spoofed datagrams left waiting for their timeout:\n\(Frag.fragmentStats(stats))")
        }
    }
}
