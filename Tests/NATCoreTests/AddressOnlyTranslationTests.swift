import NATTestKit
import Testing
@testable import NATCore

// Address-only NAT for the protocols without ports (issue #14). Every expected packet is
// built whole by the test kit (RefChecksum for every checksum) with the addresses it should
// have, and compared byte for byte with what the translator made.

@Suite("Address-only NAT (ESP, GRE, DCCP, 253...)")
struct AddressOnlyTranslationTests {
    static let esp: UInt8 = 50
    static let gre: UInt8 = 47
    static let dccp: UInt8 = 33
    /// ESP: SPI, sequence number, then opaque bytes.
    static let espPayload: [UInt8] = [0x12, 0x34, 0x56, 0x78, 0, 0, 0, 1] + Array("encrypted".utf8)
    /// Plain GRE (no checksum, key or sequence), carrying IPv4 (0x0800).
    static let grePayload: [UInt8] = [0x00, 0x00, 0x08, 0x00] + [UInt8](repeating: 0xab, count: 24)

    func packet(_ source: IPv4Bytes, _ destination: IPv4Bytes, _ protocolNumber: UInt8, _ payload: [UInt8],
                fields: IPv4Fields = IPv4Fields()) -> [UInt8] {
        PacketBuilder.ipv4(source: source, destination: destination, protocolNumber: protocolNumber, transport: payload, fields: fields)
    }

    /// A DCCP-Request-like header (ports, data offset 4 words, CsCov 0: the checksum covers
    /// all of it) with its checksum over the pseudo-header, by RefChecksum.
    func dccp(_ source: IPv4Bytes, _ destination: IPv4Bytes) -> [UInt8] {
        var header: [UInt8] = [0x9c, 0x40, 0x00, 0x50, 4, 0, 0, 0, 0x01, 0, 0, 0, 0, 0, 0, 7]
        let sum = RefChecksum.checksum(RefChecksum.pseudoHeader(source: source, destination: destination, protocolNumber: Self.dccp,
                                                                length: header.count) + header)
        header[6] = UInt8(sum >> 8); header[7] = UInt8(sum & 0xff)
        return packet(source, destination, Self.dccp, header)
    }

    @Test("ESP out and its answer back: only the addresses change, header checksum right, every other byte kept")
    func espBothWays() {
        let nat = makeTranslator()
        var out = packet(Net.hostA, Net.remote, Self.esp, Self.espPayload)
        #expect(nat.run(&out, .outbound) == .acceptRewritten)
        #expect(out == packet(Net.external, Net.remote, Self.esp, Self.espPayload))
        #expect(Verify.ipHeaderChecksumValid(out))

        var back = packet(Net.remote, Net.external, Self.esp, Self.espPayload.reversed())
        #expect(nat.run(&back, .inbound, now: at(10)) == .acceptRewritten)
        #expect(back == packet(Net.remote, Net.hostA, Self.esp, Self.espPayload.reversed()))
        #expect(nat.counters[.outboundTranslated] == 1 && nat.counters[.inboundTranslated] == 1)
        #expect(nat.counters[.addressOnlyFlowsCreated] == 1)
        #expect(nat.addressOnlyFlowCount == 1 && nat.sessionCount == 0 && nat.mappingCount == 0)
        // The answer renewed it: 600 s from the last packet.
        #expect(nat.snapshots(now: at(10)).map(\.description) == ["esp 192.0.2.10 -> 203.0.113.2 via 203.0.113.1 expires 600s"])
    }

