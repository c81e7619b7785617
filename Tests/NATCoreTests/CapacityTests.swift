import NATTestKit
import Testing
@testable import NATCore

@Suite struct CapacityTests {
    @Test func sessionCapDropsTheFifthFlowUntilExpiry() {
        let nat = makeTranslator { $0.maxSessions = 4; $0.maxMappings = 4 }
        for dport: UInt16 in 1...4 {
            var p = PacketBuilder.udp(Net.hostA, 40000, Net.remote, dport)
            #expect(nat.run(&p, .outbound) == .acceptRewritten)
        }
        #expect(nat.sessionCount == 4 && nat.mappingCount == 1)

        // Fifth flow of the same mapping.
        let fifth = PacketBuilder.udp(Net.hostA, 40000, Net.remote, 5)
        var p5 = fifth
        #expect(nat.run(&p5, .outbound, now: at(10)) == .drop(.sessionTableFull))
        #expect(p5 == fifth)
        // Fifth flow needing a new mapping: the mapping is not left behind.
        let fromB = PacketBuilder.udp(Net.hostB, 41000, Net.remote, 5)
        var pB = fromB
        #expect(nat.run(&pB, .outbound, now: at(10)) == .drop(.sessionTableFull))
        #expect(pB == fromB)
        #expect(nat.counters.drops(.sessionTableFull) == 2)
        #expect(nat.sessionCount == 4 && nat.mappingCount == 1)
        // ... and its port is not held: nothing answers on 41000.
        var probe = PacketBuilder.udp(Net.remote, 5, Net.external, 41000)
        #expect(nat.run(&probe, .inbound, now: at(10)) == .accept)

        // Once the old sessions have expired, a new flow gets in (reclaimed on demand).
        var later = PacketBuilder.udp(Net.hostB, 41000, Net.remote, 5)
        #expect(nat.run(&later, .outbound, now: at(300)) == .acceptRewritten)
        #expect(later == PacketBuilder.udp(Net.external, 41000, Net.remote, 5))
        #expect(nat.sessionCount == 1 && nat.mappingCount == 1)
    }

    @Test func mappingCapDropsANewInternalEndpoint() {
        let nat = makeTranslator { $0.maxSessions = 16; $0.maxMappings = 2 }
        for sport: UInt16 in [40000, 40001] {
            var p = PacketBuilder.udp(Net.hostA, sport, Net.remote, 53)
            #expect(nat.run(&p, .outbound) == .acceptRewritten)
        }
        let third = PacketBuilder.udp(Net.hostA, 40002, Net.remote, 53)
        var p = third
        #expect(nat.run(&p, .outbound, now: at(1)) == .drop(.mappingTableFull))
        #expect(p == third)
        #expect(nat.counters.drops(.mappingTableFull) == 1)
        // An existing mapping can still open sessions.
        var more = PacketBuilder.udp(Net.hostA, 40000, Net.remote2, 53)
        #expect(nat.run(&more, .outbound, now: at(1)) == .acceptRewritten)
        // After expiry the new endpoint gets in.
        var late = third
        #expect(nat.run(&late, .outbound, now: at(400)) == .acceptRewritten)
        #expect(late == PacketBuilder.udp(Net.external, 40002, Net.remote, 53))
    }

    /// The table is full; the mapping that the packet belongs to has only expired sessions, so
    /// reclaiming room also frees that mapping. The packet must still get a real mapping.
    @Test func reclaimThatFreesTheFoundMapping() {
        let nat = makeTranslator { $0.maxSessions = 2; $0.maxMappings = 2 }
        _ = InboundTranslationTests.open(nat, PacketBuilder.udp(Net.hostA, 40000, Net.remote, 53))
        _ = InboundTranslationTests.open(nat, PacketBuilder.udp(Net.hostB, 41000, Net.remote, 53))
        var p = PacketBuilder.udp(Net.hostA, 40000, Net.remote2, 53)
        #expect(nat.run(&p, .outbound, now: at(400)) == .acceptRewritten)
        #expect(p == PacketBuilder.udp(Net.external, 40000, Net.remote2, 53))
        #expect(nat.sessionCount == 1 && nat.mappingCount == 1)
        let listed = nat.snapshots(now: at(400))
        #expect(listed.count == 1)
        #expect(listed.first?.internalAddress == Net.hostA.address && listed.first?.externalPort == 40000)
        var reply = PacketBuilder.udp(Net.remote2, 53, Net.external, 40000)
        #expect(nat.run(&reply, .inbound, now: at(401)) == .acceptRewritten)
        #expect(reply == PacketBuilder.udp(Net.remote2, 53, Net.hostA, 40000))
    }

