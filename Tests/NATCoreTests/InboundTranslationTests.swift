import NATTestKit
import Testing
@testable import NATCore

@Suite struct InboundTranslationTests {
    /// Sends one outbound packet and returns the external port it got.
    static func open(_ nat: NATTranslator, _ packet: [UInt8], now: NATTime = t0) -> UInt16 {
        var p = packet
        #expect(nat.run(&p, .outbound, now: now) == .acceptRewritten)
        return sourcePort(p)
    }

    @Test(arguments: [false, true])
    func tcpReplyIsDemasqueraded(notReady: Bool) {
        let nat = makeTranslator()
        let port = Self.open(nat, PacketBuilder.tcp(Net.hostA, 40000, Net.remote, 80))
        #expect(port == 40000)
        let payload: [UInt8] = Array("HTTP/1.1 200 OK\r\n".utf8)
        let original = PacketBuilder.tcp(Net.remote, 80, Net.external, port, flags: TCPFlag.syn | TCPFlag.ack, seq: 55, ack: 0x0102_0305,
                                         options: [0x02, 0x04, 0x05, 0xb4], payload: payload, checksum: notReady ? .notReady : .valid)
        var packet = original
        #expect(nat.run(&packet, .inbound, notReady: notReady, now: at(1)) == .acceptRewritten)
        let expected = PacketBuilder.tcp(Net.remote, 80, Net.hostA, 40000, flags: TCPFlag.syn | TCPFlag.ack, seq: 55, ack: 0x0102_0305,
                                         options: [0x02, 0x04, 0x05, 0xb4], payload: payload)
        #expect(packet == expected)
        #expect(Verify.ipHeaderChecksumValid(packet))
        #expect(Verify.transportChecksumValid(packet))
        #expect(destinationAddress(packet) == Net.hostA && destinationPort(packet) == 40000)
        // Only IP checksum, destination address, destination port and L4 checksum changed.
        let allowed: Set<Int> = [10, 11, 16, 17, 18, 19, 22, 23, 36, 37]
        for i in 0..<original.count where !allowed.contains(i) { #expect(packet[i] == original[i], "byte \(i)") }
        #expect(nat.counters[.inboundTranslated] == 1)
    }

    @Test(arguments: [false, true])
    func udpReplyIsDemasqueraded(notReady: Bool) {
        let nat = makeTranslator()
        let port = Self.open(nat, PacketBuilder.udp(Net.hostA, 40000, Net.remote, 53))
        var packet = PacketBuilder.udp(Net.remote, 53, Net.external, port, payload: [1, 2, 3, 4, 5], checksum: notReady ? .notReady : .valid)
        #expect(nat.run(&packet, .inbound, notReady: notReady) == .acceptRewritten)
        #expect(packet == PacketBuilder.udp(Net.remote, 53, Net.hostA, 40000, payload: [1, 2, 3, 4, 5]))
        #expect(Verify.transportChecksumValid(packet) && Verify.ipHeaderChecksumValid(packet))
    }

    @Test func udpReplyWithoutChecksumKeepsZero() {
        let nat = makeTranslator()
        let port = Self.open(nat, PacketBuilder.udp(Net.hostA, 40000, Net.remote, 53))
        var packet = PacketBuilder.udp(Net.remote, 53, Net.external, port, checksum: .zero)
        #expect(nat.run(&packet, .inbound) == .acceptRewritten)
        #expect(packet == PacketBuilder.udp(Net.remote, 53, Net.hostA, 40000, checksum: .zero))
    }

    @Test(arguments: [false, true])
    func icmpEchoReplyIsDemasqueraded(notReady: Bool) {
        let nat = makeTranslator()
        let id = Self.open(nat, PacketBuilder.icmp(Net.hostA, Net.remote, identifier: 777, sequence: 9))
        var reply = PacketBuilder.icmp(Net.remote, Net.external, type: 0, identifier: id, sequence: 9, checksum: notReady ? .notReady : .valid)
        #expect(nat.run(&reply, .inbound, notReady: notReady) == .acceptRewritten)
        #expect(reply == PacketBuilder.icmp(Net.remote, Net.hostA, type: 0, identifier: 777, sequence: 9))
        #expect(Verify.transportChecksumValid(reply))
    }

    /// An echo reply that becomes all zeros (type 0, code 0, id 0, seq 0, no data) must carry
    /// checksum 0xffff: RFC 1624's equation alone would give 0x0000, which does not verify.
    @Test(arguments: [false, true])
    func icmpEchoReplyThatBecomesAllZeros(notReady: Bool) {
        let nat = makeTranslator()
        _ = Self.open(nat, PacketBuilder.icmp(Net.hostA, Net.remote, identifier: 0, sequence: 0, payload: []))
        let id = Self.open(nat, PacketBuilder.icmp(Net.hostB, Net.remote, identifier: 0, sequence: 0, payload: []))
        #expect(id != 0)
        var reply = PacketBuilder.icmp(Net.remote, Net.external, type: 0, identifier: id, sequence: 0, payload: [],
                                       checksum: notReady ? .notReady : .valid)
        #expect(nat.run(&reply, .inbound, notReady: notReady) == .acceptRewritten)
        #expect(Array(reply[20...]) == [0, 0, 0xff, 0xff, 0, 0, 0, 0])
        #expect(Verify.transportChecksumValid(reply))
        #expect(reply == PacketBuilder.icmp(Net.remote, Net.hostB, type: 0, identifier: 0, sequence: 0, payload: []))
    }

    @Test func icmpEchoRequestToMappedIdentifierIsNotTranslated() {
        let nat = makeTranslator()
        let id = Self.open(nat, PacketBuilder.icmp(Net.hostA, Net.remote, identifier: 777))
        let original = PacketBuilder.icmp(Net.remote, Net.external, type: 8, identifier: id)
        expectUnchanged(nat, original, .inbound)
        #expect(nat.counters[.inboundUnmatched] == 1)
    }

    /// Address-and-port-dependent filtering: only the remote endpoint of a session gets in.
    @Test func otherRemoteEndpointsAreFiltered() {
        let nat = makeTranslator()
        let port = Self.open(nat, PacketBuilder.udp(Net.hostA, 40000, Net.remote, 53))
        let strangers = [
            PacketBuilder.udp(Net.remote, 54, Net.external, port),       // same address, other port
            PacketBuilder.udp(Net.remote2, 53, Net.external, port),      // other address, same port
            PacketBuilder.tcp(Net.remote, 53, Net.external, port),       // same endpoint, other protocol
        ]
        for original in strangers {
            expectUnchanged(nat, original, .inbound)
        }
        #expect(nat.counters[.inboundUnmatched] == 3)
        #expect(nat.counters[.inboundTranslated] == 0)
        // The real remote still gets through.
        var reply = PacketBuilder.udp(Net.remote, 53, Net.external, port)
        #expect(nat.run(&reply, .inbound) == .acceptRewritten)
        #expect(destinationAddress(reply) == Net.hostA)
    }

    @Test func unmappedPortIsPassedUnchanged() {
        let nat = makeTranslator()
        _ = Self.open(nat, PacketBuilder.udp(Net.hostA, 40000, Net.remote, 53))
        for original in [PacketBuilder.udp(Net.remote, 53, Net.external, 40001), PacketBuilder.tcp(Net.remote, 80, Net.external, 22)] {
            expectUnchanged(nat, original, .inbound)
        }
        #expect(nat.counters[.inboundUnmatched] == 2)
    }

    @Test func inboundToInternalAddressIsDropped() {
        let nat = makeTranslator()
        _ = Self.open(nat, PacketBuilder.udp(Net.hostA, 40000, Net.remote, 53))
        let original = PacketBuilder.udp(Net.remote, 53, Net.hostA, 40000)
        expectUnchanged(nat, original, .inbound, verdict: .drop(.inboundToInternalAddress))
        #expect(nat.counters.drops(.inboundToInternalAddress) == 1)
    }

    @Test func inboundToInternalAddressWithoutPrefixesIsNotJudged() {
        let nat = makeTranslator(internalPrefixes: [])
        let original = PacketBuilder.udp(Net.remote, 53, Net.hostA, 40000)
        expectUnchanged(nat, original, .inbound)
        #expect(nat.counters[.inboundNotForUs] == 1)
    }

    @Test func inboundForAnotherAddressIsPassed() {
        let nat = makeTranslator()
        let original = PacketBuilder.udp(Net.remote, 53, Net.outsider, 40000)
        expectUnchanged(nat, original, .inbound)
        #expect(nat.counters[.inboundNotForUs] == 1)
    }

    @Test func inboundJunkToExternalAddressIsLeftToTheStack() {
        let nat = makeTranslator()
        _ = Self.open(nat, PacketBuilder.udp(Net.hostA, 40000, Net.remote, 53))
        let cases: [[UInt8]] = [
            PacketBuilder.icmp(Net.remote, Net.external, type: 3, code: 3, identifier: 0), // ICMP error
            PacketBuilder.ipv4(source: Net.remote, destination: Net.external, protocolNumber: 47, transport: [0, 0, 8, 0]), // GRE
            PacketBuilder.udp(Net.remote, 53, Net.external, 40000, lengthField: 200), // UDP length beyond packet
        ]
        for original in cases {
            expectUnchanged(nat, original, .inbound)
        }
        #expect(nat.counters[.inboundUnmatched] == 3)
        #expect(nat.counters.totalDrops == 0)
    }

    @Test func inboundFragmentToExternalAddressIsDropped() {
        let nat = makeTranslator()
        var packet = PacketBuilder.udp(Net.remote, 53, Net.external, 40000, ip: IPv4Fields(flagsAndFragment: 0x2000))
        #expect(nat.run(&packet, .inbound) == .drop(.fragmentUnsupported))
    }
}
