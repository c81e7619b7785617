import PacketCapture
import Testing

// Every malformed case ends in its named error at the byte where the fault is.

private func expectError(_ bytes: [UInt8], _ problem: CaptureProblem, at offset: Int,
                         sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(throws: CaptureError(problem, at: offset), sourceLocation: sourceLocation) {
        _ = try CaptureReader.readAll(bytes)
    }
}

@Suite("malformed pcap")
struct MalformedPcapTests {
    @Test("too short for a magic number")
    func noMagic() {
        expectError([], .truncatedFileHeader(needed: 4, available: 0), at: 0)
        expectError([0xa1, 0xb2, 0xc3], .truncatedFileHeader(needed: 4, available: 3), at: 0)
    }

    @Test("a magic number but no whole file header")
    func shortHeader() {
        expectError(Array(CaptureBytes.pcapHeader(.big).bytes.prefix(23)), .truncatedFileHeader(needed: 24, available: 23), at: 0)
    }

    @Test("neither pcap nor pcapng")
    func unknownMagic() {
        expectError(Array("GET / HTTP/1.1\r\n".utf8), .unknownFormat(magic: 0x4745_5420), at: 0)
    }

    @Test("unsupported versions", arguments: [(UInt16(3), UInt16(0)), (1, 0), (2, 5)])
    func versions(major: UInt16, minor: UInt16) {
        expectError(CaptureBytes.pcapHeader(.little, major: major, minor: minor).bytes,
                    .unsupportedVersion(major: major, minor: minor), at: 4)
    }

    @Test("the file ends inside a record header")
    func truncatedRecordHeader() {
        var file = CaptureBytes.pcapHeader(.big)
        file.pcapRecord(seconds: 1, fraction: 0, data: [1, 2])
        file.raw([0, 0, 0, 1, 0, 0, 0, 0, 0, 0])
        expectError(file.bytes, .truncatedRecordHeader(available: 10), at: 24 + 18)
    }

    @Test("a captured length that overruns the file")
    func overrun() {
        var file = CaptureBytes.pcapHeader(.little)
        file.pcapRecord(seconds: 1, fraction: 0, data: Array(repeating: 7, count: 50), capturedLength: 100)
        expectError(file.bytes, .packetOverrunsFile(capturedLength: 100, available: 50), at: 24)
    }

    @Test("absurd captured lengths are refused before anything is read", arguments: [UInt32(262_145), 0x7fff_ffff, 0xffff_ffff])
    func absurd(length: UInt32) {
        var file = CaptureBytes.pcapHeader(.big)
        file.pcapRecord(seconds: 1, fraction: 0, data: [], capturedLength: length)
        expectError(file.bytes, .packetTooLarge(capturedLength: length), at: 24)
    }

    @Test("a good packet, then a bad one: the error names the second record")
    func goodThenBad() {
        var file = CaptureBytes.pcapHeader(.little)
        file.pcapRecord(seconds: 1, fraction: 0, data: [1, 2, 3, 4])
        file.pcapRecord(seconds: 1, fraction: 0, data: [1], capturedLength: 2)
        expectError(file.bytes, .packetOverrunsFile(capturedLength: 2, available: 1), at: 24 + 20)
    }
}

@Suite("malformed pcapng")
struct MalformedPcapNGTests {
    static func section(_ order: Order = .little) -> CaptureBytes {
        var file = CaptureBytes(order)
        file.sectionHeader()
        return file
    }

    @Test("a section header magic with too few bytes")
    func shortFile() {
        expectError([0x0a, 0x0d, 0x0d, 0x0a, 0, 0, 0, 28], .truncatedFileHeader(needed: 28, available: 8), at: 0)
    }

    @Test("a bad byte-order magic")
    func byteOrder() {
        var file = CaptureBytes(.big)
        file.block(type: 0x0a0d_0d0a) { b in b.u32(0x1a2b_3c4e); b.u16(1); b.u16(0); b.u32(0); b.u32(0) }
        expectError(file.bytes, .badByteOrderMagic(0x1a2b_3c4e), at: 8)
    }

    @Test("an unsupported section version")
    func version() {
        var file = CaptureBytes(.little)
        file.sectionHeader(major: 2, minor: 0)
        expectError(file.bytes, .unsupportedVersion(major: 2, minor: 0), at: 12)
    }

    @Test("a section header too short for its fields")
    func shortSection() {
        var file = CaptureBytes(.little)
        file.block(type: 0x0a0d_0d0a) { b in b.u32(0x1a2b_3c4d); b.u16(1); b.u16(0) }
        expectError(file.bytes, .blockTooShort(type: 0x0a0d_0d0a, length: 20), at: 0)
    }

    @Test("block lengths below 12 or not a multiple of 4", arguments: [UInt32(0), 8, 13, 30])
    func badLength(length: UInt32) {
        var file = Self.section()
        let start = file.bytes.count
        file.block(type: 0x0bad, lengthOverride: length) { $0.raw([0, 0, 0, 0, 0, 0, 0, 0]) }
        expectError(file.bytes, .badBlockLength(length), at: start + 4)
    }

    @Test("block lengths that overrun the file", arguments: [UInt32(24), 0xffff_fffc])
    func overrun(length: UInt32) {
        var file = Self.section()
        let start = file.bytes.count
        file.block(type: 0x0bad, lengthOverride: length) { $0.raw([1, 2, 3, 4]) }
        expectError(file.bytes, .blockOverrunsFile(length: length, available: 16), at: start)
    }

