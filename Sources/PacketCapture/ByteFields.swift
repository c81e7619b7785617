// Fixed-width fields of a capture file in the byte order of the file (or section) they come
// from. Callers check offset + width against the bytes they own before reading.

struct ByteFields {
    let bytes: [UInt8]
    let bigEndian: Bool

    @inline(__always)
    func u16(_ offset: Int) -> UInt16 {
        let a = UInt16(bytes[offset]), b = UInt16(bytes[offset + 1])
        return bigEndian ? a << 8 | b : b << 8 | a
    }

    @inline(__always)
    func u32(_ offset: Int) -> UInt32 {
        let a = UInt32(bytes[offset]), b = UInt32(bytes[offset + 1])
        let c = UInt32(bytes[offset + 2]), d = UInt32(bytes[offset + 3])
        return bigEndian ? a << 24 | b << 16 | c << 8 | d : d << 24 | c << 16 | b << 8 | a
    }

    /// A 32-bit field read big-endian, whatever the file's order (magic numbers).
    @inline(__always)
    static func bigEndianU32(_ bytes: [UInt8], _ offset: Int) -> UInt32 {
        UInt32(bytes[offset]) << 24 | UInt32(bytes[offset + 1]) << 16 | UInt32(bytes[offset + 2]) << 8 | UInt32(bytes[offset + 3])
    }
}
