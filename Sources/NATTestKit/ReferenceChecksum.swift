// An independent, deliberately naive Internet checksum (RFC 1071) used to compute every
// expected value in tests. It never calls NATCore's `InternetChecksum`.

/// The reference Internet checksum: slow, obvious, and separate from the code under test.
public enum RefChecksum {
    /// Ones'-complement sum of big-endian 16-bit words (an odd last byte is the high byte of
    /// a word padded with zero), folded to 16 bits.
    public static func sum(_ bytes: [UInt8]) -> UInt16 {
        var total: UInt64 = 0
        var i = 0
        while i + 1 < bytes.count {
            total += UInt64(bytes[i]) << 8 | UInt64(bytes[i + 1])
            i += 2
        }
        if i < bytes.count { total += UInt64(bytes[i]) << 8 }
        while total > 0xffff { total = (total & 0xffff) + (total >> 16) }
        return UInt16(total)
    }

    /// The value to store in a checksum field that was zero while summing.
    public static func checksum(_ bytes: [UInt8]) -> UInt16 { ~sum(bytes) }

    /// The 12-byte IPv4 pseudo-header of TCP and UDP.
    public static func pseudoHeader(source: IPv4Bytes, destination: IPv4Bytes, protocolNumber: UInt8, length: Int) -> [UInt8] {
        source.bytes + destination.bytes + [0, protocolNumber, UInt8(length >> 8), UInt8(length & 0xff)]
    }
}
