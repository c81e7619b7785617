// Reads the fields of a finished IPv4 packet (as a translator left it) from its bytes alone,
// without NATCore's parsers: the one packet reader the tests use.

/// Fields of an IPv4 + TCP, UDP or ICMP packet. The packet must be long enough for the field
/// asked for (these are test assertions' helpers, not a validating parser).
public enum PacketReader {
    /// The big-endian 16-bit word at `offset`.
    public static func be16(_ p: [UInt8], _ offset: Int) -> UInt16 { UInt16(p[offset]) << 8 | UInt16(p[offset + 1]) }

    /// The big-endian 32-bit word at `offset`.
    public static func be32(_ p: [UInt8], _ offset: Int) -> UInt32 {
        UInt32(p[offset]) << 24 | UInt32(p[offset + 1]) << 16 | UInt32(p[offset + 2]) << 8 | UInt32(p[offset + 3])
    }

    // MARK: IPv4

    /// The IPv4 header length in bytes (IHL × 4).
    public static func headerLength(_ p: [UInt8]) -> Int { Int(p[0] & 0x0f) * 4 }
    /// The IPv4 total length field.
    public static func totalLength(_ p: [UInt8]) -> Int { Int(be16(p, 2)) }
    /// 6 TCP, 17 UDP, 1 ICMP.
    public static func protocolNumber(_ p: [UInt8]) -> UInt8 { p[9] }
    public static func sourceAddress(_ p: [UInt8]) -> IPv4Bytes { IPv4Bytes(bytes: Array(p[12..<16])) }
    public static func destinationAddress(_ p: [UInt8]) -> IPv4Bytes { IPv4Bytes(bytes: Array(p[16..<20])) }

    // MARK: ports

    /// The TCP or UDP source port; for ICMP, the echo identifier (what NAT maps in its place).
    public static func sourcePort(_ p: [UInt8]) -> UInt16 {
        protocolNumber(p) == 1 ? be16(p, headerLength(p) + 4) : be16(p, headerLength(p))
    }

    /// The TCP or UDP destination port; for ICMP, the echo identifier.
    public static func destinationPort(_ p: [UInt8]) -> UInt16 {
        protocolNumber(p) == 1 ? be16(p, headerLength(p) + 4) : be16(p, headerLength(p) + 2)
    }

    // MARK: TCP

    /// The TCP sequence and acknowledgement numbers.
    public static func seq(_ p: [UInt8]) -> UInt32 { be32(p, headerLength(p) + 4) }
    public static func ack(_ p: [UInt8]) -> UInt32 { be32(p, headerLength(p) + 8) }
    /// The TCP header length in bytes (data offset × 4).
    public static func dataOffset(_ p: [UInt8]) -> Int { Int(p[headerLength(p) + 12] >> 4) * 4 }
    /// The TCP flags byte (`TCPFlag` bits).
    public static func flags(_ p: [UInt8]) -> UInt8 { p[headerLength(p) + 13] }

    /// SACK blocks (RFC 2018) in the TCP options, as (left edge, right edge).
    public static func sackBlocks(_ p: [UInt8]) -> [(UInt32, UInt32)] {
        let start = headerLength(p) + 20
        let end = headerLength(p) + dataOffset(p)
        var i = start
        var blocks: [(UInt32, UInt32)] = []
        while i < end {
            let kind = p[i]
            if kind == 0 { break }
            if kind == 1 { i += 1; continue }
            guard i + 1 < end, p[i + 1] >= 2 else { break }
            let length = Int(p[i + 1])
            if kind == 5 {
                var edge = i + 2
                while edge + 8 <= i + length {
                    blocks.append((be32(p, edge), be32(p, edge + 4)))
                    edge += 8
                }
            }
            i += length
        }
        return blocks
    }

    // MARK: payload

    /// The application bytes: after the TCP header up to the IP total length, the UDP payload
    /// up to the UDP length, or what follows the 8-byte ICMP header.
    public static func payload(_ p: [UInt8]) -> [UInt8] {
        let ihl = headerLength(p)
        switch protocolNumber(p) {
        case 6: return Array(p[(ihl + dataOffset(p))..<totalLength(p)])
        case 17: return Array(p[(ihl + 8)..<(ihl + Int(be16(p, ihl + 4)))])
        default: return Array(p[(ihl + 8)..<totalLength(p)])
        }
    }
}
