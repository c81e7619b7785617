import NATTestKit
import Testing
@testable import NATCore

@Suite struct MappingBehaviorTests {
    @Test func sameInternalEndpointKeepsOneExternalPortForAllDestinations() {
        let nat = makeTranslator()
        // Make 40000 taken first so the mapping under test is not simply port-preserved.
        _ = InboundTranslationTests.open(nat, PacketBuilder.udp(Net.hostB, 40000, Net.remote, 9))
        var first = PacketBuilder.udp(Net.hostA, 40000, Net.remote, 53)
        var second = PacketBuilder.udp(Net.hostA, 40000, Net.remote2, 123)
        #expect(nat.run(&first, .outbound) == .acceptRewritten)
        #expect(nat.run(&second, .outbound) == .acceptRewritten)
        #expect(sourcePort(first) != 40000)
        #expect(sourcePort(first) == sourcePort(second))
        #expect(nat.mappingCount == 2)
        #expect(nat.sessionCount == 3)
        // Each destination can answer.
        var r1 = PacketBuilder.udp(Net.remote, 53, Net.external, sourcePort(first))
        var r2 = PacketBuilder.udp(Net.remote2, 123, Net.external, sourcePort(first))
        #expect(nat.run(&r1, .inbound) == .acceptRewritten)
        #expect(nat.run(&r2, .inbound) == .acceptRewritten)
        #expect(destinationAddress(r1) == Net.hostA && destinationPort(r1) == 40000)
        #expect(destinationAddress(r2) == Net.hostA && destinationPort(r2) == 40000)
    }

    @Test(arguments: [UInt8(6), 17])
    func twoHostsWithTheSameSourcePort(protocolNumber: UInt8) {
        let nat = makeTranslator()
        func make(_ host: IPv4Bytes) -> [UInt8] {
            protocolNumber == 6 ? PacketBuilder.tcp(host, 40000, Net.remote, 80) : PacketBuilder.udp(host, 40000, Net.remote, 80)
        }
        func reply(_ port: UInt16) -> [UInt8] {
            protocolNumber == 6 ? PacketBuilder.tcp(Net.remote, 80, Net.external, port, flags: TCPFlag.syn | TCPFlag.ack)
                : PacketBuilder.udp(Net.remote, 80, Net.external, port)
        }
        var a = make(Net.hostA), b = make(Net.hostB)
        #expect(nat.run(&a, .outbound) == .acceptRewritten)
        #expect(nat.run(&b, .outbound) == .acceptRewritten)
        let portA = sourcePort(a), portB = sourcePort(b)
        #expect(portA == 40000)
        #expect(portB != portA)
        #expect((1024...65535).contains(portB))
        #expect(Verify.transportChecksumValid(b))

        var replyB = reply(portB), replyA = reply(portA)
        #expect(nat.run(&replyB, .inbound) == .acceptRewritten)
        #expect(nat.run(&replyA, .inbound) == .acceptRewritten)
        #expect(destinationAddress(replyA) == Net.hostA && destinationPort(replyA) == 40000)
        #expect(destinationAddress(replyB) == Net.hostB && destinationPort(replyB) == 40000)
        #expect(Verify.transportChecksumValid(replyA) && Verify.transportChecksumValid(replyB))
    }

    @Test func icmpEchoFromTwoHostsWithTheSameIdentifier() {
        let nat = makeTranslator()
        var a = PacketBuilder.icmp(Net.hostA, Net.remote, identifier: 0x0101, sequence: 1)
        var b = PacketBuilder.icmp(Net.hostB, Net.remote, identifier: 0x0101, sequence: 2)
        #expect(nat.run(&a, .outbound) == .acceptRewritten)
        #expect(nat.run(&b, .outbound) == .acceptRewritten)
        let idA = sourcePort(a), idB = sourcePort(b)
        #expect(idA == 0x0101)
        #expect(idA != idB)
        #expect(b == PacketBuilder.icmp(Net.external, Net.remote, identifier: idB, sequence: 2))

        var replyB = PacketBuilder.icmp(Net.remote, Net.external, type: 0, identifier: idB, sequence: 2)
        var replyA = PacketBuilder.icmp(Net.remote, Net.external, type: 0, identifier: idA, sequence: 1)
        #expect(nat.run(&replyB, .inbound) == .acceptRewritten)
        #expect(nat.run(&replyA, .inbound) == .acceptRewritten)
        #expect(replyA == PacketBuilder.icmp(Net.remote, Net.hostA, type: 0, identifier: 0x0101, sequence: 1))
        #expect(replyB == PacketBuilder.icmp(Net.remote, Net.hostB, type: 0, identifier: 0x0101, sequence: 2))
    }

