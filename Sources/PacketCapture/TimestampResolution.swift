// pcapng's if_tsresol: timestamps count units of 10^-n seconds (high bit clear) or 2^-n
// seconds (high bit set); the default is microseconds.

public struct TimestampResolution: Sendable, Equatable {
    /// The option byte as the file has it.
    public var rawValue: UInt8

    public static let microseconds = TimestampResolution(rawValue: 6)
    public static let nanoseconds = TimestampResolution(rawValue: 9)

    public init(rawValue: UInt8) { self.rawValue = rawValue }

    var isBinary: Bool { rawValue & 0x80 != 0 }
    var exponent: Int { Int(rawValue & 0x7f) }

    /// Resolutions whose conversion to nanoseconds fits the arithmetic below: 10^-0 … 10^-19
    /// (10^19 is the largest power of ten in 64 bits) and 2^-0 … 2^-63.
    var isSupported: Bool { isBinary ? exponent <= 63 : exponent <= 19 }

    /// `units` of this resolution in nanoseconds, or nil when that does not fit in 64 bits.
    func nanoseconds(_ units: UInt64) -> UInt64? {
        if isBinary {
            // units * 10^9 / 2^n, through the 128-bit product.
            let product = units.multipliedFullWidth(by: 1_000_000_000)
            let n = exponent
            if n == 0 { return product.high == 0 ? product.low : nil }
            guard product.high >> n == 0 else { return nil }
            return product.high << (64 - n) | product.low >> n
        }
        if exponent <= 9 {
            let (value, overflow) = units.multipliedReportingOverflow(by: Self.powerOfTen(9 - exponent))
            return overflow ? nil : value
        }
        return units / Self.powerOfTen(exponent - 9)
    }

    static func powerOfTen(_ n: Int) -> UInt64 {
        var value: UInt64 = 1
        for _ in 0..<n { value &*= 10 }
        return value
    }
}
