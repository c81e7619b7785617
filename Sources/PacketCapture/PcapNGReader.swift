// pcapng (draft-ietf-opsawg-pcapng): blocks of type, total length, body, total length again.
// Read here: Section Header Blocks (byte order per section, several sections), Interface
// Description Blocks (link type, snap length, if_name, if_tsresol), Enhanced Packet Blocks and
// Simple Packet Blocks. Every other block is skipped whole.

struct PcapNGReader {
    static let sectionHeaderType: UInt32 = 0x0a0d_0d0a
    static let byteOrderMagic: UInt32 = 0x1a2b_3c4d
    static let interfaceDescriptionType: UInt32 = 1
    static let simplePacketType: UInt32 = 3
    static let enhancedPacketType: UInt32 = 6
    static let optionInterfaceName: UInt16 = 2
    static let optionTimestampResolution: UInt16 = 9
    static let blockOverhead = 12

    private let bytes: [UInt8]
    private var fields: ByteFields
    private var offset = 0
    /// The current section's interfaces, by interface id.
    private(set) var interfaces: [CaptureInterface] = []
    /// Counted from 0; -1 before the first Section Header Block.
    private(set) var section = -1

    init(_ bytes: [UInt8]) throws(CaptureError) {
        self.bytes = bytes
        fields = ByteFields(bytes: bytes, bigEndian: false)
        // The first block must be a section header: read it now so a bad file fails at once.
        guard bytes.count >= Self.blockOverhead else {
            throw CaptureError(.truncatedFileHeader(needed: 28, available: bytes.count), at: 0)
        }
        guard ByteFields.bigEndianU32(bytes, 0) == Self.sectionHeaderType else {
            throw CaptureError(.unknownFormat(magic: ByteFields.bigEndianU32(bytes, 0)), at: 0)
        }
        _ = try readBlock()
    }

    var format: CaptureFormat { .pcapng }

    mutating func next() throws(CaptureError) -> CapturedPacket? {
        while offset < bytes.count {
            if let packet = try readBlock() { return packet }
        }
        return nil
    }

    /// Reads the block at `offset` and moves past it. A packet block returns its packet.
    private mutating func readBlock() throws(CaptureError) -> CapturedPacket? {
        let start = offset
        let available = bytes.count - start
        guard available >= Self.blockOverhead else {
            throw CaptureError(.truncatedBlockHeader(available: available), at: start)
        }
        // The block type is a palindrome for section headers, so it reads the same either way.
        let type = fields.u32(start)
        if type == Self.sectionHeaderType {
            let magic = ByteFields.bigEndianU32(bytes, start + 8)
            guard magic == Self.byteOrderMagic || magic == Self.byteOrderMagic.byteSwapped else {
                throw CaptureError(.badByteOrderMagic(magic), at: start + 8)
            }
            fields = ByteFields(bytes: bytes, bigEndian: magic == Self.byteOrderMagic)
        }
        let length = fields.u32(start + 4)
        guard length >= Self.blockOverhead, length % 4 == 0 else {
            throw CaptureError(.badBlockLength(length), at: start + 4)
        }
        guard Int(length) <= available else {
            throw CaptureError(.blockOverrunsFile(length: length, available: available), at: start)
        }
        let end = start + Int(length)
        let trailing = fields.u32(end - 4)
        guard trailing == length else {
            throw CaptureError(.blockLengthMismatch(leading: length, trailing: trailing), at: end - 4)
        }
        let body = start + 8..<end - 4
        offset = end
        switch type {
        case Self.sectionHeaderType:
            try readSectionHeader(body, start: start, length: length)
            return nil
        case Self.interfaceDescriptionType:
            try readInterfaceDescription(body, start: start, length: length)
            return nil
        case Self.enhancedPacketType:
            return try readEnhancedPacket(body, start: start, length: length)
        case Self.simplePacketType:
            return try readSimplePacket(body, start: start, length: length)
        default:
            return nil
        }
    }

    private mutating func readSectionHeader(_ body: Range<Int>, start: Int, length: UInt32) throws(CaptureError) {
        // byte-order magic, major, minor, section length (8 bytes), options.
        guard body.count >= 16 else { throw CaptureError(.blockTooShort(type: Self.sectionHeaderType, length: length), at: start) }
        let major = fields.u16(body.lowerBound + 4), minor = fields.u16(body.lowerBound + 6)
        guard major == 1 else { throw CaptureError(.unsupportedVersion(major: major, minor: minor), at: body.lowerBound + 4) }
        section += 1
        interfaces = []
    }

