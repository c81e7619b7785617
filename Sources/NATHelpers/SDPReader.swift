// Reading the lines of an SDP body (RFC 4566) that name addresses and ports, in place:
//   o=<user> <sess-id> <sess-version> IN IP4 <address>
//   c=IN IP4 <address>[/ttl[/count]]
//   m=<media> <port>[/<count>] <proto> <formats…>
//   a=rtcp:<port>[ IN IP4 <address>]                                         (RFC 3605)
// Anything else (IPv6, FQDNs, other attributes) is not reported and so never rewritten.

public struct SDPAddressText: Equatable, Sendable {
    public var range: Range<Int>
    public var address: UInt32
}

public struct SDPPortText: Equatable, Sendable {
    public var range: Range<Int>
    public var port: UInt16
}

public enum SDPReader {
    /// Each line of the body as (type letter, the value after "x=").
    public static func forEachLine(_ bytes: UnsafeRawBufferPointer, _ body: Range<Int>, _ visit: (UInt8, Range<Int>) -> Void) {
        var start = body.lowerBound
        while start < body.upperBound {
            let newline = ASCIIBytes.firstIndex(of: 10, bytes, start, body.upperBound) ?? body.upperBound
            var end = newline
            if end > start, bytes[end - 1] == 13 { end -= 1 }
            if end - start >= 2, bytes[start + 1] == UInt8(ascii: "=") { visit(bytes[start], (start + 2)..<end) }
            start = newline + 1
        }
    }

    /// The address of a c= value.
    public static func connectionAddress(_ bytes: UnsafeRawBufferPointer, _ value: Range<Int>) -> SDPAddressText? {
        guard value.count > 7, ASCIIBytes.equalsIgnoringCase(bytes, value.lowerBound..<(value.lowerBound + 7), "IN IP4 ") else { return nil }
        guard let parsed = ASCIIBytes.ipv4(bytes, at: value.lowerBound + 7, end: value.upperBound) else { return nil }
        // "/ttl" follows only multicast addresses, which are never rewritten.
        guard parsed.end == value.upperBound || ASCIIBytes.isSpace(bytes[parsed.end]) else { return nil }
        return SDPAddressText(range: (value.lowerBound + 7)..<parsed.end, address: parsed.address)
    }

    /// The unicast address of an o= value (its sixth field, after "IN IP4").
    public static func originAddress(_ bytes: UnsafeRawBufferPointer, _ value: Range<Int>) -> SDPAddressText? {
        var field = 0
        var i = value.lowerBound
        while i < value.upperBound, field < 3 {
            if bytes[i] == 32 { field += 1 }
            i += 1
        }
        guard field == 3 else { return nil }
        return connectionAddress(bytes, i..<value.upperBound)
    }

    /// The port of an m= value, and whether a port count (`/n`) follows it.
    public static func mediaPort(_ bytes: UnsafeRawBufferPointer, _ value: Range<Int>) -> (text: SDPPortText, hasCount: Bool)? {
        guard let space = ASCIIBytes.firstIndex(of: 32, bytes, value.lowerBound, value.upperBound) else { return nil }
        var end = space + 1
        while end < value.upperBound, ASCIIBytes.isDigit(bytes[end]) { end += 1 }
        guard let port = ASCIIBytes.decimal(bytes, (space + 1)..<end), port <= 65535, end < value.upperBound else { return nil }
        let next = bytes[end]
        guard next == 32 || next == UInt8(ascii: "/") else { return nil }
        return (SDPPortText(range: (space + 1)..<end, port: UInt16(port)), next == UInt8(ascii: "/"))
    }

    /// The port (and address, when given) of an a=rtcp: value.
    public static func rtcpAttribute(_ bytes: UnsafeRawBufferPointer, _ value: Range<Int>) -> (port: SDPPortText, address: SDPAddressText?)? {
        guard value.count > 5, ASCIIBytes.equalsIgnoringCase(bytes, value.lowerBound..<(value.lowerBound + 5), "rtcp:") else { return nil }
        var end = value.lowerBound + 5
        while end < value.upperBound, ASCIIBytes.isDigit(bytes[end]) { end += 1 }
        guard let port = ASCIIBytes.decimal(bytes, (value.lowerBound + 5)..<end), port > 0, port <= 65535 else { return nil }
        let text = SDPPortText(range: (value.lowerBound + 5)..<end, port: UInt16(port))
        guard end < value.upperBound else { return (text, nil) }
        guard bytes[end] == 32 else { return nil }
        return (text, connectionAddress(bytes, (end + 1)..<value.upperBound))
    }
}
