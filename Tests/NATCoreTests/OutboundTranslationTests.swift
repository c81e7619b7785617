import NATTestKit
import Testing
@testable import NATCore

/// Offsets (from the start of the packet) that outbound translation may change: the IP
/// checksum, the source address, the L4 source port/identifier and the L4 checksum.
private func allowedOutboundChanges(_ p: [UInt8]) -> Set<Int> {
    let ihl = Verify.headerLength(p)
    var changed: Set<Int> = [10, 11, 12, 13, 14, 15]
    switch p[9] {
    case 6: changed.formUnion([ihl, ihl + 1, ihl + 16, ihl + 17])
    case 17: changed.formUnion([ihl, ihl + 1, ihl + 6, ihl + 7])
    default: changed.formUnion([ihl + 2, ihl + 3, ihl + 4, ihl + 5])
    }
    return changed
}

/// Checks one outbound translation against an independently built expectation.
private func expectOutbound(original: [UInt8], translated: [UInt8], expected: [UInt8], sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(translated.count == original.count, sourceLocation: sourceLocation)
    #expect(translated == expected, "translated bytes differ from the reference packet", sourceLocation: sourceLocation)
    #expect(sourceAddress(translated) == Net.external, sourceLocation: sourceLocation)
    #expect(Verify.ipHeaderChecksumValid(translated), sourceLocation: sourceLocation)
    #expect(Verify.transportChecksumValid(translated), sourceLocation: sourceLocation)
    let allowed = allowedOutboundChanges(original)
    for i in 0..<original.count where !allowed.contains(i) {
        #expect(translated[i] == original[i], "byte \(i) changed", sourceLocation: sourceLocation)
    }
}

@Suite struct OutboundTranslationTests {
    static let mss: [UInt8] = [0x02, 0x04, 0x05, 0xb4] // MSS 1460

    @Test(arguments: [false, true])
    func tcpSyn(notReady: Bool) {
        let nat = makeTranslator()
        let original = PacketBuilder.tcp(Net.hostA, 40000, Net.remote, 80, flags: TCPFlag.syn, seq: 0xdead_beef,
                                         options: Self.mss, checksum: notReady ? .notReady : .valid)
        var packet = original
        #expect(nat.run(&packet, .outbound, notReady: notReady) == .acceptRewritten)
        let expected = PacketBuilder.tcp(Net.external, 40000, Net.remote, 80, flags: TCPFlag.syn, seq: 0xdead_beef, options: Self.mss)
        expectOutbound(original: original, translated: packet, expected: expected)
        #expect(sourcePort(packet) == 40000)
        #expect(nat.counters[.outboundTranslated] == 1)
        #expect(nat.counters[.mappingsCreated] == 1 && nat.counters[.sessionsCreated] == 1)
        #expect(nat.sessionCount == 1 && nat.mappingCount == 1)
    }

    @Test(arguments: [false, true])
    func tcpWithPayload(notReady: Bool) {
        let nat = makeTranslator()
        var rng = SeededRNG(seed: 80)
        let payload = rng.bytes(333)
        let original = PacketBuilder.tcp(Net.hostA, 51515, Net.remote, 443, flags: TCPFlag.ack | TCPFlag.psh, seq: 7, ack: 9,
                                         payload: payload, checksum: notReady ? .notReady : .valid)
        var packet = original
        #expect(nat.run(&packet, .outbound, notReady: notReady) == .acceptRewritten)
        let expected = PacketBuilder.tcp(Net.external, 51515, Net.remote, 443, flags: TCPFlag.ack | TCPFlag.psh, seq: 7, ack: 9, payload: payload)
        expectOutbound(original: original, translated: packet, expected: expected)
        #expect(Array(packet.suffix(333)) == payload)
    }

    @Test(arguments: [false, true])
    func udp(notReady: Bool) {
        let nat = makeTranslator()
        let payload: [UInt8] = Array("a DNS query, more or less".utf8) // odd length
        let original = PacketBuilder.udp(Net.hostA, 40000, Net.remote, 53, payload: payload, checksum: notReady ? .notReady : .valid)
        var packet = original
        #expect(nat.run(&packet, .outbound, notReady: notReady) == .acceptRewritten)
        let expected = PacketBuilder.udp(Net.external, 40000, Net.remote, 53, payload: payload)
        expectOutbound(original: original, translated: packet, expected: expected)
    }

    @Test func udpWithoutChecksumKeepsZero() {
        let nat = makeTranslator()
        let original = PacketBuilder.udp(Net.hostA, 40000, Net.remote, 53, checksum: .zero)
        var packet = original
        #expect(nat.run(&packet, .outbound) == .acceptRewritten)
        let expected = PacketBuilder.udp(Net.external, 40000, Net.remote, 53, checksum: .zero)
        #expect(packet == expected)
        #expect(Verify.be16(packet, 26) == 0)
        #expect(Verify.ipHeaderChecksumValid(packet))
    }

