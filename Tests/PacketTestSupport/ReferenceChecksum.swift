// An independent, deliberately naive Internet checksum used to compute every expected value
// in these tests. It never calls NATCore's `InternetChecksum`.

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

/// A test-side IPv4 address as four bytes (kept apart from NATCore's type on purpose).
public struct IPv4Bytes: Equatable, Sendable, CustomStringConvertible {
    public var bytes: [UInt8]
    public init(_ a: UInt8, _ b: UInt8, _ c: UInt8, _ d: UInt8) { bytes = [a, b, c, d] }
    public init(bytes: [UInt8]) { precondition(bytes.count == 4); self.bytes = bytes }
    public var description: String { bytes.map(String.init).joined(separator: ".") }
}

/// Independent checks of a finished packet.
public enum Verify {
    public static func be16(_ p: [UInt8], _ offset: Int) -> UInt16 { UInt16(p[offset]) << 8 | UInt16(p[offset + 1]) }

    public static func headerLength(_ p: [UInt8]) -> Int { Int(p[0] & 0x0f) * 4 }
    public static func totalLength(_ p: [UInt8]) -> Int { Int(be16(p, 2)) }

    public static func ipHeaderChecksumValid(_ p: [UInt8]) -> Bool {
        RefChecksum.sum(Array(p[0..<headerLength(p)])) == 0xffff
    }

    /// True if the TCP, UDP or ICMP checksum verifies (a UDP checksum of 0 means "none" and
    /// is reported as invalid here: callers that expect 0 check for it explicitly).
    public static func transportChecksumValid(_ p: [UInt8]) -> Bool {
        let ihl = headerLength(p)
        let l4 = Array(p[ihl..<totalLength(p)])
        let source = IPv4Bytes(bytes: Array(p[12..<16]))
        let destination = IPv4Bytes(bytes: Array(p[16..<20]))
        switch p[9] {
        case 6:
            return RefChecksum.sum(RefChecksum.pseudoHeader(source: source, destination: destination, protocolNumber: 6, length: l4.count) + l4) == 0xffff
        case 17:
            let length = Int(be16(l4, 4))
            if be16(l4, 6) == 0 { return false }
            return RefChecksum.sum(RefChecksum.pseudoHeader(source: source, destination: destination, protocolNumber: 17, length: length) + Array(l4[0..<length])) == 0xffff
        case 1:
            return RefChecksum.sum(l4) == 0xffff
        default:
            return false
        }
    }
}
