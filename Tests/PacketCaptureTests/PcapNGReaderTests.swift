import PacketCapture
import Testing

// pcapng read back field by field: sections in both byte orders, interfaces with names and
// resolutions, enhanced and simple packets, unknown blocks skipped.

@Suite("pcapng reader")
struct PcapNGReaderTests {
    static let ip: [UInt8] = [0x45, 0, 0, 20, 0, 0, 0x40, 0, 64, 17, 0, 0, 192, 0, 2, 10, 203, 0, 113, 2]

    @Test("one section, two interfaces, enhanced packets", arguments: [Order.big, .little])
    func enhancedPackets(order: Order) throws {
        var file = CaptureBytes(order)
        file.sectionHeader()
        file.interfaceDescription(linkType: 1, snapLength: 262_144, name: "eth1")
        file.interfaceDescription(linkType: 276, name: "any", tsresol: 9)
        let frame = [UInt8](repeating: 0xaa, count: 14) + Self.ip
        file.enhancedPacket(interface: 0, timestamp: 1_700_000_000_000_001, data: frame) // microseconds
        file.block(type: 0x0000_0bad) { $0.raw([1, 2, 3, 4, 5, 6, 7, 8]) }               // skipped
        file.block(type: 5) { $0.u32(0); $0.u32(0); $0.u32(0) }                           // statistics: skipped
        file.enhancedPacket(interface: 1, timestamp: 1_700_000_000_123_456_789, data: Self.ip, originalLength: 1500)
        var reader = try CaptureReader(file.bytes)
        #expect(reader.format == .pcapng)
        let first = try #require(try reader.next())
        #expect(first.timestampNanoseconds == 1_700_000_000_000_001_000)
        #expect(first.linkType == .ethernet)
        #expect(first.interfaceIndex == 0)
        #expect(first.interfaceName == "eth1")
        #expect(first.section == 0)
        #expect(Array(first.data) == frame)
        #expect(first.originalLength == UInt32(frame.count))
        #expect(first.fileOffset == 28 + 32 + 40) // SHB 28, IDB with if_name 32, IDB with both options 40
        let second = try #require(try reader.next())
        #expect(second.timestampNanoseconds == 1_700_000_000_123_456_789)
        #expect(second.linkType == .linuxSLL2)
        #expect(second.interfaceIndex == 1)
        #expect(second.interfaceName == "any")
        #expect(Array(second.data) == Self.ip)
        #expect(second.originalLength == 1500)
        #expect(second.section == 0)
        #expect(second.fileOffset == first.fileOffset + 68 + 20 + 24) // EPB of 34 bytes padded to 36, the two skipped blocks
        #expect(try reader.next() == nil)
    }

    @Test("several sections: byte order and interfaces start over in each")
    func sections() throws {
        var first = CaptureBytes(.little)
        first.sectionHeader()
        first.interfaceDescription(linkType: 1, name: "lan0")
        first.enhancedPacket(interface: 0, timestamp: 10, data: [1, 2, 3])
        var second = CaptureBytes(.big)
        second.sectionHeader(minor: 2)
        second.interfaceDescription(linkType: 101, name: "wan0\0")  // a NUL some writers add
        second.enhancedPacket(interface: 0, timestamp: 20, data: [0x45])
        let packets = try CaptureReader.readAll(first.bytes + second.bytes)
        #expect(packets.count == 2)
        #expect(packets.map(\.section) == [0, 1])
        #expect(packets.map(\.interfaceName) == ["lan0", "wan0"])
        #expect(packets.map(\.linkType) == [.ethernet, .raw])
        #expect(packets.map(\.timestampNanoseconds) == [10_000, 20_000])
        #expect(packets[1].fileOffset == first.bytes.count + 28 + 36)
    }

