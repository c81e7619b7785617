import NATTestKit
import Testing
@testable import NATCore

// Datagram helpers (issue #13): a helper on a UDP port sees each datagram whole and may edit
// it; the core fixes the UDP length, IP total length and both checksums. Expected packets
// are built independently with PacketBuilder (reference checksums) and compared whole.

/// Asks, for every datagram from inside that reads "MEDIA <port>", for a port pair for
/// that internal port, and rewrites the port to the external one it got.
final class MediaOfferHelper: ApplicationHelper {
    let name = "media"
    /// The remote the media will come from: the signalling peer, or any address.
    let fromAnyAddress: Bool
    init(fromAnyAddress: Bool = false) { self.fromAnyAddress = fromAnyAddress }

    func inspect(_ data: HelperData, _ context: inout HelperContext) -> HelperVerdict {
        let bytes = data.bytes
        guard context.senderIsInternal, context.transport == .datagram, bytes.count > 6,
              Array(bytes[0..<6]) == Array("MEDIA ".utf8) else { return .pass }
        var port: UInt32 = 0
        for i in 6..<bytes.count {
            guard bytes[i] >= 48, bytes[i] <= 57 else { return .pass }
            port = port * 10 + UInt32(bytes[i] - 48)
        }
        guard port > 0, port < 65535,
              let external = context.expectPortPair(from: fromAnyAddress ? nil : context.remoteAddress, port: nil,
                                                    to: context.internalAddress, port: UInt16(port))
        else { return .pass }
        context.replace(6..<bytes.count) { $0.write(decimal: UInt32(external)) }
        return .pass
    }
}

@Suite("Datagram helpers")
struct DatagramHelperTests {
    static func growOnUDP(_ c: inout NATConfiguration) { c.helpers = [HelperRegistration(helper: GrowAtSignsHelper(), ports: [.udp(5000)])] }

    static func through(_ nat: NATTranslator, _ packet: [UInt8], _ direction: PacketDirection, now: NATTime = t0,
                        notReady: Bool = false) -> (TranslationVerdict, [UInt8]) {
        var p = packet
        let verdict = nat.run(&p, direction, notReady: notReady, now: now)
        if case .acceptReplaced(let bytes) = verdict { return (verdict, Array(bytes)) }
        return (verdict, p)
    }

    @Test("an edit that grows the datagram: every byte as a reference packet would have it, checksums included")
    func growingEdit() {
        let nat = makeTranslator(Self.growOnUDP)
        let (verdict, out) = Self.through(nat, PacketBuilder.udp(Net.hostA, 40000, Net.remote, 5000, payload: Array("a@b@".utf8)), .outbound)
        guard case .acceptReplaced = verdict else { Issue.record("verdict \(verdict)"); return }
        let expected = PacketBuilder.udp(Net.external, 40000, Net.remote, 5000, payload: Array("a@@@@b@@@@".utf8))
        #expect(out == expected)
        #expect(Verify.totalLength(out) == 20 + 8 + 10 && Verify.be16(out, 24) == 18)
        #expect(Verify.ipHeaderChecksumValid(out) && Verify.transportChecksumValid(out))
        #expect(nat.helperConnectionCount == 1)
        // The reply is inspected too (from outside: the toy helper edits nothing) and translated.
        let (back, reply) = Self.through(nat, PacketBuilder.udp(Net.remote, 5000, Net.external, 40000, payload: Array("@".utf8)), .inbound)
        #expect(back == .acceptRewritten)
        #expect(reply == PacketBuilder.udp(Net.remote, 5000, Net.hostA, 40000, payload: Array("@".utf8)))
    }

    @Test("a datagram sent without a checksum (0) gets none after an edit; a checksum-not-ready one gets a full one")
    func checksumKinds() {
        let nat = makeTranslator(Self.growOnUDP)
        let (_, zero) = Self.through(nat, PacketBuilder.udp(Net.hostA, 40000, Net.remote, 5000, payload: Array("@".utf8), checksum: .zero),
                                     .outbound)
        #expect(zero == PacketBuilder.udp(Net.external, 40000, Net.remote, 5000, payload: Array("@@@@".utf8), checksum: .zero))
        let (_, partial) = Self.through(nat, PacketBuilder.udp(Net.hostA, 40001, Net.remote, 5000, payload: Array("x@".utf8),
                                                               checksum: .notReady), .outbound, notReady: true)
        #expect(partial == PacketBuilder.udp(Net.external, 40001, Net.remote, 5000, payload: Array("x@@@@".utf8)))
    }

