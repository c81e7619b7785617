import PacketCapture
import Testing

// Every header field the writer writes, checked byte by byte, and round trips through the reader.

@Suite("pcap writer")
struct PcapWriterTests {
    static func le32(_ bytes: [UInt8], _ offset: Int) -> UInt32 {
        UInt32(bytes[offset]) | UInt32(bytes[offset + 1]) << 8 | UInt32(bytes[offset + 2]) << 16 | UInt32(bytes[offset + 3]) << 24
    }

    @Test("file header: nanosecond magic, version 2.4, UTC, snap length 262144, the link type")
    func fileHeader() {
        let writer = PcapWriter(linkType: .linuxSLL2)
        #expect(writer.bytes == [
            0x4d, 0x3c, 0xb2, 0xa1,   // magic 0xa1b23c4d, little-endian
            0x02, 0x00, 0x04, 0x00,   // version 2.4
            0x00, 0x00, 0x00, 0x00,   // thiszone
            0x00, 0x00, 0x00, 0x00,   // sigfigs
            0x00, 0x00, 0x04, 0x00,   // snaplen 262144
            0x14, 0x01, 0x00, 0x00,   // link type 276
        ])
        #expect(writer.packetCount == 0)
    }

    @Test("records: seconds, nanoseconds, captured and original length, header then packet")
    func records() throws {
        var writer = PcapWriter(linkType: .ethernet)
        let header: [UInt8] = Array(repeating: 0xee, count: 14)
        let packet: [UInt8] = [0x45, 0, 0, 20] + Array(repeating: 1, count: 16)
        try writer.append(timestampNanoseconds: 1_700_000_000_987_654_321, linkHeader: header, packet: packet)
        try writer.append(timestampNanoseconds: 3, linkHeader: [UInt8](), packet: packet[0..<4], originalLength: 1500)
        let b = writer.bytes
        #expect(b.count == 24 + 16 + 34 + 16 + 4)
        #expect(Self.le32(b, 24) == 1_700_000_000)
        #expect(Self.le32(b, 28) == 987_654_321)
        #expect(Self.le32(b, 32) == 34)
        #expect(Self.le32(b, 36) == 34)
        #expect(Array(b[40..<54]) == header)
        #expect(Array(b[54..<74]) == packet)
        #expect(Self.le32(b, 74) == 0)
        #expect(Self.le32(b, 78) == 3)
        #expect(Self.le32(b, 82) == 4)
        #expect(Self.le32(b, 86) == 1500)
        #expect(Array(b[90..<94]) == [0x45, 0, 0, 20])
        #expect(writer.packetCount == 2)
    }

    @Test("round trip: what is written reads back the same")
    func roundTrip() throws {
        var writer = PcapWriter(linkType: .raw)
        let packets: [(UInt64, [UInt8], UInt32?)] = [
            (0, [], nil), (1, [0x45], nil), (4_294_967_295_999_999_999, Array(0..<200), 9000), (5_000_000_000, [0x60, 0, 0, 0], nil),
        ]
        for (time, data, original) in packets {
            try writer.append(timestampNanoseconds: time, linkHeader: [UInt8](), packet: data, originalLength: original)
        }
        var reader = try CaptureReader(writer.bytes)
        #expect(reader.format == .pcap(nanosecondTimestamps: true, bigEndian: false))
        for (time, data, original) in packets {
            let packet = try #require(try reader.next())
            #expect(packet.timestampNanoseconds == time)
            #expect(Array(packet.data) == data)
            #expect(packet.originalLength == original ?? UInt32(data.count))
            #expect(packet.linkType == .raw)
        }
        #expect(try reader.next() == nil)
    }

    @Test("timestamps past 2106 and records above the snap length are refused")
    func limits() throws {
        var writer = PcapWriter(linkType: .raw)
        #expect(throws: CaptureError(.timestampOutOfRange, at: 24)) {
            try writer.append(timestampNanoseconds: 4_294_967_296_000_000_000, linkHeader: [UInt8](), packet: [UInt8]())
        }
        #expect(throws: CaptureError(.packetTooLarge(capturedLength: 262_145), at: 24)) {
            try writer.append(timestampNanoseconds: 0, linkHeader: [UInt8](repeating: 0, count: 1), packet: [UInt8](repeating: 0, count: 262_144))
        }
        #expect(writer.bytes.count == 24)
        #expect(writer.packetCount == 0)
    }
}

