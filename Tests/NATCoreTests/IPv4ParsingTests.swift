import NATTestKit
import Testing
@testable import NATCore

/// Parses and reports (error or (header length, packet length, transport length)).
private func parse(_ bytes: [UInt8]) -> Result<(Int, Int, Int), IPv4ParseError> {
    var copy = bytes
    return copy.withUnsafeMutableBytes { buffer in
        IPv4Packet.parse(buffer.baseAddress!, count: buffer.count).map { packet in
            (packet.header.headerLength, packet.length, packet.transportLength)
        }
    }
}

private func parseError(_ bytes: [UInt8]) -> IPv4ParseError? {
    if case .failure(let e) = parse(bytes) { return e }
    return nil
}

@Suite struct IPv4ParsingTests {
    let good = PacketBuilder.udp(Net.hostA, 40000, Net.remote, 53, payload: [1, 2, 3, 4])

    @Test func validPacketParses() throws {
        let (ihl, length, l4) = try parse(good).get()
        #expect(ihl == 20)
        #expect(length == good.count)
        #expect(l4 == good.count - 20)
    }

    @Test func tooShort() {
        for n in 0..<20 {
            var bytes = Array(good.prefix(n))
            if n == 0 {
                // An empty buffer: the translator must not even look.
                let nat = makeTranslator()
                #expect(nat.run(&bytes, .outbound) == .drop(.malformedIPv4))
                continue
            }
            #expect(parseError(bytes) == .tooShort)
        }
    }

    @Test func notVersion4() {
        var v6 = good
        v6[0] = 0x65
        #expect(parseError(v6) == .notVersion4)
        var v0 = good
        v0[0] = 0x05
        #expect(parseError(v0) == .notVersion4)
    }

    @Test func headerLengthBelowFive() {
        for ihl in 0..<5 {
            var bytes = good
            bytes[0] = 0x40 | UInt8(ihl)
            #expect(parseError(bytes) == .badHeaderLength, "IHL \(ihl)")
        }
    }

    @Test func headerLengthBeyondBuffer() {
        // IHL 15 = 60 bytes, buffer 33 bytes.
        var bytes = good
        bytes[0] = 0x4f
        #expect(parseError(bytes) == .badHeaderLength)
        // Exactly the buffer is fine for the header (then total length decides).
        var exact = Array(good.prefix(24))
        exact[0] = 0x46
        exact[2] = 0
        exact[3] = 24
        let result = try? parse(exact).get()
        #expect(result?.0 == 24 && result?.2 == 0)
    }

    @Test func totalLengthSmallerThanHeader() {
        var bytes = good
        bytes[2] = 0
        bytes[3] = 19
        #expect(parseError(bytes) == .badTotalLength)
        var withOptions = PacketBuilder.udp(Net.hostA, 1, Net.remote, 2, ip: IPv4Fields(options: [1, 1, 1, 1]))
        withOptions[2] = 0
        withOptions[3] = 20 // < IHL 24
        #expect(parseError(withOptions) == .badTotalLength)
    }

    @Test func totalLengthLargerThanBuffer() {
        var bytes = good
        let total = good.count + 1
        bytes[2] = UInt8(total >> 8)
        bytes[3] = UInt8(total & 0xff)
        #expect(parseError(bytes) == .badTotalLength)
    }

    @Test func trailingPaddingIsAcceptedAndIgnored() throws {
        let padded = PacketBuilder.udp(Net.hostA, 40000, Net.remote, 53, payload: [9],
                                       ip: IPv4Fields(trailing: [0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff]))
        let (_, length, l4) = try parse(padded).get()
        #expect(length == padded.count - 6)
        #expect(l4 == 9)
    }

    @Test func optionsIHL6() throws {
        let packet = PacketBuilder.tcp(Net.hostA, 40000, Net.remote, 80, ip: IPv4Fields(options: [0x94, 0x04, 0x00, 0x00]))
        #expect(packet[0] == 0x46)
        let (ihl, length, l4) = try parse(packet).get()
        #expect(ihl == 24)
        #expect(length == 44)
        #expect(l4 == 20)
    }

    @Test func malformedIPv4IsDroppedAndCountedBothWays() {
        let nat = makeTranslator()
        var short = Array(good.prefix(19))
        var v6 = good
        v6[0] = 0x60
        for direction in [PacketDirection.outbound, .inbound] {
            var a = short, b = v6
            #expect(nat.run(&a, direction) == .drop(.malformedIPv4))
            #expect(nat.run(&b, direction) == .drop(.malformedIPv4))
            #expect(a == short && b == v6)
        }
        short.removeAll()
        #expect(nat.counters.drops(.malformedIPv4) == 4)
        #expect(nat.counters.totalDrops == 4)
    }

    @Test func headerAccessors() {
        var packet = PacketBuilder.tcp(Net.hostA, 1234, Net.remote, 80,
                                       ip: IPv4Fields(tos: 0x10, identification: 0xabcd, flagsAndFragment: 0x2000 | 3, ttl: 17))
        packet.withUnsafeMutableBytes { buffer in
            let h = IPv4Header(unchecked: buffer.baseAddress!)
            #expect(h.version == 4)
            #expect(h.headerLength == 20)
            #expect(h.totalLength == 40)
            #expect(h.identification == 0xabcd)
            #expect(h.moreFragments && !h.dontFragment)
            #expect(h.fragmentOffset == 24)
            #expect(h.isFragment)
            #expect(h.timeToLive == 17)
            #expect(h.protocolNumber == 6)
            #expect(h.source == IPv4Address(192, 0, 2, 10))
            #expect(h.destination == IPv4Address(203, 0, 113, 2))
            #expect(h.headerChecksumIsValid)
        }
    }
}