    @Test("padding after the UDP length is not part of the datagram and is not sent on after an edit")
    func paddingDropped() {
        let nat = makeTranslator(Self.growOnUDP)
        let (_, out) = Self.through(nat, PacketBuilder.udp(Net.hostA, 40000, Net.remote, 5000, payload: Array("@".utf8), extra: [0, 0, 0]),
                                    .outbound)
        #expect(out == PacketBuilder.udp(Net.external, 40000, Net.remote, 5000, payload: Array("@@@@".utf8)))
    }

    @Test("the protocol is part of the port: a helper on udp:5000 leaves TCP to 5000 alone, and tcp:5000 leaves UDP alone")
    func protocolsAreApart() {
        let nat = makeTranslator(Self.growOnUDP)
        let (verdict, _) = Self.through(nat, PacketBuilder.tcp(Net.hostA, 40000, Net.remote, 5000, flags: TCPFlag.syn, seq: 1), .outbound)
        #expect(verdict == .acceptRewritten && nat.helperConnectionCount == 0)
        let tcpOnly = makeTranslator { $0.helpers = [HelperRegistration(helper: GrowAtSignsHelper(), ports: [5000])] }
        let (v2, out) = Self.through(tcpOnly, PacketBuilder.udp(Net.hostA, 40000, Net.remote, 5000, payload: Array("@".utf8)), .outbound)
        #expect(v2 == .acceptRewritten && tcpOnly.helperConnectionCount == 0)
        #expect(out == PacketBuilder.udp(Net.external, 40000, Net.remote, 5000, payload: Array("@".utf8)))
        #expect(HelperPort(integerLiteral: 21) == .tcp(21) && "\(HelperPort.udp(69))" == "udp:69")
    }

    @Test("more edits than a datagram may take: the ones past the limit are refused, the datagram stays well formed")
    func editLimit() {
        let nat = makeTranslator(Self.growOnUDP)
        let payload = [UInt8](repeating: UInt8(ascii: "@"), count: HelperLimits.editsPerDatagram + 3)
        let (_, out) = Self.through(nat, PacketBuilder.udp(Net.hostA, 40000, Net.remote, 5000, payload: payload), .outbound)
        let edited = [UInt8](repeating: UInt8(ascii: "@"), count: HelperLimits.editsPerDatagram * 4 + 3)
        #expect(out == PacketBuilder.udp(Net.external, 40000, Net.remote, 5000, payload: edited))
    }

    @Test("a datagram that would grow past 65535 bytes passes unedited, counted as a limit")
    func tooBigToGrow() {
        let nat = makeTranslator(Self.growOnUDP)
        var payload = [UInt8](repeating: UInt8(ascii: "x"), count: 65535 - 28 - 2)
        payload[0] = UInt8(ascii: "@")
        let (verdict, out) = Self.through(nat, PacketBuilder.udp(Net.hostA, 40000, Net.remote, 5000, payload: payload), .outbound)
        #expect(verdict == .acceptRewritten)
        #expect(out == PacketBuilder.udp(Net.external, 40000, Net.remote, 5000, payload: payload))
        #expect(nat.counters.helperEvents(helper: 0, .limit) == 1)
    }

    @Test("the helper's state is freed with the flow: after the UDP timeout the helper table is empty again")
    func stateFreedWithTheFlow() {
        let nat = makeTranslator(Self.growOnUDP)
        _ = Self.through(nat, PacketBuilder.udp(Net.hostA, 40000, Net.remote, 5000), .outbound)
        #expect(nat.helperConnectionCount == 1)
        _ = nat.expire(now: at(301), budget: 4096)
        #expect(nat.helperConnectionCount == 0 && nat.sessionCount == 0 && nat.mappingCount == 0)
    }