    @Test func protocolsHaveSeparatePortSpaces() {
        let nat = makeTranslator()
        var tcp = PacketBuilder.tcp(Net.hostA, 40000, Net.remote, 80)
        var udp = PacketBuilder.udp(Net.hostB, 40000, Net.remote, 80)
        var icmp = PacketBuilder.icmp(Net.hostC, Net.remote, identifier: 40000)
        #expect(nat.run(&tcp, .outbound) == .acceptRewritten)
        #expect(nat.run(&udp, .outbound) == .acceptRewritten)
        #expect(nat.run(&icmp, .outbound) == .acceptRewritten)
        #expect(sourcePort(tcp) == 40000 && sourcePort(udp) == 40000 && sourcePort(icmp) == 40000)
        #expect(nat.mappingCount == 3)
    }

    @Test func repeatedPacketsReuseTheSession() {
        let nat = makeTranslator()
        for i in 0..<10 {
            var p = PacketBuilder.udp(Net.hostA, 40000, Net.remote, 53, payload: [UInt8(i)])
            #expect(nat.run(&p, .outbound, now: at(UInt64(i))) == .acceptRewritten)
            #expect(sourcePort(p) == 40000)
        }
        #expect(nat.sessionCount == 1 && nat.mappingCount == 1)
        #expect(nat.counters[.sessionsCreated] == 1 && nat.counters[.mappingsCreated] == 1)
        #expect(nat.counters[.outboundTranslated] == 10)
    }

    /// Many hosts, many flows: every reply reaches the host that opened the flow.
    @Test func manyFlowsRouteBack() {
        let nat = makeTranslator { $0.maxSessions = 4096; $0.maxMappings = 4096 }
        var rng = SeededRNG(seed: 17)
        var flows: [(host: IPv4Bytes, sport: UInt16, remote: IPv4Bytes, dport: UInt16, external: UInt16)] = []
        for _ in 0..<2000 {
            let host = IPv4Bytes(192, 0, 2, UInt8.random(in: 1...20, using: &rng))
            let sport = UInt16.random(in: 30000...30050, using: &rng) // many collisions
            let remote = IPv4Bytes(203, 0, 113, UInt8.random(in: 2...5, using: &rng))
            let dport = UInt16.random(in: 1...3, using: &rng)
            var p = PacketBuilder.udp(host, sport, remote, dport)
            #expect(nat.run(&p, .outbound) == .acceptRewritten)
            flows.append((host, sport, remote, dport, sourcePort(p)))
        }
        // Same internal endpoint ⇒ same external port; different ⇒ different.
        var byInternal: [String: UInt16] = [:]
        var byExternal: [UInt16: String] = [:]
        for f in flows {
            let key = "\(f.host):\(f.sport)"
            if let e = byInternal[key] { #expect(e == f.external) } else { byInternal[key] = f.external }
            if let k = byExternal[f.external] { #expect(k == key) } else { byExternal[f.external] = key }
        }
        #expect(nat.mappingCount == byInternal.count)
        for f in flows.shuffled(using: &rng) {
            var reply = PacketBuilder.udp(f.remote, f.dport, Net.external, f.external, payload: [7])
            #expect(nat.run(&reply, .inbound) == .acceptRewritten)
            #expect(reply == PacketBuilder.udp(f.remote, f.dport, f.host, f.sport, payload: [7]))
        }
    }
}
