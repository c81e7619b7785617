// Reads a pcap or pcapng file held in memory, packet by packet. The format is told by the
// first four bytes. Packets are slices of the bytes given, so reading copies nothing and
// allocates nothing per packet beyond the interface names pcapng declares.

public enum CaptureFormat: Equatable, Sendable {
    case pcap(nanosecondTimestamps: Bool, bigEndian: Bool)
    case pcapng
}

public struct CaptureReader {
    private enum Backend {
        case pcap(PcapReader)
        case pcapng(PcapNGReader)
    }

    private var backend: Backend

    /// Reads the file header (pcap) or first section header (pcapng).
    public init(_ bytes: [UInt8]) throws(CaptureError) {
        guard bytes.count >= 4 else { throw CaptureError(.truncatedFileHeader(needed: 4, available: bytes.count), at: 0) }
        let magic = ByteFields.bigEndianU32(bytes, 0)
        if PcapReader.recognizes(magic) {
            backend = .pcap(try PcapReader(bytes))
        } else if magic == PcapNGReader.sectionHeaderType {
            backend = .pcapng(try PcapNGReader(bytes))
        } else {
            throw CaptureError(.unknownFormat(magic: magic), at: 0)
        }
    }

    public var format: CaptureFormat {
        switch backend {
        case .pcap(let reader): reader.format
        case .pcapng(let reader): reader.format
        }
    }

    /// The next packet, nil at the end of the file, or the error that stops the reading.
    public mutating func next() throws(CaptureError) -> CapturedPacket? {
        switch backend {
        case .pcap(var reader):
            defer { backend = .pcap(reader) }
            return try reader.next()
        case .pcapng(var reader):
            defer { backend = .pcapng(reader) }
            return try reader.next()
        }
    }

    /// Every packet of the file, or the first error.
    public static func readAll(_ bytes: [UInt8]) throws(CaptureError) -> [CapturedPacket] {
        var reader = try CaptureReader(bytes)
        var packets: [CapturedPacket] = []
        while let packet = try reader.next() { packets.append(packet) }
        return packets
    }
}
