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