    @Test("a port pair: two consecutive external ports (the first even) mapped to the internal pair, media admitted both ways")
    func portPair() {
        let nat = makeTranslator { $0.helpers = [HelperRegistration(helper: MediaOfferHelper(), ports: [.udp(5060)])] }
        let (_, offer) = Self.through(nat, PacketBuilder.udp(Net.hostA, 5060, Net.remote, 5060, payload: Array("MEDIA 4000".utf8)), .outbound)
        // Port preservation: the internal pair was free, so it is kept.
        #expect(offer == PacketBuilder.udp(Net.external, 5060, Net.remote, 5060, payload: Array("MEDIA 4000".utf8)))
        #expect(nat.pendingExpectationCount == 2 && nat.counters.helperEvents(helper: 0, .expectation) == 2)
        // A second phone offering the same internal ports gets another even pair.
        let (_, second) = Self.through(nat, PacketBuilder.udp(Net.hostB, 5060, Net.remote, 5060, payload: Array("MEDIA 4000".utf8)), .outbound)
        let ihl = 20
        let text = String(decoding: second[(ihl + 8)...], as: UTF8.self)
        #expect(text.hasPrefix("MEDIA "))
        let pair = UInt16(text.dropFirst(6))!
        #expect(pair % 2 == 0 && pair != 4000)
        #expect(Verify.ipHeaderChecksumValid(second) && Verify.transportChecksumValid(second))
        #expect(destinationPort(second) == 5060 && sourceAddress(second) == Net.external)

        // RTP and RTCP from the remote (new source ports: any port was expected) reach each phone.
        for (external, host) in [(UInt16(4000), Net.hostA), (pair, Net.hostB)] {
            for offset in [UInt16(0), 1] {
                let (verdict, media) = Self.through(nat, PacketBuilder.udp(Net.remote, 30000 + offset, Net.external, external + offset), .inbound)
                #expect(verdict == .acceptRewritten, "media to \(external + offset)")
                #expect(media == PacketBuilder.udp(Net.remote, 30000 + offset, host, 4000 + offset))
            }
        }
        #expect(nat.pendingExpectationCount == 0 && nat.counters[.expectationsFulfilled] == 4)
        // A stranger sending to a pair is not admitted (the expectation named the remote).
        let (stranger, _) = Self.through(nat, PacketBuilder.udp(Net.outsider, 30000, Net.external, pair), .inbound)
        #expect(stranger == .accept)
        // The phone's own media leaves from the mapped port.
        let (_, rtp) = Self.through(nat, PacketBuilder.udp(Net.hostB, 4001, Net.remote, 30001), .outbound)
        #expect(rtp == PacketBuilder.udp(Net.external, pair + 1, Net.remote, 30001))
    }

    @Test("the same offer again renews its expectations instead of adding more")
    func offerRenewed() {
        let nat = makeTranslator { $0.helpers = [HelperRegistration(helper: MediaOfferHelper(), ports: [.udp(5060)])] }
        for _ in 0..<5 {
            _ = Self.through(nat, PacketBuilder.udp(Net.hostA, 5060, Net.remote, 5060, payload: Array("MEDIA 4000".utf8)), .outbound)
        }
        #expect(nat.pendingExpectationCount == 2 && nat.mappingCount == 3)
        #expect(nat.counters.helperEvents(helper: 0, .expectation) == 2) // renewals are not counted again
        // They expire after the expectation timeout, and their mappings with them.
        _ = Self.through(nat, PacketBuilder.udp(Net.hostA, 5060, Net.remote, 5060, payload: Array("x".utf8)), .outbound, now: at(100))
        _ = nat.expire(now: at(121), budget: 4096)
        #expect(nat.pendingExpectationCount == 0 && nat.mappingCount == 1 && nat.counters[.expectationsExpired] == 2)
    }