    @Test("a second LAN host to the same (protocol, remote) is refused and counted; other remotes and protocols are free")
    func secondHostRefused() {
        let nat = makeTranslator()
        var a = packet(Net.hostA, Net.remote, Self.esp, Self.espPayload)
        #expect(nat.run(&a, .outbound) == .acceptRewritten)
        var b = packet(Net.hostB, Net.remote, Self.esp, Self.espPayload)
        let original = b
        #expect(nat.run(&b, .outbound, now: at(1)) == .drop(.addressOnlyRemoteInUse))
        #expect(b == original)
        #expect(nat.counters.drops(.addressOnlyRemoteInUse) == 1)
        var other = packet(Net.hostB, Net.remote2, Self.esp, Self.espPayload)
        #expect(nat.run(&other, .outbound, now: at(1)) == .acceptRewritten)
        var gre = packet(Net.hostB, Net.remote, Self.gre, Self.grePayload)
        #expect(nat.run(&gre, .outbound, now: at(1)) == .acceptRewritten)
        #expect(gre == packet(Net.external, Net.remote, Self.gre, Self.grePayload))
        // Each remote's answers go to its own host.
        var greBack = packet(Net.remote, Net.external, Self.gre, Self.grePayload)
        #expect(nat.run(&greBack, .inbound, now: at(2)) == .acceptRewritten)
        #expect(greBack == packet(Net.remote, Net.hostB, Self.gre, Self.grePayload))
        var espBack = packet(Net.remote, Net.external, Self.esp, Self.espPayload)
        #expect(nat.run(&espBack, .inbound, now: at(2)) == .acceptRewritten)
        #expect(espBack == packet(Net.remote, Net.hostA, Self.esp, Self.espPayload))
        // Once A's row has timed out (600 s after its last packet, the answer at 2 s), B may take the remote.
        var later = packet(Net.hostB, Net.remote, Self.esp, Self.espPayload)
        #expect(nat.run(&later, .outbound, now: at(601)) == .drop(.addressOnlyRemoteInUse))
        #expect(nat.run(&later, .outbound, now: at(602)) == .acceptRewritten)
        #expect(later == packet(Net.external, Net.remote, Self.esp, Self.espPayload))
        #expect(nat.counters[.addressOnlyFlowsExpired] == 1)
    }

    @Test("inbound with no row (another remote, another protocol) goes to the router's stack unchanged")
    func unmatchedInbound() {
        let nat = makeTranslator()
        var a = packet(Net.hostA, Net.remote, Self.esp, Self.espPayload)
        _ = nat.run(&a, .outbound)
        for probe in [packet(Net.remote2, Net.external, Self.esp, Self.espPayload),
                      packet(Net.remote, Net.external, Self.gre, Self.grePayload),
                      packet(Net.remote, Net.external, 253, [1, 2, 3])] {
            expectUnchanged(nat, probe, .inbound)
        }
        #expect(nat.counters[.inboundUnmatched] == 3)
    }

    @Test("protocol 253 with IP options and an empty payload; the timeout is --timeout other")
    func experimentalProtocolWithOptions() {
        let nat = makeTranslator { $0.timeouts.other = .seconds(30) }
        let fields = IPv4Fields(ttl: 17, options: [0x01, 0x01, 0x01, 0x00]) // NOP NOP NOP EOL
        var out = packet(Net.hostA, Net.remote, 253, [], fields: fields)
        #expect(nat.run(&out, .outbound) == .acceptRewritten)
        #expect(out == packet(Net.external, Net.remote, 253, [], fields: fields))
        var back = packet(Net.remote, Net.external, 253, [9], fields: fields)
        #expect(nat.run(&back, .inbound, now: at(29)) == .acceptRewritten)
        #expect(back == packet(Net.remote, Net.hostA, 253, [9], fields: fields))
        var late = packet(Net.remote, Net.external, 253, [9])
        #expect(nat.run(&late, .inbound, now: at(60)) == .accept) // 29 + 30 s passed
        #expect(nat.addressOnlyFlowCount == 0)
        #expect(nat.counters[.addressOnlyFlowsExpired] == 1)
    }

    @Test("DCCP's pseudo-header checksum follows the address both ways; a header without its checksum field is dropped outbound")
    func dccpChecksum() {
        let nat = makeTranslator()
        var out = dccp(Net.hostA, Net.remote)
        #expect(nat.run(&out, .outbound) == .acceptRewritten)
        #expect(out == dccp(Net.external, Net.remote))
        var back = dccp(Net.remote, Net.external)
        #expect(nat.run(&back, .inbound) == .acceptRewritten)
        #expect(back == dccp(Net.remote, Net.hostA))
        var short = packet(Net.hostA, Net.remote2, Self.dccp, [0x9c, 0x40, 0x00, 0x50, 4, 0])
        #expect(nat.run(&short, .outbound) == .drop(.malformedTransport))
        #expect(nat.addressOnlyFlowCount == 1)
    }

