import NATTestKit
import Testing
@testable import NATCore

@Suite struct MalformedPacketTests {
    private func expectDrop(_ packet: [UInt8], _ reason: DropReason, notReady: Bool = false, translator: NATTranslator? = nil,
                            sourceLocation: SourceLocation = #_sourceLocation) {
        let nat = translator ?? makeTranslator()
        expectUnchanged(nat, packet, .outbound, verdict: .drop(reason), notReady: notReady, sourceLocation: sourceLocation)
        #expect(nat.counters.drops(reason) >= 1, sourceLocation: sourceLocation)
        #expect(nat.sessionCount == 0 && nat.mappingCount == 0, sourceLocation: sourceLocation)
    }

    /// IP header with a transport part shorter than the header it claims.
    @Test func truncatedTCPHeader() {
        let full = PacketBuilder.tcp(Net.hostA, 40000, Net.remote, 80)
        for keep in 0..<20 {
            let transport = Array(full[20..<(20 + keep)])
            expectDrop(PacketBuilder.ipv4(source: Net.hostA, destination: Net.remote, protocolNumber: 6, transport: transport), .malformedTransport)
        }
    }

    @Test func tcpDataOffsetBeyondLength() {
        var packet = PacketBuilder.tcp(Net.hostA, 40000, Net.remote, 80, payload: [1, 2, 3])
        packet[32] = 0x60 // 24 bytes of header in a 23-byte segment
        expectDrop(packet, .malformedTransport)
        packet[32] = 0x40 // 16 < 20
        expectDrop(packet, .malformedTransport)
        packet[32] = 0x50 // fine again
        let nat = makeTranslator()
        var ok = packet
        #expect(nat.run(&ok, .outbound) == .acceptRewritten)
    }

    @Test func tcpOptionsFillingTheSegmentAreFine() {
        let nat = makeTranslator()
        var packet = PacketBuilder.tcp(Net.hostA, 40000, Net.remote, 80, options: [UInt8](repeating: 1, count: 40))
        #expect(packet[32] == 0xf0)
        #expect(nat.run(&packet, .outbound) == .acceptRewritten)
        #expect(packet == PacketBuilder.tcp(Net.external, 40000, Net.remote, 80, options: [UInt8](repeating: 1, count: 40)))
    }

    @Test func udpLengthField() {
        // Longer than the bytes available, and shorter than a UDP header.
        expectDrop(PacketBuilder.udp(Net.hostA, 40000, Net.remote, 53, payload: [1, 2], lengthField: 11), .malformedTransport)
        expectDrop(PacketBuilder.udp(Net.hostA, 40000, Net.remote, 53, payload: [1, 2], lengthField: 7), .malformedTransport)
        expectDrop(PacketBuilder.udp(Net.hostA, 40000, Net.remote, 53, payload: [1, 2], lengthField: 0), .malformedTransport)
        // Truncated UDP header.
        expectDrop(PacketBuilder.ipv4(source: Net.hostA, destination: Net.remote, protocolNumber: 17, transport: [0x9c, 0x40, 0, 53, 0, 8, 0]), .malformedTransport)
    }

    @Test func truncatedICMPHeader() {
        expectDrop(PacketBuilder.ipv4(source: Net.hostA, destination: Net.remote, protocolNumber: 1, transport: [8, 0, 0, 0, 0, 1, 0]), .malformedTransport)
    }

    @Test func zeroPorts() {
        expectDrop(PacketBuilder.udp(Net.hostA, 0, Net.remote, 53), .zeroPort)
        expectDrop(PacketBuilder.udp(Net.hostA, 40000, Net.remote, 0), .zeroPort)
        expectDrop(PacketBuilder.tcp(Net.hostA, 0, Net.remote, 80), .zeroPort)
        expectDrop(PacketBuilder.tcp(Net.hostA, 40000, Net.remote, 0), .zeroPort)
        // ICMP identifier 0 is a valid identifier.
        let nat = makeTranslator()
        var echo = PacketBuilder.icmp(Net.hostA, Net.remote, identifier: 0)
        #expect(nat.run(&echo, .outbound) == .acceptRewritten)
        #expect(echo == PacketBuilder.icmp(Net.external, Net.remote, identifier: 0))
    }

    @Test(arguments: [UInt8(3), 4, 5, 11, 12, 13, 14])
    func nonQueryICMPOutbound(type: UInt8) {
        expectDrop(PacketBuilder.icmp(Net.hostA, Net.remote, type: type, identifier: 1), .icmpUnsupported)
    }

    /// Protocols without ports get address-only NAT (AddressOnlyTranslationTests): only the source changes.
    @Test(arguments: [UInt8(0), 2, 47, 50, 58, 132, 255])
    func unknownProtocolOutbound(protocolNumber: UInt8) {
        let nat = makeTranslator()
        let payload = [UInt8](repeating: 0x11, count: 24)
        var p = PacketBuilder.ipv4(source: Net.hostA, destination: Net.remote, protocolNumber: protocolNumber, transport: payload)
        #expect(nat.run(&p, .outbound) == .acceptRewritten)
        #expect(p == PacketBuilder.ipv4(source: Net.external, destination: Net.remote, protocolNumber: protocolNumber, transport: payload))
        #expect(nat.counters.totalDrops == 0)
    }