    /// A translated UDP checksum that computes to 0 must be sent as 0xffff (RFC 768).
    @Test(arguments: [false, true])
    func udpChecksumComputingToZeroIsSentAsFFFF(notReady: Bool) {
        // Choose the last payload word so the translated datagram sums to 0xffff.
        let probe = PacketBuilder.udp(Net.external, 40000, Net.remote, 53, payload: [0x11, 0x22, 0, 0], checksum: .raw(0))
        let pseudo = RefChecksum.pseudoHeader(source: Net.external, destination: Net.remote, protocolNumber: 17, length: 12)
        let fill = ~RefChecksum.sum(pseudo + Array(probe[20...]))
        let payload: [UInt8] = [0x11, 0x22, UInt8(fill >> 8), UInt8(fill & 0xff)]
        let check = RefChecksum.sum(pseudo + Array(PacketBuilder.udp(Net.external, 40000, Net.remote, 53, payload: payload, checksum: .raw(0))[20...]))
        #expect(check == 0xffff) // the test's own premise

        let nat = makeTranslator()
        let original = PacketBuilder.udp(Net.hostA, 40000, Net.remote, 53, payload: payload, checksum: notReady ? .notReady : .valid)
        #expect(Verify.be16(original, 26) != 0xffff || notReady) // before translation it is an ordinary value
        var packet = original
        #expect(nat.run(&packet, .outbound, notReady: notReady) == .acceptRewritten)
        #expect(Verify.be16(packet, 26) == 0xffff)
        #expect(Verify.transportChecksumValid(packet))
        #expect(packet == PacketBuilder.udp(Net.external, 40000, Net.remote, 53, payload: payload))
    }

    /// A TCP checksum that becomes 0x0000 stays 0x0000 (only UDP remaps 0).
    @Test func tcpChecksumComputingToZero() {
        let probe = PacketBuilder.tcp(Net.external, 40000, Net.remote, 80, flags: TCPFlag.ack, payload: [0, 0], checksum: .raw(0))
        let pseudo = RefChecksum.pseudoHeader(source: Net.external, destination: Net.remote, protocolNumber: 6, length: 22)
        let fill = ~RefChecksum.sum(pseudo + Array(probe[20...]))
        let payload: [UInt8] = [UInt8(fill >> 8), UInt8(fill & 0xff)]
        let expected = PacketBuilder.tcp(Net.external, 40000, Net.remote, 80, flags: TCPFlag.ack, payload: payload)
        #expect(Verify.be16(expected, 36) == 0x0000)

        let nat = makeTranslator()
        var packet = PacketBuilder.tcp(Net.hostA, 40000, Net.remote, 80, flags: TCPFlag.ack, payload: payload)
        #expect(nat.run(&packet, .outbound) == .acceptRewritten)
        #expect(packet == expected)
        #expect(Verify.transportChecksumValid(packet))
    }

    /// The full path sums only the UDP length, not bytes after the datagram inside the IP packet.
    @Test func udpShorterThanIPPayloadNotReady() {
        let nat = makeTranslator()
        let extra: [UInt8] = [0xde, 0xad, 0xbe, 0xef]
        let original = PacketBuilder.udp(Net.hostA, 40000, Net.remote, 53, payload: [1, 2, 3], checksum: .notReady, extra: extra)
        var packet = original
        #expect(nat.run(&packet, .outbound, notReady: true) == .acceptRewritten)
        #expect(packet == PacketBuilder.udp(Net.external, 40000, Net.remote, 53, payload: [1, 2, 3], extra: extra))
        #expect(Verify.transportChecksumValid(packet))
    }

    @Test(arguments: [false, true])
    func icmpEcho(notReady: Bool) {
        let nat = makeTranslator()
        let original = PacketBuilder.icmp(Net.hostA, Net.remote, identifier: 0x1f2e, sequence: 3, checksum: notReady ? .notReady : .valid)
        var packet = original
        #expect(nat.run(&packet, .outbound, notReady: notReady) == .acceptRewritten)
        let expected = PacketBuilder.icmp(Net.external, Net.remote, identifier: 0x1f2e, sequence: 3)
        expectOutbound(original: original, translated: packet, expected: expected)
        #expect(sourcePort(packet) == 0x1f2e)
    }

    @Test func ipOptionsAreSkipped() {
        let nat = makeTranslator()
        let options: [UInt8] = [0x94, 0x04, 0x00, 0x00] // router alert
        let original = PacketBuilder.tcp(Net.hostA, 40000, Net.remote, 80, payload: [1, 2, 3], ip: IPv4Fields(options: options))
        var packet = original
        #expect(nat.run(&packet, .outbound) == .acceptRewritten)
        let expected = PacketBuilder.tcp(Net.external, 40000, Net.remote, 80, payload: [1, 2, 3], ip: IPv4Fields(options: options))
        expectOutbound(original: original, translated: packet, expected: expected)
        #expect(Array(packet[20..<24]) == options)
    }