    @Test("a pair that cannot stay consecutive is refused and counted; an odd internal port is mapped to an even pair")
    func pairRefused() {
        let nat = makeTranslator { $0.helpers = [HelperRegistration(helper: MediaOfferHelper(), ports: [.udp(5060)])] }
        // The phone's RTCP port already has a mapping of its own (it sent first).
        _ = Self.through(nat, PacketBuilder.udp(Net.hostA, 4001, Net.remote2, 9), .outbound)
        let (_, refused) = Self.through(nat, PacketBuilder.udp(Net.hostA, 5060, Net.remote, 5060, payload: Array("MEDIA 4000".utf8)), .outbound)
        #expect(refused == PacketBuilder.udp(Net.external, 5060, Net.remote, 5060, payload: Array("MEDIA 4000".utf8)))
        #expect(nat.counters.helperEvents(helper: 0, .limit) == 1 && nat.pendingExpectationCount == 0)
        let (_, odd) = Self.through(nat, PacketBuilder.udp(Net.hostB, 5060, Net.remote, 5060, payload: Array("MEDIA 4003".utf8)), .outbound)
        let port = UInt16(String(decoding: odd[28...], as: UTF8.self).dropFirst(6))!
        #expect(port % 2 == 0 && nat.pendingExpectationCount == 2)
    }

    @Test("only the RTP port mapped already (RTCP multiplexed on it): its external port is offered, one expectation added")
    func firstPortAlreadyMapped() {
        let nat = makeTranslator { $0.helpers = [HelperRegistration(helper: MediaOfferHelper(), ports: [.udp(5060)])] }
        // hostA takes external 4000, so hostB's media port 4000 gets another one when it sends first.
        _ = Self.through(nat, PacketBuilder.udp(Net.hostA, 4000, Net.remote2, 9), .outbound)
        let (_, media) = Self.through(nat, PacketBuilder.udp(Net.hostB, 4000, Net.remote2, 9), .outbound)
        let external = sourcePort(media)
        #expect(external != 4000)
        let (_, offer) = Self.through(nat, PacketBuilder.udp(Net.hostB, 5060, Net.remote, 5060, payload: Array("MEDIA 4000".utf8)), .outbound)
        #expect(offer == PacketBuilder.udp(Net.external, 5060, Net.remote, 5060, payload: Array("MEDIA \(external)".utf8)))
        #expect(nat.pendingExpectationCount == 1 && nat.counters.helperEvents(helper: 0, .expectation) == 1)
        let (verdict, rtp) = Self.through(nat, PacketBuilder.udp(Net.remote, 30000, Net.external, external), .inbound)
        #expect(verdict == .acceptRewritten && rtp == PacketBuilder.udp(Net.remote, 30000, Net.hostB, 4000))
    }

    @Test("port pairs from a two-port range: one pair fits, the next is refused")
    func pairAllocation() {
        let table = ExternalPortTable()
        let small = PortAllocator(portRange: 20001...20003, lowPortRange: nil)
        #expect(small.allocatePair(in: table, local: LocalPortMap.none, slot: 1, internalPort: 4000, startHash: 12345) == 20002)
        table.claim(slot: 1, port: 20002, row: 0)
        #expect(small.allocatePair(in: table, local: LocalPortMap.none, slot: 1, internalPort: 4000, startHash: 12345) == nil)
        let odd = PortAllocator(portRange: 20001...20002, lowPortRange: nil)
        #expect(odd.allocatePair(in: table, local: LocalPortMap.none, slot: 1, internalPort: 20001, startHash: 0) == nil)
        // A one-port range at the top: no pair, and no trap computing where pairs start.
        let top = PortAllocator(portRange: 65535...65535, lowPortRange: nil)
        #expect(top.allocatePair(in: table, local: LocalPortMap.none, slot: 1, internalPort: 4000, startHash: 3) == nil)
        let whole = PortAllocator()
        #expect(whole.allocatePair(in: table, local: LocalPortMap.none, slot: 1, internalPort: 65534, startHash: 7) == 65534)
        #expect(whole.allocatePair(in: table, local: LocalPortMap.none, slot: 1, internalPort: 65535, startHash: 7).map { $0 % 2 == 0 && $0 >= 1024 } == true)
    }
}