    /// Endpoint-independent filtering, table full, the mapping's only sessions expired but not
    /// swept: a new remote's packet must never be sent to a freed mapping row (0.0.0.0:0).
    @Test func inboundReclaimKeepsTheMappingItOpensOn() {
        let nat = makeTranslator { $0.maxSessions = 2; $0.maxMappings = 2; $0.filtering = .endpointIndependent }
        _ = InboundTranslationTests.open(nat, PacketBuilder.udp(Net.hostA, 40000, Net.remote, 53))
        _ = InboundTranslationTests.open(nat, PacketBuilder.udp(Net.hostB, 41000, Net.remote, 53))
        let original = PacketBuilder.udp(Net.remote2, 999, Net.external, 40000)
        var p = original
        let verdict = nat.run(&p, .inbound, now: at(400))
        if verdict == .acceptRewritten {
            #expect(p == PacketBuilder.udp(Net.remote2, 999, Net.hostA, 40000))
            #expect(nat.mappingCount == 1 && nat.sessionCount == 1)
            #expect(nat.snapshots(now: at(400)).first?.internalAddress == Net.hostA.address)
        } else {
            #expect(verdict == .accept)
            #expect(p == original)
            #expect(nat.mappingCount == 0 && nat.sessionCount == 0)
        }
    }

    /// The mapping table is full; reclaiming frees a session but not a mapping (its mapping
    /// has another live session). The new endpoint must be refused, not given row -1.
    @Test func reclaimThatFreesNoMapping() {
        let nat = makeTranslator { $0.maxSessions = 8; $0.maxMappings = 1 }
        _ = InboundTranslationTests.open(nat, PacketBuilder.udp(Net.hostA, 40000, Net.remote, 53))
        _ = InboundTranslationTests.open(nat, PacketBuilder.udp(Net.hostA, 40000, Net.remote2, 53), now: at(200))
        let fromB = PacketBuilder.udp(Net.hostB, 41000, Net.remote, 53)
        var p = fromB
        #expect(nat.run(&p, .outbound, now: at(350)) == .drop(.mappingTableFull))
        #expect(p == fromB)
        #expect(nat.mappingCount == 1 && nat.sessionCount == 1)
        #expect(nat.counters[.mappingsCreated] == 1) // no mapping was made for B, not even a bogus one
        #expect(nat.counters.drops(.mappingTableFull) == 1)
        // A's live session is intact.
        var reply = PacketBuilder.udp(Net.remote2, 53, Net.external, 40000)
        #expect(nat.run(&reply, .inbound, now: at(351)) == .acceptRewritten)
        #expect(destinationAddress(reply) == Net.hostA)
    }

    /// Fill, expire, refill many times: the tables and port table stay consistent.
    @Test func churnKeepsTablesConsistent() {
        let nat = makeTranslator { $0.maxSessions = 64; $0.maxMappings = 32 }
        var rng = SeededRNG(seed: 64)
        var now = t0
        for round in 0..<3000 {
            now = now + NATDuration(nanoseconds: UInt64.random(in: 0...2_000_000_000, using: &rng))
            let host = IPv4Bytes(192, 0, 2, UInt8.random(in: 1...8, using: &rng))
            let sport = UInt16.random(in: 50000...50007, using: &rng)
            let remote = IPv4Bytes(203, 0, 113, UInt8.random(in: 2...9, using: &rng))
            var p = PacketBuilder.udp(host, sport, remote, 53)
            let verdict = nat.run(&p, .outbound, now: now)
            #expect([.acceptRewritten, .drop(.sessionTableFull), .drop(.mappingTableFull)].contains(verdict), "round \(round)")
            if verdict == .acceptRewritten {
                #expect(Verify.transportChecksumValid(p))
                var reply = PacketBuilder.udp(remote, 53, Net.external, sourcePort(p))
                #expect(nat.run(&reply, .inbound, now: now) == .acceptRewritten)
                #expect(reply == PacketBuilder.udp(remote, 53, host, sport))
            }
            if round % 50 == 0 { nat.expire(now: now, budget: 16) }
            #expect(nat.sessionCount <= 64 && nat.mappingCount <= 32)
            #expect(nat.mappingCount <= nat.sessionCount)
        }
        let live = nat.snapshots(now: now)
        #expect(live.count <= nat.sessionCount)
        #expect(Set(live.map { "\($0.internalAddress):\($0.internalPort)" }).count == Set(live.map(\.externalPort)).count)
    }
}