    @Test("an interface of a previous section is unknown in the next")
    func interfacesResetPerSection() throws {
        var file = CaptureBytes(.little)
        file.sectionHeader()
        file.interfaceDescription(linkType: 1)
        file.sectionHeader()
        let packetOffset = file.bytes.count
        file.enhancedPacket(interface: 0, timestamp: 0, data: [])
        #expect(throws: CaptureError(.unknownInterface(id: 0, described: 0), at: packetOffset + 8)) {
            try CaptureReader.readAll(file.bytes)
        }
    }

    @Test("simple packets: interface 0, no timestamp, cut to the snap length")
    func simplePackets() throws {
        var file = CaptureBytes(.big)
        file.sectionHeader()
        file.interfaceDescription(linkType: 228, snapLength: 4, name: "tun0")
        file.simplePacket(originalLength: 6, data: [0x45, 1, 2, 3, 4, 5])
        file.simplePacket(originalLength: 2, data: [0x45, 9])
        let packets = try CaptureReader.readAll(file.bytes)
        #expect(packets.count == 2)
        #expect(packets[0].timestampNanoseconds == nil)
        #expect(packets[0].linkType == .ipv4)
        #expect(packets[0].interfaceIndex == 0)
        #expect(packets[0].interfaceName == "tun0")
        #expect(Array(packets[0].data) == [0x45, 1, 2, 3])
        #expect(packets[0].originalLength == 6)
        #expect(packets[0].isCutShort)
        #expect(packets[0].section == 0)
        #expect(packets[0].fileOffset == 28 + 32)
        #expect(packets[0].data.startIndex == 28 + 32 + 12)
        // The block is padded to 4 bytes; the original length says where the packet ends.
        #expect(Array(packets[1].data) == [0x45, 9])
        #expect(!packets[1].isCutShort)
    }

    @Test("timestamp resolutions", arguments: [
        (UInt8(6), UInt64(1_500_000), UInt64(1_500_000_000)),      // microseconds (the default's value)
        (UInt8(9), UInt64(123), UInt64(123)),                       // nanoseconds
        (UInt8(3), UInt64(2), UInt64(2_000_000)),                   // milliseconds
        (UInt8(0), UInt64(7), UInt64(7_000_000_000)),               // seconds
        (UInt8(12), UInt64(5_000_001), UInt64(5_000)),              // picoseconds, rounded down
        (UInt8(0x80 | 10), UInt64(1024), UInt64(1_000_000_000)),    // 2^-10 s
        (UInt8(0x80 | 30), UInt64(3) << 30, UInt64(3_000_000_000)), // 2^-30 s
        (UInt8(0x80), UInt64(2), UInt64(2_000_000_000)),            // 2^0 s
    ])
    func resolutions(tsresol: UInt8, units: UInt64, nanoseconds: UInt64) throws {
        var file = CaptureBytes(.little)
        file.sectionHeader()
        file.interfaceDescription(linkType: 1, tsresol: tsresol)
        file.enhancedPacket(interface: 0, timestamp: units, data: [])
        #expect(try CaptureReader.readAll(file.bytes).first?.timestampNanoseconds == nanoseconds)
    }

    @Test("the default resolution is microseconds")
    func defaultResolution() throws {
        var file = CaptureBytes(.little)
        file.sectionHeader()
        file.interfaceDescription(linkType: 1)
        file.enhancedPacket(interface: 0, timestamp: 42, data: [])
        #expect(try CaptureReader.readAll(file.bytes).first?.timestampNanoseconds == 42_000)
    }

    @Test("unknown options are skipped, options after the last are not read")
    func unknownOptions() throws {
        var file = CaptureBytes(.little)
        file.sectionHeader()
        file.block(type: 1) { b in
            b.u16(1); b.u16(0); b.u32(0)
            b.option(1, Array("a comment".utf8))   // opt_comment
            b.option(2, Array("eth0".utf8))
            b.u16(0); b.u16(0)                     // opt_endofopt
            b.option(2, Array("ignored".utf8))
        }
        file.enhancedPacket(interface: 0, timestamp: 0, data: [])
        #expect(try CaptureReader.readAll(file.bytes).first?.interfaceName == "eth0")
    }
}