@Suite("link layer")
struct LinkLayerTests {
    static let ipv4: [UInt8] = [0x45, 0, 0, 20] + Array(repeating: 0, count: 16)

    static func frame(_ header: [UInt8]) -> ArraySlice<UInt8> {
        // A slice that does not start at 0, as the reader hands them out.
        (Array(repeating: 0xff, count: 7) + header + ipv4)[7...]
    }

    @Test("Ethernet, with and without one 802.1Q tag")
    func ethernet() {
        let macs = [UInt8](repeating: 2, count: 12)
        #expect(LinkLayer.locateIPv4(in: Self.frame(macs + [0x08, 0x00]), linkType: .ethernet) == .ipv4(headerLength: 14))
        #expect(LinkLayer.locateIPv4(in: Self.frame(macs + [0x81, 0x00, 0x00, 0x05, 0x08, 0x00]), linkType: .ethernet) == .ipv4(headerLength: 18))
        #expect(LinkLayer.locateIPv4(in: Self.frame(macs + [0x86, 0xdd]), linkType: .ethernet) == .notIPv4)
        #expect(LinkLayer.locateIPv4(in: Self.frame(macs + [0x08, 0x06]), linkType: .ethernet) == .notIPv4)
        #expect(LinkLayer.locateIPv4(in: Self.frame(macs + [0x81, 0x00, 0x00, 0x05, 0x81, 0x00]), linkType: .ethernet) == .notIPv4)
        #expect(LinkLayer.locateIPv4(in: ArraySlice(macs + [0x08]), linkType: .ethernet) == .truncated)
        #expect(LinkLayer.locateIPv4(in: ArraySlice(macs + [0x81, 0x00, 0x00, 0x05, 0x08]), linkType: .ethernet) == .truncated)
    }

    @Test("Linux cooked v1 and v2")
    func cooked() {
        // v1: packet type 4 (outgoing), ARPHRD 1, address length 6, 8 address bytes, protocol.
        let sll: [UInt8] = [0, 4, 0, 1, 0, 6, 2, 2, 2, 2, 2, 2, 0, 0]
        #expect(LinkLayer.locateIPv4(in: Self.frame(sll + [0x08, 0x00]), linkType: .linuxSLL) == .ipv4(headerLength: 16))
        #expect(LinkLayer.locateIPv4(in: Self.frame(sll + [0x86, 0xdd]), linkType: .linuxSLL) == .notIPv4)
        #expect(LinkLayer.locateIPv4(in: ArraySlice(sll + [0x08]), linkType: .linuxSLL) == .truncated)
        // v2: protocol, reserved, interface index, ARPHRD 1, packet type, address length, 8 address bytes.
        let rest: [UInt8] = [0, 0, 0, 0, 0, 3, 0, 1, 0, 6, 2, 2, 2, 2, 2, 2, 0, 0]
        #expect(LinkLayer.locateIPv4(in: Self.frame([0x08, 0x00] + rest), linkType: .linuxSLL2) == .ipv4(headerLength: 20))
        #expect(LinkLayer.locateIPv4(in: Self.frame([0x08, 0x06] + rest), linkType: .linuxSLL2) == .notIPv4)
        #expect(LinkLayer.locateIPv4(in: ArraySlice([0x08, 0x00] + rest.dropLast()), linkType: .linuxSLL2) == .truncated)
    }

    @Test("raw IP (version from the first nibble) and raw IPv4")
    func raw() {
        #expect(LinkLayer.locateIPv4(in: Self.frame([]), linkType: .raw) == .ipv4(headerLength: 0))
        #expect(LinkLayer.locateIPv4(in: ArraySlice([0x60, 0, 0, 0]), linkType: .raw) == .notIPv4)
        #expect(LinkLayer.locateIPv4(in: ArraySlice([]), linkType: .raw) == .truncated)
        #expect(LinkLayer.locateIPv4(in: ArraySlice([0x60]), linkType: .ipv4) == .ipv4(headerLength: 0))
    }

    @Test("other link types are not read")
    func unsupported() {
        #expect(LinkLayer.locateIPv4(in: Self.frame([0, 0, 0, 2]), linkType: LinkType(rawValue: 0)) == .unsupportedLinkType)
        #expect(!LinkType(rawValue: 127).isSupported)
        let allSupported = LinkType.supported.allSatisfy { $0.isSupported }
        #expect(allSupported)
    }
}