    @Test func fragments() {
        // First fragment (MF), a middle one, the last one (offset, no MF).
        for frag: UInt16 in [0x2000, 0x2000 | 185, 185, 0x4000 | 1] {
            expectDrop(PacketBuilder.udp(Net.hostA, 40000, Net.remote, 53, ip: IPv4Fields(flagsAndFragment: frag)), .fragmentUnsupported)
        }
        // DF alone is not a fragment.
        let nat = makeTranslator()
        var df = PacketBuilder.udp(Net.hostA, 40000, Net.remote, 53, ip: IPv4Fields(flagsAndFragment: 0x4000))
        #expect(nat.run(&df, .outbound) == .acceptRewritten)
        var none = PacketBuilder.udp(Net.hostA, 40001, Net.remote, 53, ip: IPv4Fields(flagsAndFragment: 0))
        #expect(nat.run(&none, .outbound) == .acceptRewritten)
    }

    @Test func noExternalAddress() {
        let nat = makeTranslator(external: nil)
        expectDrop(PacketBuilder.udp(Net.hostA, 40000, Net.remote, 53), .noExternalAddress, translator: nat)
        expectDrop(PacketBuilder.tcp(Net.hostA, 40000, Net.remote, 80), .noExternalAddress, translator: nat)
        #expect(nat.counters.drops(.noExternalAddress) == 2)
        // Inbound with no external address: nothing is ours.
        let original = PacketBuilder.udp(Net.remote, 53, Net.external, 40000)
        expectUnchanged(nat, original, .inbound)
    }

    @Test func dropCountersAddUp() {
        let nat = makeTranslator()
        let packets: [([UInt8], DropReason)] = [
            (PacketBuilder.udp(Net.hostA, 0, Net.remote, 53), .zeroPort),
            (PacketBuilder.icmp(Net.hostA, Net.remote, type: 3, identifier: 1), .icmpUnsupported),
            (PacketBuilder.ipv4(source: Net.hostA, destination: Net.remote, protocolNumber: 136, transport: [0, 0, 0, 0]), .malformedTransport),
            (PacketBuilder.udp(Net.hostA, 1, Net.remote, 53, ip: IPv4Fields(flagsAndFragment: 0x2000)), .fragmentUnsupported),
            (PacketBuilder.udp(Net.hostA, 1, Net.remote, 53, lengthField: 100), .malformedTransport),
        ]
        for (packet, reason) in packets {
            var p = packet
            #expect(nat.run(&p, .outbound) == .drop(reason))
        }
        for (_, reason) in packets {
            #expect(nat.counters.drops(reason) == UInt64(packets.filter { $0.1 == reason }.count), "\(reason)")
        }
        #expect(nat.counters.totalDrops == 5)
        #expect(nat.counters[.outboundTranslated] == 0)
    }

    /// Random garbage and mutated packets in both directions: no crash, untouched bytes unless
    /// rewritten, and a rewritten packet keeps a valid IP header checksum.
    @Test func randomGarbageNeverCrashes() {
        var rng = SeededRNG(seed: 0xbad_c0de)
        let nat = makeTranslator { $0.maxSessions = 256; $0.maxMappings = 256 }
        let seeds: [[UInt8]] = [
            PacketBuilder.tcp(Net.hostA, 40000, Net.remote, 80, payload: [1, 2, 3]),
            PacketBuilder.udp(Net.hostA, 40000, Net.remote, 53),
            PacketBuilder.icmp(Net.hostA, Net.remote, identifier: 9),
            PacketBuilder.tcp(Net.remote, 80, Net.external, 40000, flags: TCPFlag.ack),
            PacketBuilder.udp(Net.remote, 53, Net.external, 40000),
            PacketBuilder.icmp(Net.remote, Net.external, type: 0, identifier: 9),
        ]
        var rewritten = 0
        for round in 0..<6000 {
            var packet: [UInt8]
            switch round % 3 {
            case 0:
                packet = rng.bytes(Int.random(in: 0...80, using: &rng))
                if !packet.isEmpty, Bool.random(using: &rng) { packet[0] = 0x40 | (packet[0] & 0x0f) }
            case 1:
                // A valid packet with a few random bytes changed after the IP header.
                packet = seeds.randomElement(using: &rng)!
                for _ in 0..<Int.random(in: 1...4, using: &rng) {
                    packet[Int.random(in: 20..<packet.count, using: &rng)] = UInt8.random(in: 0...255, using: &rng)
                }
            default:
                // A valid packet cut short or with its header fields mangled.
                packet = seeds.randomElement(using: &rng)!
                let i = Int.random(in: [0, 2, 3, 6, 9, 32].randomElement(using: &rng)!...min(40, packet.count - 1), using: &rng)
                packet[i] = UInt8.random(in: 0...255, using: &rng)
                if Bool.random(using: &rng) { packet.removeLast(Int.random(in: 0...packet.count, using: &rng)) }
            }
            let original = packet
            let headerWasValid = packet.count >= 20 && packet[0] >> 4 == 4 && Verify.headerLength(packet) >= 20
                && Verify.headerLength(packet) <= packet.count && Verify.ipHeaderChecksumValid(packet)
            let direction: PacketDirection = Bool.random(using: &rng) ? .outbound : .inbound
            let verdict = nat.run(&packet, direction, notReady: Bool.random(using: &rng), gso: Bool.random(using: &rng),
                                  now: at(UInt64(round / 10)))
            if verdict == .acceptRewritten {
                rewritten += 1
                #expect(packet.count == original.count)
                if headerWasValid { #expect(Verify.ipHeaderChecksumValid(packet), "round \(round)") }
            } else {
                #expect(packet == original, "round \(round): \(verdict)")
            }
        }
        #expect(rewritten > 100) // the mutated valid packets do get translated
    }
}
