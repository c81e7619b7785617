import NATTestKit
import Testing
@testable import NATCore

// Issue #20 item 6: one internal host may hold only its share of the helper tables, so its
// flood of SYNs to port 21 (or of offers asking for expectations) leaves room for everyone
// else; and unanswered SYNs leave after tcp-opening (120 s), not 240 s.

@Suite("Per-host shares of the helper tables")
struct HelperShareTests {
    static func ftp(share: Int) -> NATTranslator {
        makeTranslator {
            $0.helpers = [HelperRegistration(helper: GrowAtSignsHelper(), ports: [21])]
            $0.helperLimits.connectionsPerHost = share
        }
    }

    @Test("a host's SYNs to port 21 beyond its share are dropped and counted; another host still gets its connection")
    func connectionShare() {
        let nat = Self.ftp(share: 3)
        for port: UInt16 in 40000..<40003 {
            var syn = PacketBuilder.tcp(Net.hostA, port, Net.remote, 21)
            #expect(nat.run(&syn, .outbound) == .acceptRewritten)
            #expect(syn == PacketBuilder.tcp(Net.external, port, Net.remote, 21))
        }
        let original = PacketBuilder.tcp(Net.hostA, 40003, Net.remote, 21)
        expectUnchanged(nat, original, .outbound, verdict: .drop(.hostHelperLimit))
        #expect(nat.counters.drops(.hostHelperLimit) == 1 && nat.helperConnectionCount == 3)
        // Not a helper port: the share does not apply.
        var web = PacketBuilder.tcp(Net.hostA, 40004, Net.remote, 80)
        #expect(nat.run(&web, .outbound) == .acceptRewritten)
        // Host B has its own share.
        var other = PacketBuilder.tcp(Net.hostB, 40000, Net.remote, 21)
        #expect(nat.run(&other, .outbound) == .acceptRewritten)
        #expect(other == PacketBuilder.tcp(Net.external, sourcePort(other), Net.remote, 21))
        #expect(nat.helperConnectionCount == 4)
    }

    @Test("a helper connection that ends gives its place back")
    func shareReturned() {
        let nat = Self.ftp(share: 1)
        var syn = PacketBuilder.tcp(Net.hostA, 40000, Net.remote, 21)
        #expect(nat.run(&syn, .outbound) == .acceptRewritten)
        var second = PacketBuilder.tcp(Net.hostA, 40001, Net.remote, 21)
        #expect(nat.run(&second, .outbound, now: at(1)) == .drop(.hostHelperLimit))
        // Unanswered, the first SYN's session lives tcp-opening (120 s), then its place is free.
        #expect(nat.expire(now: at(119), budget: 1024) == 0)
        #expect(nat.expire(now: at(120), budget: 1024) == 1)
        #expect(nat.helperConnectionCount == 0)
        var third = PacketBuilder.tcp(Net.hostA, 40001, Net.remote, 21)
        #expect(nat.run(&third, .outbound, now: at(121)) == .acceptRewritten)
        #expect(nat.helperConnectionCount == 1)
    }

    @Test("inbound-opened sessions at a forward with a helper count against the inside host's share")
    func forwardShare() {
        let nat = makeTranslator {
            $0.helpers = [HelperRegistration(helper: GrowAtSignsHelper(), ports: [21])]
            $0.helperLimits.connectionsPerHost = 2
            $0.forwards = [PortForward("tcp:21=192.0.2.10:21")!]
        }
        for port: UInt16 in 50000..<50002 {
            var syn = PacketBuilder.tcp(Net.outsider, port, Net.external, 21)
            #expect(nat.run(&syn, .inbound) == .acceptRewritten)
            #expect(syn == PacketBuilder.tcp(Net.outsider, port, Net.hostA, 21))
        }
        var third = PacketBuilder.tcp(Net.outsider, 50002, Net.external, 21)
        #expect(nat.run(&third, .inbound) == .drop(.hostHelperLimit))
        // Nobody answers: after 120 s (not 240) the forward takes new connections again.
        #expect(nat.expire(now: at(120), budget: 1024) == 2)
        var later = PacketBuilder.tcp(Net.outsider, 50003, Net.external, 21)
        #expect(nat.run(&later, .inbound, now: at(121)) == .acceptRewritten)
    }

    @Test("a host's expectations beyond its share are refused, whichever of its connections asks; another host's are not")
    func expectationShare() {
        let nat = makeTranslator {
            $0.helpers = [HelperRegistration(helper: MediaOfferHelper(), ports: [.udp(5060)])]
            $0.helperLimits.expectationsPerHost = 4
        }
        func offer(_ host: IPv4Bytes, from port: UInt16, media: UInt16) -> [UInt8] {
            var p = PacketBuilder.udp(host, port, Net.remote, 5060, payload: Array("MEDIA \(media)".utf8))
            let verdict = nat.run(&p, .outbound)
            if case .acceptReplaced(let bytes) = verdict { return Array(bytes) }
            #expect(verdict == .acceptRewritten)
            return p
        }
        // Two of host A's flows ask for a pair each: 4 expectations, its share.
        #expect(offer(Net.hostA, from: 5060, media: 6000) == PacketBuilder.udp(Net.external, 5060, Net.remote, 5060, payload: Array("MEDIA 6000".utf8)))
        #expect(offer(Net.hostA, from: 5062, media: 6002) == PacketBuilder.udp(Net.external, 5062, Net.remote, 5060, payload: Array("MEDIA 6002".utf8)))
        #expect(nat.pendingExpectationCount == 4)
        // A third flow's offer is refused: passed unchanged (the helper rewrites nothing), counted.
        #expect(offer(Net.hostA, from: 5064, media: 6004) == PacketBuilder.udp(Net.external, 5064, Net.remote, 5060, payload: Array("MEDIA 6004".utf8)))
        #expect(nat.pendingExpectationCount == 4 && nat.counters[.expectationsRefusedHostShare] == 1)
        // Host B is not held back by host A.
        let b = offer(Net.hostB, from: 5060, media: 7000)
        #expect(nat.pendingExpectationCount == 6)
        #expect(Verify.transportChecksumValid(b) && PacketReader.sourceAddress(b) == Net.external)
    }
}
