// The Internet checksum (RFC 1071) and its incremental update (RFC 1624).
//
// Values are the 16-bit big-endian words of the packet as host integers: `sum` of the
// bytes 0x45 0x00 is 0x4500 on every host. The bulk loop adds 64-bit native words with
// end-around carry (ones'-complement sums are byte-order independent up to a final swap).

public enum InternetChecksum {
    /// Ones'-complement sum of `count` bytes, folded to 16 bits, as a big-endian word value.
    @inlinable
    public static func sum(_ base: UnsafeRawPointer, count: Int) -> UInt16 {
        UInt16(bigEndian: fold(nativeSum(base, count: count)))
    }

    /// `~sum`: the checksum to store for data whose checksum field was zero.
    @inlinable
    public static func checksum(_ base: UnsafeRawPointer, count: Int) -> UInt16 {
        ~sum(base, count: count)
    }

    /// Ones'-complement addition of two 16-bit values.
    @inlinable @inline(__always)
    public static func add(_ a: UInt16, _ b: UInt16) -> UInt16 {
        let s = UInt32(a) &+ UInt32(b)
        return UInt16(truncatingIfNeeded: (s & 0xffff) &+ (s >> 16))
    }

    /// Sum of the IPv4 pseudo-header for TCP/UDP (RFC 793, RFC 768).
    @inlinable @inline(__always)
    public static func pseudoHeaderSum(source: UInt32, destination: UInt32, protocolNumber: UInt8, length: Int) -> UInt16 {
        var s = UInt32(source >> 16) &+ UInt32(source & 0xffff)
        s &+= UInt32(destination >> 16) &+ UInt32(destination & 0xffff)
        s &+= UInt32(protocolNumber) &+ UInt32(truncatingIfNeeded: length & 0xffff)
        s = (s & 0xffff) &+ (s >> 16)
        s = (s & 0xffff) &+ (s >> 16)
        return UInt16(truncatingIfNeeded: s)
    }

    /// RFC 1624 equation 3: HC' = ~(~HC + ~m + m') for one 16-bit field changing from `old` to `new`.
    @inlinable @inline(__always)
    public static func adjust(_ checksum: UInt16, old: UInt16, new: UInt16) -> UInt16 {
        var s = UInt32(~checksum) &+ UInt32(~old) &+ UInt32(new)
        s = (s & 0xffff) &+ (s >> 16)
        s = (s & 0xffff) &+ (s >> 16)
        return ~UInt16(truncatingIfNeeded: s)
    }

    /// RFC 1624 update for a 32-bit field (an IPv4 address) changing from `old` to `new`.
    @inlinable @inline(__always)
    public static func adjust(_ checksum: UInt16, oldAddress old: UInt32, newAddress new: UInt32) -> UInt16 {
        let once = adjust(checksum, old: UInt16(old >> 16), new: UInt16(new >> 16))
        return adjust(once, old: UInt16(truncatingIfNeeded: old), new: UInt16(truncatingIfNeeded: new))
    }

    // MARK: bulk summing

    /// Ones'-complement sum of native 64-bit words with end-around carry (not yet folded).
    @inlinable
    static func nativeSum(_ base: UnsafeRawPointer, count: Int) -> UInt64 {
        var acc: UInt64 = 0
        var p = base
        var n = count
        @inline(__always) func addCarry(_ w: UInt64) {
            let (s, o) = acc.addingReportingOverflow(w)
            acc = s &+ (o ? 1 : 0)
        }
        while n >= 32 {
            addCarry(p.loadUnaligned(as: UInt64.self))
            addCarry(p.loadUnaligned(fromByteOffset: 8, as: UInt64.self))
            addCarry(p.loadUnaligned(fromByteOffset: 16, as: UInt64.self))
            addCarry(p.loadUnaligned(fromByteOffset: 24, as: UInt64.self))
            p += 32
            n -= 32
        }
        while n >= 8 {
            addCarry(p.loadUnaligned(as: UInt64.self))
            p += 8
            n -= 8
        }
        if n >= 4 {
            addCarry(UInt64(p.loadUnaligned(as: UInt32.self)))
            p += 4
            n -= 4
        }
        if n >= 2 {
            addCarry(UInt64(p.loadUnaligned(as: UInt16.self)))
            p += 2
            n -= 2
        }
        if n == 1 {
            // A trailing byte is the high byte of a big-endian word padded with zero: in
            // native order that is the byte at its own address with a zero byte after it.
            var pair: UInt16 = 0
            withUnsafeMutableBytes(of: &pair) { $0[0] = p.load(as: UInt8.self) }
            addCarry(UInt64(pair))
        }
        return acc
    }

    /// Folds a 64-bit ones'-complement accumulator to 16 bits (native order).
    @inlinable @inline(__always)
    static func fold(_ acc: UInt64) -> UInt16 {
        var s = (acc >> 32) &+ (acc & 0xffff_ffff)
        s = (s >> 32) &+ (s & 0xffff_ffff)
        s = (s >> 16) &+ (s & 0xffff)
        s = (s >> 16) &+ (s & 0xffff)
        return UInt16(truncatingIfNeeded: s)
    }
}