    @Test("the trailing length differs from the leading one")
    func mismatch() {
        var file = Self.section(.big)
        let start = file.bytes.count
        file.block(type: 0x0bad, trailingOverride: 20) { $0.raw([1, 2, 3, 4]) }
        expectError(file.bytes, .blockLengthMismatch(leading: 16, trailing: 20), at: start + 12)
    }

    @Test("the file ends inside a block header")
    func truncatedBlockHeader() {
        var file = Self.section()
        let start = file.bytes.count
        file.raw([6, 0, 0, 0, 32, 0, 0, 0])
        expectError(file.bytes, .truncatedBlockHeader(available: 8), at: start)
    }

    @Test("blocks too short for their fields")
    func shortBlocks() {
        var idb = Self.section()
        let idbStart = idb.bytes.count
        idb.block(type: 1) { $0.u32(1) }
        expectError(idb.bytes, .blockTooShort(type: 1, length: 16), at: idbStart)

        var epb = Self.section()
        epb.interfaceDescription(linkType: 1)
        let epbStart = epb.bytes.count
        epb.block(type: 6) { b in b.u32(0); b.u32(0); b.u32(0) }
        expectError(epb.bytes, .blockTooShort(type: 6, length: 24), at: epbStart)

        var spb = Self.section()
        spb.interfaceDescription(linkType: 1)
        let spbStart = spb.bytes.count
        spb.block(type: 3) { _ in }
        expectError(spb.bytes, .blockTooShort(type: 3, length: 12), at: spbStart)
    }

    @Test("an enhanced packet longer than its block")
    func packetOverrunsBlock() {
        var file = Self.section()
        file.interfaceDescription(linkType: 1)
        let start = file.bytes.count
        file.enhancedPacket(interface: 0, timestamp: 0, data: [1, 2, 3, 4], capturedLength: 9)
        expectError(file.bytes, .packetOverrunsBlock(capturedLength: 9, available: 4), at: start + 20)
    }

    @Test("an absurd enhanced packet length")
    func packetTooLarge() {
        var file = Self.section(.big)
        file.interfaceDescription(linkType: 1)
        let start = file.bytes.count
        file.enhancedPacket(interface: 0, timestamp: 0, data: [], capturedLength: 0xffff_fff0)
        expectError(file.bytes, .packetTooLarge(capturedLength: 0xffff_fff0), at: start + 20)
    }

    @Test("packets on interfaces the section has not described")
    func unknownInterface() {
        var epb = Self.section()
        epb.interfaceDescription(linkType: 1)
        let start = epb.bytes.count
        epb.enhancedPacket(interface: 1, timestamp: 0, data: [])
        expectError(epb.bytes, .unknownInterface(id: 1, described: 1), at: start + 8)

        var spb = Self.section()
        let spbStart = spb.bytes.count
        spb.simplePacket(originalLength: 1, data: [1])
        expectError(spb.bytes, .unknownInterface(id: 0, described: 0), at: spbStart)
    }

    @Test("an option that runs past its block")
    func optionOverrun() {
        var file = Self.section()
        let start = file.bytes.count
        file.block(type: 1) { b in b.u16(1); b.u16(0); b.u32(0); b.u16(2); b.u16(40); b.raw(Array("eth0".utf8)) }
        expectError(file.bytes, .optionOverrunsBlock(code: 2, length: 40), at: start + 16)
    }

    @Test("if_tsresol of the wrong length")
    func tsresolLength() {
        var file = Self.section()
        let start = file.bytes.count
        file.block(type: 1) { b in b.u16(1); b.u16(0); b.u32(0); b.option(9, [6, 0]) }
        expectError(file.bytes, .badOptionLength(code: 9, length: 2), at: start + 16)
    }

    @Test("if_tsresol values without a 64-bit conversion", arguments: [UInt8(20), UInt8(127), UInt8(0x80 | 64), UInt8(0xff)])
    func tsresolValue(value: UInt8) {
        var file = Self.section()
        let start = file.bytes.count
        file.interfaceDescription(linkType: 1, tsresol: value)
        expectError(file.bytes, .unsupportedTimestampResolution(value), at: start + 16)
    }

    @Test("a timestamp beyond 64 bits of nanoseconds", arguments: [UInt8(0), UInt8(6), UInt8(0x80)])
    func timestampOverflow(tsresol: UInt8) {
        var file = Self.section()
        file.interfaceDescription(linkType: 1, tsresol: tsresol)
        let start = file.bytes.count
        file.enhancedPacket(interface: 0, timestamp: 1 << 62, data: [])
        expectError(file.bytes, .timestampOutOfRange, at: start + 12)
    }
}

@Suite("capture error messages")
struct CaptureErrorMessageTests {
    @Test("name the offset and the fault")
    func messages() {
        #expect(CaptureError(.packetOverrunsFile(capturedLength: 100, available: 50), at: 24).description
                == "byte 24: packet of 100 bytes runs past the end of the file (50 bytes left)")
        #expect(CaptureError(.unknownFormat(magic: 0x4745_5420), at: 0).description == "byte 0: not a pcap or pcapng file (magic 0x47455420)")
        #expect(CaptureError(.badBlockLength(13), at: 32).description == "byte 32: block length 13 is not a multiple of 4 of at least 12")
    }
}
