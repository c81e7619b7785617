// Independent checks of a finished packet: its lengths and checksums, recomputed with
// `RefChecksum` from the bytes alone.

/// Checks of a packet as it leaves the translator.
public enum Verify {
    /// The big-endian 16-bit word at `offset` (as `PacketReader.be16`).
    public static func be16(_ p: [UInt8], _ offset: Int) -> UInt16 { PacketReader.be16(p, offset) }

    /// The IPv4 header length in bytes (IHL × 4).
    public static func headerLength(_ p: [UInt8]) -> Int { PacketReader.headerLength(p) }
    /// The IPv4 total length field.
    public static func totalLength(_ p: [UInt8]) -> Int { PacketReader.totalLength(p) }

    /// True if the IPv4 header checksum verifies (false for bytes too short to hold the header).
    public static func ipHeaderChecksumValid(_ p: [UInt8]) -> Bool {
        guard p.count >= 20, headerLength(p) >= 20, headerLength(p) <= p.count else { return false }
        return RefChecksum.sum(Array(p[0..<headerLength(p)])) == 0xffff
    }

    /// True if the TCP, UDP or ICMP checksum verifies (a UDP checksum of 0 means "none" and
    /// is reported as invalid here: callers that expect 0 check for it explicitly). Lengths
    /// that do not fit the bytes are invalid too.
    public static func transportChecksumValid(_ p: [UInt8]) -> Bool {
        guard p.count >= 20 else { return false }
        let ihl = headerLength(p)
        guard ihl >= 20, totalLength(p) <= p.count, ihl + 8 <= totalLength(p) else { return false }
        let l4 = Array(p[ihl..<totalLength(p)])
        let source = PacketReader.sourceAddress(p)
        let destination = PacketReader.destinationAddress(p)
        switch p[9] {
        case 6:
            return RefChecksum.sum(RefChecksum.pseudoHeader(source: source, destination: destination, protocolNumber: 6, length: l4.count) + l4) == 0xffff
        case 17:
            let length = Int(be16(l4, 4))
            if be16(l4, 6) == 0 || length < 8 || length > l4.count { return false }
            return RefChecksum.sum(RefChecksum.pseudoHeader(source: source, destination: destination, protocolNumber: 17, length: length) + Array(l4[0..<length])) == 0xffff
        case 1:
            return RefChecksum.sum(l4) == 0xffff
        default:
            return false
        }
    }

    /// The IPv4 total length equals the bytes' count and both checksums verify: what a
    /// translated packet must always satisfy, whatever a helper did to its payload.
    public static func wellFormed(_ p: [UInt8]) -> Bool {
        p.count >= 20 && totalLength(p) == p.count && ipHeaderChecksumValid(p) && transportChecksumValid(p)
    }
}