    @Test("ICMP errors quoting address-only packets are translated both ways, every byte as if built for the other side")
    func icmpErrors() {
        let nat = makeTranslator()
        let original = packet(Net.hostA, Net.remote, Self.gre, Self.grePayload)
        var out = original
        _ = nat.run(&out, .outbound)
        // A router on the way: fragmentation needed, quoting what it got.
        let hop = IPv4Bytes(198, 51, 100, 1)
        var error = PacketBuilder.icmpError(code: 4, from: hop, to: Net.external, quoting: Array(out.prefix(28)))
        #expect(nat.run(&error, .inbound) == .acceptRewritten)
        #expect(error == PacketBuilder.icmpError(code: 4, from: hop, to: Net.hostA, quoting: Array(original.prefix(28))))
        #expect(nat.counters[.icmpErrorsInbound] == 1)

        // The LAN host refuses the remote's packet (protocol unreachable): the quote names the WAN address.
        let inbound = packet(Net.remote, Net.external, Self.gre, Self.grePayload)
        var delivered = inbound
        _ = nat.run(&delivered, .inbound)
        var refusal = PacketBuilder.icmpError(code: 2, from: Net.hostA, to: Net.remote, quoting: delivered)
        #expect(nat.run(&refusal, .outbound) == .acceptRewritten)
        #expect(refusal == PacketBuilder.icmpError(code: 2, from: Net.external, to: Net.remote, quoting: inbound))
        #expect(nat.counters[.icmpErrorsOutbound] == 1)

        // An error from another host's point of view matches nothing: not translated, not passed out.
        var stray = PacketBuilder.icmpError(code: 2, from: Net.hostB, to: Net.remote, quoting: packet(Net.remote, Net.hostB, Self.gre, Self.grePayload))
        #expect(nat.run(&stray, .outbound) == .drop(.icmpUnsupported))
        // Errors never renew a row: 600 s after the last real packet it is gone.
        var error2 = PacketBuilder.icmpError(code: 4, from: hop, to: Net.external, quoting: Array(out.prefix(28)))
        #expect(nat.run(&error2, .inbound, now: at(600)) == .accept)
    }

    @Test("DCCP quoted in an error: its checksum inside the quote is fixed too")
    func icmpErrorQuotingDCCP() {
        let nat = makeTranslator()
        let original = dccp(Net.hostA, Net.remote)
        var out = original
        _ = nat.run(&out, .outbound)
        var error = PacketBuilder.icmpError(code: 3, from: Net.remote, to: Net.external, quoting: out)
        #expect(nat.run(&error, .inbound) == .acceptRewritten)
        #expect(error == PacketBuilder.icmpError(code: 3, from: Net.remote, to: Net.hostA, quoting: original))
    }

    @Test("the table's cap: a full table refuses and counts; expired rows make room")
    func capacity() {
        let nat = makeTranslator { $0.maxAddressOnlyFlows = 2 }
        for (i, remote) in [Net.remote, Net.remote2].enumerated() {
            var p = packet(Net.hostA, remote, Self.esp, Self.espPayload)
            #expect(nat.run(&p, .outbound, now: at(UInt64(i))) == .acceptRewritten)
        }
        var third = packet(Net.hostA, Net.outsider, Self.esp, Self.espPayload)
        #expect(nat.run(&third, .outbound, now: at(2)) == .drop(.addressOnlyTableFull))
        #expect(nat.counters.drops(.addressOnlyTableFull) == 1)
        #expect(nat.run(&third, .outbound, now: at(600)) == .acceptRewritten) // the first expired at 600
        #expect(nat.addressOnlyFlowCount == 2)
    }

    @Test("rows count in the host's share (--max-flows-per-host) with its sessions, and give it back when they end")
    func perHostShare() {
        let nat = makeTranslator { $0.maxSessionsPerHost = 2 }
        var udp = PacketBuilder.udp(Net.hostA, 5000, Net.remote, 53)
        #expect(nat.run(&udp, .outbound) == .acceptRewritten)
        var esp = packet(Net.hostA, Net.remote, Self.esp, Self.espPayload)
        #expect(nat.run(&esp, .outbound) == .acceptRewritten)
        var gre = packet(Net.hostA, Net.remote2, Self.gre, Self.grePayload)
        let original = gre
        #expect(nat.run(&gre, .outbound) == .drop(.hostSessionLimit))
        #expect(gre == original)
        var tcp = PacketBuilder.tcp(Net.hostA, 40000, Net.remote, 80, flags: TCPFlag.syn)
        #expect(nat.run(&tcp, .outbound) == .drop(.hostSessionLimit)) // the ESP row holds the second share
        var otherHost = packet(Net.hostB, Net.remote2, Self.gre, Self.grePayload)
        #expect(nat.run(&otherHost, .outbound) == .acceptRewritten)
        // The UDP session ends at 300 s, the ESP row at 600 s (the sweep frees both): A has its shares back.
        #expect(nat.expire(now: at(601), budget: 100) == 1)
        #expect(nat.addressOnlyFlowCount == 0 && nat.sessionCount == 0)
        for remote in [Net.remote, Net.remote2] {
            var again = packet(Net.hostA, remote, Self.gre, Self.grePayload)
            #expect(nat.run(&again, .outbound, now: at(602)) == .acceptRewritten)
        }
    }

