import Foundation
import Masqd
import MasqdLab
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Spoofed sources end to end (NATTranslator-Spoofing.swift, the FORWARD rule in
/// SteeringRules): scapy in the server's namespace sends from the WAN address, from LAN
/// addresses and from martian addresses; scapy in h2 sends with the router's addresses as its
/// source. None of it arrives, the right counters move, and real traffic still flows.
/// Queue indices 51-52.
@Suite(.integrationLimit)
struct SpoofingTests: LabAddresses {
    @Test("from the WAN: the WAN address, LAN addresses and martians as source never reach h1, and are counted; the real remote does")
    func spoofedFromWAN() throws {
        try Integration.withEngine(scapy: true, "rba", queue: Integration.queue(51), options: ["--forward", "udp:9000=\(h1):9000"]) { lab, masqd, _ in
            let sniff = try lab.spawnHelper(.host1, ["sniff", "eth0"], name: "sniff-h1")
            let routerMAC = try Robust.mac(lab, .router, LabTopology.wanInterface)
            let before = try Semantics.stats(lab, masqd)
            // Layer 2 with the router's MAC: the server has no route to the LAN, and scapy's
            // own routing would refuse some of these sources.
            try Robust.scapy(lab, .server, """
            def wire(src, dst, sport):
                sendp(Ether(dst="\(routerMAC)")/IP(src=src, dst=dst)/UDP(sport=sport, dport=9000)/b"spoof", iface="eth0")
            wire("\(wan)", "\(wan)", 5001)          # our own address, to the forward
            wire("\(h2)", "\(wan)", 5002)           # a LAN address, to the forward
            wire("\(h2)", "\(h1)", 5003)            # a LAN address, straight to h1
            wire("127.0.0.1", "\(wan)", 5004)       # martians
            wire("224.0.0.5", "\(wan)", 5005)
            wire("0.0.0.0", "\(wan)", 5006)
            """)
            // The positive control: the same forward, from the real remote.
            try Robust.scapy(lab, .server, """
            send(IP(dst="\(wan)")/UDP(sport=5100, dport=9000)/b"real")
            """)
            #expect(Semantics.waitUntil(timeout: 5) { sniff.output.contains(":5100 -> \(h1):9000") },
                    "the real remote's datagram through the forward did not reach h1:\n\(sniff.output)")
            usleep(300_000)
            let arrived = SniffedPacket.parse(sniff.lines).filter { $0.incoming && $0.proto == "udp" && $0.sourcePort.map { (5001...5006).contains($0) } == true }
            #expect(arrived.isEmpty, "spoofed datagrams reached h1:\n\(sniff.output)")
            let moved = Robust.moved(before, try Semantics.stats(lab, masqd))
            // The WAN address and 127.0.0.1 as source are the router's own: the rules drop them
            // before the engine (FirewallBackendTests); the two LAN sources and the two other
            // martians reach the engine's checks.
            #expect(moved["drop_spoofed_source"] == 2, "drop_spoofed_source moved by \(moved["drop_spoofed_source"] ?? 0): \(Robust.drops(moved))")
            #expect(moved["drop_martian_source"] == 2, "drop_martian_source moved by \(moved["drop_martian_source"] ?? 0): \(Robust.drops(moved))")
            #expect(moved["sessions_opened_inbound"] == 1, "only the real remote may open a session: \(moved)")
        }
    }

    @Test("from the LAN: h2 sending with the router's addresses as source is dropped at FORWARD; h2's real traffic and hairpinning still work")
    func spoofedFromLAN() throws {
        try Integration.withEngine(scapy: true, "rbb", queue: Integration.queue(52), options: ["--forward", "udp:9000=\(h1):9000"]) { lab, masqd, _ in
            let echo = try lab.spawnHelper(.server, ["udpecho", "7777"], name: "udpecho")
            let sniff = try lab.spawnHelper(.server, ["sniff", "eth0"], name: "sniff-server")
            let before = try Semantics.stats(lab, masqd)
            try Robust.scapy(lab, .host2, """
            send(IP(src="\(wan)", dst="\(server)")/UDP(sport=6001, dport=7777)/b"spoof-wan")
            send(IP(src="\(LabTopology.routerLANAddress)", dst="\(server)")/UDP(sport=6002, dport=7777)/b"spoof-router-lan")
            send(IP(src="\(wan)", dst="\(server)")/ICMP(type=3, code=3)/IP(src="\(server)", dst="\(wan)")/UDP(sport=7777, dport=6003))
            """)
            // Positive controls: h2's own datagram is masqueraded and answered; h2 reaches h1's
            // forward through the WAN address (hairpinned packets carry the WAN address as
            // source too, but leave on the LAN side, where the FORWARD rule does not look).
            let real = try lab.run(.host2, lab.helper(["udpsend", server, "7777", "--msg", "real-h2"]), timeout: 15)
            #expect(real.succeeded && real.stdout.contains("'echo real-h2 seen-from \(wan):"), "h2's real datagram: \(real.summary)")
            let listener = try lab.spawnHelper(.host1, ["listen", "9000"], name: "listen-h1")
            // h1's listener does not answer: udpsend reports "no reply", which is fine here.
            try lab.run(.host2, lab.helper(["udpsend", wan, "9000", "--msg", "hairpin", "--tries", "1"]), timeout: 15)
            #expect(Semantics.waitUntil(timeout: 5) { listener.output.contains("udp from \(wan):") },
                    "the hairpinned datagram did not reach h1 from \(wan):\n\(listener.output)")
            usleep(300_000)
            let spoofed = SniffedPacket.parse(sniff.lines).filter { $0.incoming && ($0.sourcePort.map { (6001...6003).contains($0) } == true || $0.proto == "icmp") }
            #expect(spoofed.isEmpty, "packets with the router's addresses as source left the WAN:\n\(sniff.output)")
            #expect(!echo.output.contains("spoof"), "the server's echo got a spoofed datagram:\n\(echo.output)")
            let moved = Robust.moved(before, try Semantics.stats(lab, masqd))
            #expect(moved["drop_spoofed_source"] == 3, "drop_spoofed_source moved by \(moved["drop_spoofed_source"] ?? 0): \(Robust.drops(moved))")
            let rules = try Integration.iptablesSave(lab)
            #expect(rules.contains("-A FORWARD -o wan0 -m addrtype --src-type LOCAL"), "no FORWARD rule for spoofed sources:\n\(rules)")
        }
    }
}