    private mutating func readInterfaceDescription(_ body: Range<Int>, start: Int, length: UInt32) throws(CaptureError) {
        // link type, reserved, snap length, options.
        guard body.count >= 8 else { throw CaptureError(.blockTooShort(type: Self.interfaceDescriptionType, length: length), at: start) }
        var interface = CaptureInterface(
            linkType: LinkType(rawValue: fields.u16(body.lowerBound)), snapLength: fields.u32(body.lowerBound + 4),
            name: nil, timestampResolution: .microseconds)
        let bytes = self.bytes
        try PcapNGOptions.forEach(in: body.lowerBound + 8..<body.upperBound, fields) { option throws(CaptureError) in
            switch option.code {
            case Self.optionInterfaceName:
                // UTF-8, not terminated; some writers add a NUL anyway.
                var value = bytes[option.value]
                while value.last == 0 { value = value.dropLast() }
                interface.name = String(decoding: value, as: UTF8.self)
            case Self.optionTimestampResolution:
                guard option.value.count == 1 else {
                    throw CaptureError(.badOptionLength(code: option.code, length: UInt16(option.value.count)), at: option.offset)
                }
                let resolution = TimestampResolution(rawValue: bytes[option.value.lowerBound])
                guard resolution.isSupported else {
                    throw CaptureError(.unsupportedTimestampResolution(resolution.rawValue), at: option.offset)
                }
                interface.timestampResolution = resolution
            default:
                break
            }
        }
        interfaces.append(interface)
    }

    private func readEnhancedPacket(_ body: Range<Int>, start: Int, length: UInt32) throws(CaptureError) -> CapturedPacket {
        // interface id, timestamp high, timestamp low, captured length, original length, data, options.
        guard body.count >= 20 else { throw CaptureError(.blockTooShort(type: Self.enhancedPacketType, length: length), at: start) }
        let base = body.lowerBound
        let interfaceID = fields.u32(base)
        guard Int(interfaceID) < interfaces.count else {
            throw CaptureError(.unknownInterface(id: interfaceID, described: interfaces.count), at: base)
        }
        let interface = interfaces[Int(interfaceID)]
        let units = UInt64(fields.u32(base + 4)) << 32 | UInt64(fields.u32(base + 8))
        guard let timestamp = interface.timestampResolution.nanoseconds(units) else {
            throw CaptureError(.timestampOutOfRange, at: base + 4)
        }
        let capturedLength = fields.u32(base + 12)
        let dataStart = base + 20
        guard capturedLength <= CaptureLimits.maximumPacketLength else {
            throw CaptureError(.packetTooLarge(capturedLength: capturedLength), at: base + 12)
        }
        guard Int(capturedLength) <= body.upperBound - dataStart else {
            throw CaptureError(.packetOverrunsBlock(capturedLength: capturedLength, available: body.upperBound - dataStart), at: base + 12)
        }
        return CapturedPacket(
            timestampNanoseconds: timestamp, linkType: interface.linkType, interfaceIndex: Int(interfaceID),
            interfaceName: interface.name, section: section, data: bytes[dataStart..<dataStart + Int(capturedLength)],
            originalLength: fields.u32(base + 16), fileOffset: start)
    }

    private func readSimplePacket(_ body: Range<Int>, start: Int, length: UInt32) throws(CaptureError) -> CapturedPacket {
        // original length, data: always interface 0; captured length is what the block (and
        // the interface's snap length) leaves of the original.
        guard body.count >= 4 else { throw CaptureError(.blockTooShort(type: Self.simplePacketType, length: length), at: start) }
        guard let interface = interfaces.first else {
            throw CaptureError(.unknownInterface(id: 0, described: 0), at: start)
        }
        let originalLength = fields.u32(body.lowerBound)
        let dataStart = body.lowerBound + 4
        var capturedLength = min(Int(originalLength), body.upperBound - dataStart)
        if interface.snapLength > 0 { capturedLength = min(capturedLength, Int(interface.snapLength)) }
        guard capturedLength <= CaptureLimits.maximumPacketLength else {
            throw CaptureError(.packetTooLarge(capturedLength: UInt32(capturedLength)), at: start)
        }
        return CapturedPacket(
            timestampNanoseconds: nil, linkType: interface.linkType, interfaceIndex: 0, interfaceName: interface.name,
            section: section, data: bytes[dataStart..<dataStart + capturedLength], originalLength: originalLength, fileOffset: start)
    }
}