    @Test("a WAN address change flushes the rows; hairpinned address-only packets go to the router's stack")
    func flushAndHairpin() {
        let nat = makeTranslator()
        var p = packet(Net.hostA, Net.remote, Self.esp, Self.espPayload)
        _ = nat.run(&p, .outbound)
        var hairpin = packet(Net.hostB, Net.external, Self.esp, Self.espPayload)
        #expect(nat.run(&hairpin, .hairpin) == .accept)
        #expect(nat.counters[.hairpinPassed] == 1)
        nat.setExternalAddress(IPv4Bytes(203, 0, 113, 9).address)
        #expect(nat.addressOnlyFlowCount == 0)
        #expect(nat.counters[.sessionsFlushed] == 1)
    }

    @Test("state file: rows are saved (version 3) and restored, and answers find their host after the restart")
    func stateRoundTrip() throws {
        let nat = makeTranslator()
        var p = packet(Net.hostA, Net.remote, Self.esp, Self.espPayload)
        _ = nat.run(&p, .outbound)
        var q = packet(Net.hostB, Net.remote2, 253, [1])
        _ = nat.run(&q, .outbound, now: at(100))
        let bytes = nat.exportState(now: at(200), savedAt: 5).encoded()
        #expect(bytes[8] == 0 && bytes[9] == 3)
        #expect(Verify.be16(bytes, 52) == 0 && Verify.be16(bytes, 54) == 2)
        let read = try NATStateSnapshot(decoding: bytes)
        #expect(read.addressOnlyFlowCount == 2 && read.encoded() == bytes)

        let fresh = makeTranslator()
        let summary = try fresh.importState(read, downtime: .seconds(450), now: t0)
        #expect(summary.addressOnlyFlowsRestored == 1 && summary.sessionsExpired == 1) // ESP had 400 s left, 253 had 500
        var back = packet(Net.remote2, Net.external, 253, [2])
        #expect(fresh.run(&back, .inbound) == .acceptRewritten)
        #expect(back == packet(Net.remote2, Net.hostB, 253, [2]))
        #expect(fresh.snapshots(now: t0).map(\.description) == ["proto-253 192.0.2.11 -> 203.0.113.3 via 203.0.113.1 expires 600s"])
    }

    @Test("a version 3 record that cannot be right is refused by name")
    func badRecords() throws {
        let nat = makeTranslator()
        var p = packet(Net.hostA, Net.remote, Self.esp, Self.espPayload)
        _ = nat.run(&p, .outbound)
        let bytes = nat.exportState(now: t0, savedAt: 5).encoded()
        let record = bytes.count - 8 - 20
        func refusal(_ offset: Int, _ value: UInt8) -> NATStateError? {
            var b = bytes
            b[record + offset] = value
            let sum = StateFormat.checksum(b[0..<(b.count - 8)])
            for i in 0..<8 { b[b.count - 8 + i] = UInt8(truncatingIfNeeded: sum >> (56 - 8 * UInt64(i))) }
            do { _ = try NATStateSnapshot(decoding: b); return nil } catch { return error }
        }
        #expect(refusal(16, 17) == .invalidRecord(kind: "address-only", index: 0, reason: "protocol 17 has ports"))
        #expect(refusal(19, 1) == .invalidRecord(kind: "address-only", index: 0, reason: "reserved bytes set"))
        var old = bytes
        old[9] = 2 // version 2 had no such records: the count is a reserved field there
        let sum = StateFormat.checksum(old[0..<(old.count - 8)])
        for i in 0..<8 { old[old.count - 8 + i] = UInt8(truncatingIfNeeded: sum >> (56 - 8 * UInt64(i))) }
        #expect(throws: NATStateError.invalidHeader("reserved bytes are not zero")) { try NATStateSnapshot(decoding: old) }
        // And version 3 is only for files with such records.
        let empty = makeTranslator().exportState(now: t0, savedAt: 5).encoded()
        var three = empty
        three[9] = 3
        let sum3 = StateFormat.checksum(three[0..<(three.count - 8)])
        for i in 0..<8 { three[three.count - 8 + i] = UInt8(truncatingIfNeeded: sum3 >> (56 - 8 * UInt64(i))) }
        #expect(empty[9] == 1)
        #expect(throws: NATStateError.invalidHeader("version 3 without pools or address-only records")) { try NATStateSnapshot(decoding: three) }
    }
}
