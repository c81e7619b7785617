import NATCore

// The one line of the rendezvous protocol the helper reads: `REGISTER a.b.c.d:port` at the
// start of a datagram, ended by CR, LF, a space or the datagram's end. Read in place from
// the datagram's bytes (the helper runs in the packet path: no copies, no allocation).

enum RegisterLine {
    /// A registration, where its `a.b.c.d:port` text is, and what it says.
    case register(endpoint: Range<Int>, address: IPv4Address, port: UInt16)
    /// Starts with `REGISTER ` but the endpoint after it does not parse.
    case malformed
    /// Some other message of the protocol: not the helper's business.
    case other

    static let keyword: StaticString = "REGISTER "

    static func parse(_ bytes: UnsafeRawBufferPointer) -> RegisterLine {
        let keywordLength = keyword.utf8CodeUnitCount
        guard bytes.count > keywordLength else { return .other }
        let matches = keyword.withUTF8Buffer { word in (0..<keywordLength).allSatisfy { bytes[$0] == word[$0] } }
        guard matches else { return .other }

        var i = keywordLength
        var address: UInt32 = 0
        for octet in 0..<4 {
            guard let value = number(bytes, &i, max: 255) else { return .malformed }
            address = address << 8 | value
            let separator = octet < 3 ? UInt8(ascii: ".") : UInt8(ascii: ":")
            guard i < bytes.count, bytes[i] == separator else { return .malformed }
            i += 1
        }
        guard let port = number(bytes, &i, max: 65535), port > 0 else { return .malformed }
        guard i == bytes.count || bytes[i] == UInt8(ascii: "\r") || bytes[i] == UInt8(ascii: "\n") || bytes[i] == UInt8(ascii: " ") else {
            return .malformed
        }
        return .register(endpoint: keywordLength..<i, address: IPv4Address(address), port: UInt16(port))
    }

    /// 1 to 5 decimal digits from `i` on, at most `max`; moves `i` past them.
    private static func number(_ bytes: UnsafeRawBufferPointer, _ i: inout Int, max: UInt32) -> UInt32? {
        var value: UInt32 = 0
        var digits = 0
        while i < bytes.count, bytes[i] >= UInt8(ascii: "0"), bytes[i] <= UInt8(ascii: "9"), digits < 5 {
            value = value * 10 + UInt32(bytes[i] - UInt8(ascii: "0"))
            digits += 1
            i += 1
        }
        return digits > 0 && value <= max ? value : nil
    }
}
