// Byte scanning shared by the FTP and IRC parsers: their lines are ASCII in raw packet bytes,
// looked at in place (no String, no allocation).

enum ASCIIBytes {
    /// The index of the first `byte` in `bytes[from..<end]`, or nil.
    static func firstIndex(of byte: UInt8, _ bytes: UnsafeRawBufferPointer, _ from: Int, _ end: Int) -> Int? {
        var i = from
        while i < end {
            if bytes[i] == byte { return i }
            i += 1
        }
        return nil
    }

    @inline(__always)
    static func upper(_ byte: UInt8) -> UInt8 {
        byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z") ? byte - 32 : byte
    }

    @inline(__always)
    static func isDigit(_ byte: UInt8) -> Bool { byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") }
}

extension ASCIIBytes {
    @inline(__always)
    static func isLetter(_ byte: UInt8) -> Bool { upper(byte) >= UInt8(ascii: "A") && upper(byte) <= UInt8(ascii: "Z") }

    /// `bytes[range]` equals `word`, ASCII letters in any case.
    static func equalsIgnoringCase(_ bytes: UnsafeRawBufferPointer, _ range: Range<Int>, _ word: StaticString) -> Bool {
        guard range.count == word.utf8CodeUnitCount, range.upperBound <= bytes.count else { return false }
        return word.withUTF8Buffer { expected in
            for i in 0..<expected.count where upper(bytes[range.lowerBound + i]) != upper(expected[i]) { return false }
            return true
        }
    }

    /// `range` without leading and trailing spaces, tabs, CR and LF.
    static func trimmed(_ bytes: UnsafeRawBufferPointer, _ range: Range<Int>) -> Range<Int> {
        var start = range.lowerBound, end = range.upperBound
        while start < end, isSpace(bytes[start]) { start += 1 }
        while end > start, isSpace(bytes[end - 1]) { end -= 1 }
        return start..<end
    }

    @inline(__always)
    static func isSpace(_ byte: UInt8) -> Bool { byte == 32 || byte == 9 || byte == 13 || byte == 10 }

    /// The decimal number `bytes[range]` (digits only, at most 9), or nil.
    static func decimal(_ bytes: UnsafeRawBufferPointer, _ range: Range<Int>) -> Int? {
        guard !range.isEmpty, range.count <= 9 else { return nil }
        var value = 0
        for i in range {
            guard isDigit(bytes[i]) else { return nil }
            value = value * 10 + Int(bytes[i] - UInt8(ascii: "0"))
        }
        return value
    }

    /// A dotted-quad IPv4 address starting at `start`: its value and where it ends, or nil.
    /// Each part is 1-3 digits up to 255; the address must not run on into more digits or dots.
    static func ipv4(_ bytes: UnsafeRawBufferPointer, at start: Int, end: Int) -> (address: UInt32, end: Int)? {
        var value: UInt32 = 0
        var i = start
        for part in 0..<4 {
            if part > 0 {
                guard i < end, bytes[i] == UInt8(ascii: ".") else { return nil }
                i += 1
            }
            var octet: UInt32 = 0
            var digits = 0
            while i < end, isDigit(bytes[i]), digits < 3 {
                octet = octet * 10 + UInt32(bytes[i] - UInt8(ascii: "0"))
                i += 1
                digits += 1
            }
            guard digits > 0, octet <= 255 else { return nil }
            value = value << 8 | octet
        }
        if i < end, isDigit(bytes[i]) || bytes[i] == UInt8(ascii: ".") { return nil }
        return (value, i)
    }
}