    @Test func trailingLinkPaddingIsUntouched() {
        let nat = makeTranslator()
        let fields = IPv4Fields(trailing: [0xaa, 0xbb, 0xcc])
        var packet = PacketBuilder.udp(Net.hostA, 40000, Net.remote, 53, checksum: .notReady, ip: fields)
        #expect(nat.run(&packet, .outbound, notReady: true) == .acceptRewritten)
        #expect(packet == PacketBuilder.udp(Net.external, 40000, Net.remote, 53, ip: fields))
    }

    /// A TCP GSO super-packet flagged not-ready keeps an incremental update: the kernel
    /// recomputes the pseudo-header itself when it segments.
    @Test func tcpGSONotReadyChangesOnlyPortsAndAddresses() {
        let nat = makeTranslator()
        let original = PacketBuilder.tcp(Net.hostA, 40000, Net.remote, 80, flags: TCPFlag.ack, payload: [UInt8](repeating: 7, count: 3000), checksum: .notReady)
        var packet = original
        #expect(nat.run(&packet, .outbound, notReady: true, gso: true) == .acceptRewritten)
        #expect(sourceAddress(packet) == Net.external)
        #expect(Verify.ipHeaderChecksumValid(packet))
        let allowed = allowedOutboundChanges(original)
        for i in 0..<original.count where !allowed.contains(i) { #expect(packet[i] == original[i]) }
    }

    @Test func sourceOutsideInternalPrefixesIsPassedUnchanged() {
        let nat = makeTranslator()
        for source in [Net.outsider, Net.external] {
            let original = PacketBuilder.udp(source, 40000, Net.remote, 53)
            expectUnchanged(nat, original, .outbound)
        }
        #expect(nat.counters[.outboundNotInternal] == 2)
        #expect(nat.mappingCount == 0 && nat.sessionCount == 0)
    }

    @Test func emptyPrefixListTranslatesEverySourceButTheExternalAddress() {
        let nat = makeTranslator(internalPrefixes: [])
        var packet = PacketBuilder.udp(Net.outsider, 40000, Net.remote, 53)
        #expect(nat.run(&packet, .outbound) == .acceptRewritten)
        #expect(sourceAddress(packet) == Net.external)
        var own = PacketBuilder.udp(Net.external, 40001, Net.remote, 53)
        let ownCopy = own
        #expect(nat.run(&own, .outbound) == .accept)
        #expect(own == ownCopy)
    }

    /// Many random packets: the output equals an independently built packet with the
    /// external address and the port the NAT reports, whichever checksum path was taken.
    @Test func randomPacketsMatchReference() {
        var rng = SeededRNG(seed: 4242)
        let nat = makeTranslator { $0.maxSessions = 4096; $0.maxMappings = 4096 }
        let hosts = [Net.hostA, Net.hostB, Net.hostC]
        for round in 0..<1500 {
            let host = hosts.randomElement(using: &rng)!
            let remote = IPv4Bytes(bytes: [203, 0, 113, UInt8.random(in: 2...250, using: &rng)])
            let sport = UInt16.random(in: 1...65535, using: &rng)
            let dport = UInt16.random(in: 1...65535, using: &rng)
            let payload = rng.bytes(Int.random(in: 0...120, using: &rng))
            let notReady = Bool.random(using: &rng)
            let kind = round % 3
            let seq = UInt32.random(in: 0...UInt32.max, using: &rng)
            let original: [UInt8]
            switch kind {
            case 0: original = PacketBuilder.tcp(host, sport, remote, dport, flags: TCPFlag.ack, seq: seq, payload: payload, checksum: notReady ? .notReady : .valid)
            case 1: original = PacketBuilder.udp(host, sport, remote, dport, payload: payload, checksum: notReady ? .notReady : .valid)
            default: original = PacketBuilder.icmp(host, remote, identifier: sport, payload: payload, checksum: notReady ? .notReady : .valid)
            }
            var packet = original
            #expect(nat.run(&packet, .outbound, notReady: notReady) == .acceptRewritten)
            let port = sourcePort(packet)
            let expected: [UInt8]
            switch kind {
            case 0: expected = PacketBuilder.tcp(Net.external, port, remote, dport, flags: TCPFlag.ack, seq: seq, payload: payload)
            case 1: expected = PacketBuilder.udp(Net.external, port, remote, dport, payload: payload)
            default: expected = PacketBuilder.icmp(Net.external, remote, identifier: port, payload: payload)
            }
            #expect(packet == expected, "round \(round) kind \(kind) notReady \(notReady)")
            if kind != 2 {
                #expect((sport < 1024) == (port < 1024), "port class kept")
            }
        }
    }
}
