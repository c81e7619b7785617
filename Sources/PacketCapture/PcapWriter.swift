// Writes classic pcap with nanosecond timestamps (magic 0xa1b23c4d), little-endian, version
// 2.4, one link type per file, into memory.

public struct PcapWriter {
    public let linkType: LinkType
    /// The file so far: the header, then every record appended.
    public private(set) var bytes: [UInt8] = []
    public private(set) var packetCount = 0

    public static let magic: UInt32 = 0xa1b2_3c4d
    public static let snapLength = UInt32(CaptureLimits.maximumPacketLength)

    public init(linkType: LinkType) {
        self.linkType = linkType
        append32(Self.magic)
        append16(2)             // version major
        append16(4)             // version minor
        append32(0)             // thiszone: timestamps are UTC
        append32(0)             // sigfigs
        append32(Self.snapLength)
        append32(UInt32(linkType.rawValue))
    }

    /// Appends one record: `linkHeader` then `packet`. `originalLength` is the length on the
    /// wire, when it was more than what is written (nil: what is written).
    public mutating func append(timestampNanoseconds: UInt64, linkHeader: some Collection<UInt8>, packet: some Collection<UInt8>,
                                originalLength: UInt32? = nil) throws(CaptureError) {
        let seconds = timestampNanoseconds / 1_000_000_000
        guard seconds <= UInt64(UInt32.max) else { throw CaptureError(.timestampOutOfRange, at: bytes.count) }
        let length = linkHeader.count + packet.count
        guard length <= CaptureLimits.maximumPacketLength else {
            throw CaptureError(.packetTooLarge(capturedLength: UInt32(clamping: length)), at: bytes.count)
        }
        append32(UInt32(seconds))
        append32(UInt32(timestampNanoseconds % 1_000_000_000))
        append32(UInt32(length))
        append32(originalLength ?? UInt32(length))
        bytes.append(contentsOf: linkHeader)
        bytes.append(contentsOf: packet)
        packetCount += 1
    }

    private mutating func append16(_ value: UInt16) {
        bytes.append(UInt8(value & 0xff))
        bytes.append(UInt8(value >> 8))
    }

    private mutating func append32(_ value: UInt32) {
        for shift in stride(from: 0, to: 32, by: 8) { bytes.append(UInt8(truncatingIfNeeded: value >> UInt32(shift))) }
    }
}
