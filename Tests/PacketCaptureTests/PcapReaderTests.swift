import PacketCapture
import Testing

// Classic pcap read back field by field, both byte orders, both timestamp resolutions.

@Suite("pcap reader")
struct PcapReaderTests {
    static let frameA: [UInt8] = Array(0..<60)
    static let frameB: [UInt8] = [0xde, 0xad, 0xbe, 0xef]

    @Test("microsecond magic, both byte orders", arguments: [Order.big, .little])
    func microseconds(order: Order) throws {
        var file = CaptureBytes.pcapHeader(order, magic: 0xa1b2_c3d4, linkType: 1)
        file.pcapRecord(seconds: 1_700_000_000, fraction: 123_456, data: Self.frameA)
        file.pcapRecord(seconds: 1_700_000_001, fraction: 999_999, data: Self.frameB, originalLength: 1514)
        var reader = try CaptureReader(file.bytes)
        #expect(reader.format == .pcap(nanosecondTimestamps: false, bigEndian: order == .big))
        let first = try #require(try reader.next())
        #expect(first.timestampNanoseconds == 1_700_000_000_123_456_000)
        #expect(first.linkType == .ethernet)
        #expect(first.interfaceIndex == 0)
        #expect(first.interfaceName == nil)
        #expect(first.section == 0)
        #expect(Array(first.data) == Self.frameA)
        #expect(first.data.startIndex == 24 + 16)
        #expect(first.originalLength == 60)
        #expect(first.fileOffset == 24)
        #expect(!first.isCutShort)
        let second = try #require(try reader.next())
        #expect(second.timestampNanoseconds == 1_700_000_001_999_999_000)
        #expect(Array(second.data) == Self.frameB)
        #expect(second.originalLength == 1514)
        #expect(second.isCutShort)
        #expect(second.fileOffset == 24 + 16 + 60)
        #expect(try reader.next() == nil)
        #expect(try reader.next() == nil)
    }

    @Test("nanosecond magic, both byte orders", arguments: [Order.big, .little])
    func nanoseconds(order: Order) throws {
        var file = CaptureBytes.pcapHeader(order, magic: 0xa1b2_3c4d, linkType: 101)
        file.pcapRecord(seconds: 5, fraction: 999_999_999, data: Self.frameB)
        var reader = try CaptureReader(file.bytes)
        #expect(reader.format == .pcap(nanosecondTimestamps: true, bigEndian: order == .big))
        let packet = try #require(try reader.next())
        #expect(packet.timestampNanoseconds == 5_999_999_999)
        #expect(packet.linkType == .raw)
        #expect(try reader.next() == nil)
    }

    @Test("the link type is the low 16 bits of its field (the FCS bits above are ignored)")
    func linkTypeFCSBits() throws {
        var file = CaptureBytes.pcapHeader(.little, linkType: 0x1400_0000 | 113)
        file.pcapRecord(seconds: 0, fraction: 0, data: [])
        let packets = try CaptureReader.readAll(file.bytes)
        #expect(packets.map(\.linkType) == [.linuxSLL])
        #expect(packets[0].data.isEmpty)
    }

    @Test("a file header alone has no packets")
    func empty() throws {
        #expect(try CaptureReader.readAll(CaptureBytes.pcapHeader(.big).bytes).isEmpty)
    }
}
