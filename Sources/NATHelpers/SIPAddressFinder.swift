// Where a SIP header value names a host: the sent-by of each Via value, and the host part of
// the sip:/sips: URIs in Contact, From, To and the Request-URI. Only IPv4 literals are
// reported (a host name is not an address the NAT can have changed).

/// A host[:port] in a message: the bytes it occupies, the address, and the port if written.
public struct SIPEndpointText: Equatable, Sendable {
    public var range: Range<Int>
    public var address: UInt32
    public var port: UInt16?

    /// True when it names `address:port`; a missing port is SIP's default 5060.
    public func names(_ address: UInt32, _ port: UInt16) -> Bool { self.address == address && (self.port ?? 5060) == port }
}

public enum SIPAddressFinder {
    /// Each Via value's sent-by (`SIP/2.0/UDP host[:port];…`), in order.
    public static func forEachViaSentBy(_ bytes: UnsafeRawBufferPointer, _ value: Range<Int>, _ body: (SIPEndpointText) -> Void) {
        forEachCommaSeparated(bytes, value) { part in
            var i = part.lowerBound
            while i < part.upperBound, ASCIIBytes.isSpace(bytes[i]) { i += 1 }
            // The sent-protocol: SIP/2.0/UDP, then LWS.
            while i < part.upperBound, !ASCIIBytes.isSpace(bytes[i]) { i += 1 }
            while i < part.upperBound, ASCIIBytes.isSpace(bytes[i]) { i += 1 }
            if let endpoint = endpoint(bytes, at: i, end: part.upperBound) { body(endpoint) }
        }
    }

    /// The host of each sip:/sips: URI in the value (all of them, for Contact's lists).
    public static func forEachURIHost(_ bytes: UnsafeRawBufferPointer, _ value: Range<Int>, _ body: (SIPEndpointText) -> Void) {
        var i = value.lowerBound
        while i + 4 <= value.upperBound {
            var hostStart: Int? = nil
            if ASCIIBytes.equalsIgnoringCase(bytes, i..<(i + 4), "sip:") {
                hostStart = i + 4
            } else if i + 5 <= value.upperBound, ASCIIBytes.equalsIgnoringCase(bytes, i..<(i + 5), "sips:") {
                hostStart = i + 5
            }
            // A scheme only where a URI can start (not inside a word such as "gossip:").
            if let start = hostStart, i == value.lowerBound || !ASCIIBytes.isLetter(bytes[i - 1]) {
                var host = start
                // userinfo@ comes before any of ; > ? , or space.
                var j = start
                while j < value.upperBound {
                    let b = bytes[j]
                    if b == UInt8(ascii: "@") { host = j + 1; break }
                    if b == UInt8(ascii: ";") || b == UInt8(ascii: ">") || b == UInt8(ascii: "?") || b == UInt8(ascii: ",")
                        || ASCIIBytes.isSpace(b) { break }
                    j += 1
                }
                if let endpoint = endpoint(bytes, at: host, end: value.upperBound) { body(endpoint) }
                i = host
                continue
            }
            i += 1
        }
    }

    /// An IPv4 literal with an optional :port at `start`, ending where the host must end.
    static func endpoint(_ bytes: UnsafeRawBufferPointer, at start: Int, end: Int) -> SIPEndpointText? {
        guard start < end, let parsed = ASCIIBytes.ipv4(bytes, at: start, end: end) else { return nil }
        var stop = parsed.end
        var port: UInt16? = nil
        if stop < end, bytes[stop] == UInt8(ascii: ":") {
            var digits = stop + 1
            while digits < end, ASCIIBytes.isDigit(bytes[digits]) { digits += 1 }
            guard let value = ASCIIBytes.decimal(bytes, (stop + 1)..<digits), value > 0, value <= 65535 else { return nil }
            port = UInt16(value)
            stop = digits
        }
        // What may follow a host: the end, ; params, > of a name-addr, ? headers, , next value, space.
        if stop < end {
            let b = bytes[stop]
            guard b == UInt8(ascii: ";") || b == UInt8(ascii: ">") || b == UInt8(ascii: "?") || b == UInt8(ascii: ",")
                    || ASCIIBytes.isSpace(b) else { return nil }
        }
        return SIPEndpointText(range: start..<stop, address: parsed.address, port: port)
    }

    /// Splits at commas outside double quotes.
    private static func forEachCommaSeparated(_ bytes: UnsafeRawBufferPointer, _ value: Range<Int>, _ body: (Range<Int>) -> Void) {
        var start = value.lowerBound
        var quoted = false
        for i in value {
            if bytes[i] == UInt8(ascii: "\"") { quoted.toggle() }
            if bytes[i] == UInt8(ascii: ","), !quoted {
                body(start..<i)
                start = i + 1
            }
        }
        body(start..<value.upperBound)
    }
}
