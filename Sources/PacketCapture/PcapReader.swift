// Classic pcap: a 24-byte file header (magic, version 2.4, zone, accuracy, snap length, link
// type), then records of a 16-byte header (seconds, micro- or nanoseconds, captured length,
// original length) and the captured bytes. Either byte order, as the magic says.

struct PcapReader {
    static let microsecondMagic: UInt32 = 0xa1b2_c3d4
    static let nanosecondMagic: UInt32 = 0xa1b2_3c4d
    static let fileHeaderLength = 24
    static let recordHeaderLength = 16

    let fields: ByteFields
    let nanosecondTimestamps: Bool
    let linkType: LinkType
    private(set) var offset = PcapReader.fileHeaderLength

    /// True when the first four bytes are a classic pcap magic in either order.
    static func recognizes(_ magic: UInt32) -> Bool {
        [microsecondMagic, nanosecondMagic, microsecondMagic.byteSwapped, nanosecondMagic.byteSwapped].contains(magic)
    }

    init(_ bytes: [UInt8]) throws(CaptureError) {
        guard bytes.count >= Self.fileHeaderLength else {
            throw CaptureError(.truncatedFileHeader(needed: Self.fileHeaderLength, available: bytes.count), at: 0)
        }
        let magic = ByteFields.bigEndianU32(bytes, 0)
        let bigEndian = magic == Self.microsecondMagic || magic == Self.nanosecondMagic
        fields = ByteFields(bytes: bytes, bigEndian: bigEndian)
        let native = bigEndian ? magic : magic.byteSwapped
        guard native == Self.microsecondMagic || native == Self.nanosecondMagic else {
            throw CaptureError(.unknownFormat(magic: magic), at: 0)
        }
        nanosecondTimestamps = native == Self.nanosecondMagic
        let major = fields.u16(4), minor = fields.u16(6)
        // 2.4 is the only version written for decades; 2.2 and 2.3 differ only in old bugs.
        guard major == 2, minor <= 4 else { throw CaptureError(.unsupportedVersion(major: major, minor: minor), at: 4) }
        // The upper bits of the link-type field carry FCS information; the type is the low 16.
        linkType = LinkType(rawValue: UInt16(truncatingIfNeeded: fields.u32(20)))
    }

    var format: CaptureFormat { .pcap(nanosecondTimestamps: nanosecondTimestamps, bigEndian: fields.bigEndian) }

    mutating func next() throws(CaptureError) -> CapturedPacket? {
        let bytes = fields.bytes
        let remaining = bytes.count - offset
        if remaining == 0 { return nil }
        guard remaining >= Self.recordHeaderLength else {
            throw CaptureError(.truncatedRecordHeader(available: remaining), at: offset)
        }
        let seconds = UInt64(fields.u32(offset))
        let fraction = UInt64(fields.u32(offset + 4))
        let capturedLength = fields.u32(offset + 8)
        let originalLength = fields.u32(offset + 12)
        guard capturedLength <= CaptureLimits.maximumPacketLength else {
            throw CaptureError(.packetTooLarge(capturedLength: capturedLength), at: offset)
        }
        let dataStart = offset + Self.recordHeaderLength
        guard Int(capturedLength) <= bytes.count - dataStart else {
            throw CaptureError(.packetOverrunsFile(capturedLength: capturedLength, available: bytes.count - dataStart), at: offset)
        }
        // 32-bit seconds times 10^9 plus a 32-bit fraction (times 1000) cannot overflow 64 bits.
        let timestamp = seconds * 1_000_000_000 + (nanosecondTimestamps ? fraction : fraction * 1000)
        let packet = CapturedPacket(
            timestampNanoseconds: timestamp, linkType: linkType,
            data: bytes[dataStart..<dataStart + Int(capturedLength)], originalLength: originalLength, fileOffset: offset)
        offset = dataStart + Int(capturedLength)
        return packet
    }
}
