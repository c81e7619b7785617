// What is wrong with a capture file, and where: every malformed input ends in one of these
// (never a trap), so a command can say "byte 1234: …" and a fuzzer can tell a refusal from a bug.

/// A capture that cannot be read (or a packet that cannot be written), with the byte offset
/// of the record, block or field at fault.
public struct CaptureError: Error, Equatable, Sendable, CustomStringConvertible {
    public var problem: CaptureProblem
    /// Offset in the file (for the writer: in the output) where the bad record or field starts.
    public var offset: Int

    public init(_ problem: CaptureProblem, at offset: Int) {
        self.problem = problem
        self.offset = offset
    }

    public var description: String { "byte \(offset): \(problem)" }
}

public enum CaptureProblem: Equatable, Sendable, CustomStringConvertible {
    /// Fewer bytes than a file header (or a magic number) needs.
    case truncatedFileHeader(needed: Int, available: Int)
    /// Neither a pcap magic number nor a pcapng Section Header Block.
    case unknownFormat(magic: UInt32)
    /// A pcap or pcapng version this reader does not know.
    case unsupportedVersion(major: UInt16, minor: UInt16)
    /// The file ends inside a pcap record header.
    case truncatedRecordHeader(available: Int)
    /// A packet's captured length runs past the end of the file.
    case packetOverrunsFile(capturedLength: UInt32, available: Int)
    /// A captured length above `CaptureLimits.maximumPacketLength` (libpcap refuses those too).
    case packetTooLarge(capturedLength: UInt32)
    /// The file ends inside a pcapng block header.
    case truncatedBlockHeader(available: Int)
    /// A pcapng block length below 12 or not a multiple of 4.
    case badBlockLength(UInt32)
    /// A pcapng block length that runs past the end of the file.
    case blockOverrunsFile(length: UInt32, available: Int)
    /// The length at the end of a pcapng block differs from the one at its start.
    case blockLengthMismatch(leading: UInt32, trailing: UInt32)
    /// A pcapng block too short for its own fixed fields.
    case blockTooShort(type: UInt32, length: UInt32)
    /// A Section Header Block whose byte-order magic is neither 0x1A2B3C4D nor its swap.
    case badByteOrderMagic(UInt32)
    /// A packet's captured length runs past the end of its block.
    case packetOverrunsBlock(capturedLength: UInt32, available: Int)
    /// An option whose length runs past the end of its block.
    case optionOverrunsBlock(code: UInt16, length: UInt16)
    /// An option whose value has the wrong length (if_tsresol is one byte).
    case badOptionLength(code: UInt16, length: UInt16)
    /// A packet naming an interface its section has not described.
    case unknownInterface(id: UInt32, described: Int)
    /// An if_tsresol this reader cannot turn into nanoseconds.
    case unsupportedTimestampResolution(UInt8)
    /// A timestamp beyond what nanoseconds in 64 bits (pcapng) or seconds in 32 bits (pcap output) hold.
    case timestampOutOfRange

    public var description: String {
        switch self {
        case .truncatedFileHeader(let needed, let available):
            "file header needs \(needed) bytes, the file has \(available)"
        case .unknownFormat(let magic):
            "not a pcap or pcapng file (magic 0x\(hex(magic, digits: 8)))"
        case .unsupportedVersion(let major, let minor):
            "unsupported version \(major).\(minor)"
        case .truncatedRecordHeader(let available):
            "the file ends inside a packet record header (\(available) of 16 bytes)"
        case .packetOverrunsFile(let capturedLength, let available):
            "packet of \(capturedLength) bytes runs past the end of the file (\(available) bytes left)"
        case .packetTooLarge(let capturedLength):
            "captured length \(capturedLength) is larger than \(CaptureLimits.maximumPacketLength)"
        case .truncatedBlockHeader(let available):
            "the file ends inside a block header (\(available) of 12 bytes)"
        case .badBlockLength(let length):
            "block length \(length) is not a multiple of 4 of at least 12"
        case .blockOverrunsFile(let length, let available):
            "block of \(length) bytes runs past the end of the file (\(available) bytes left)"
        case .blockLengthMismatch(let leading, let trailing):
            "block length \(leading) at the start but \(trailing) at the end"
        case .blockTooShort(let type, let length):
            "block of type 0x\(hex(type, digits: 8)) is too short for its fields (\(length) bytes)"
        case .badByteOrderMagic(let magic):
            "section header with byte-order magic 0x\(hex(magic, digits: 8)) (expected 0x1a2b3c4d)"
        case .packetOverrunsBlock(let capturedLength, let available):
            "packet of \(capturedLength) bytes runs past the end of its block (\(available) bytes left)"
        case .optionOverrunsBlock(let code, let length):
            "option \(code) of \(length) bytes runs past the end of its block"
        case .badOptionLength(let code, let length):
            "option \(code) has length \(length)"
        case .unknownInterface(let id, let described):
            "packet on interface \(id), but the section describes \(described)"
        case .unsupportedTimestampResolution(let value):
            "unsupported timestamp resolution (if_tsresol 0x\(hex(UInt32(value), digits: 2)))"
        case .timestampOutOfRange:
            "timestamp out of range"
        }
    }
}

/// Bounds the reader applies whatever the file claims.
public enum CaptureLimits {
    /// Largest captured length accepted: libpcap's MAXIMUM_SNAPLEN.
    public static let maximumPacketLength = 262_144
}

func hex(_ value: UInt32, digits: Int) -> String {
    let text = String(value, radix: 16)
    return String(repeating: "0", count: max(0, digits - text.count)) + text
}
