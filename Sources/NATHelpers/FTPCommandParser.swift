// Parsing the four FTP lines the helper rewrites, straight from the inspected bytes (no
// copies, no allocation). Every function takes the line as [start, end) of `bytes`, without
// its terminator, and never reads outside it.

import NATCore

/// An address and port found in a line, and the bytes that carry them.
struct FTPEndpoint: Equatable {
    /// Nil for a 229 reply, which carries only the port.
    var address: IPv4Address?
    var port: UInt16
    /// The bytes the rewrite replaces: "h1,h2,h3,h4,p1,p2" (PORT, 227), "a.b.c.d|port"
    /// (EPRT, delimiters outside), "port" (229).
    var range: Range<Int>
    /// EPRT: the delimiter to write between address and port.
    var delimiter: UInt8 = 0
}

enum FTPParseResult: Equatable {
    case endpoint(FTPEndpoint)
    /// A well-formed line for another network protocol (EPRT |2|…): not ours, passed.
    case otherProtocol
    case malformed
}

/// The lines the helper looks at.
enum FTPLineKind {
    case port, eprt, reply227, reply229
}

enum FTPCommandParser {
    static let portKeyword: StaticString = "PORT "
    static let eprtKeyword: StaticString = "EPRT "
    static let passiveKeyword: StaticString = "227 "
    static let extendedPassiveKeyword: StaticString = "229 "

    // MARK: classifying lines

    /// The kind of a complete line, if it is one the helper rewrites in this direction: the
    /// keyword (case-insensitive) followed by a space, or the bare keyword (then malformed).
    static func kind(_ bytes: UnsafeRawBufferPointer, _ start: Int, _ end: Int, fromClient: Bool) -> FTPLineKind? {
        if fromClient {
            if keywordLine(bytes, start, end, portKeyword) { return .port }
            if keywordLine(bytes, start, end, eprtKeyword) { return .eprt }
        } else {
            if keywordLine(bytes, start, end, passiveKeyword) { return .reply227 }
            if keywordLine(bytes, start, end, extendedPassiveKeyword) { return .reply229 }
        }
        return nil
    }

    /// True if an unfinished line [start, end) may still become one the helper rewrites: its
    /// bytes so far agree with the keyword and its space, or begin with them.
    static func mayBecomeRewritten(_ bytes: UnsafeRawBufferPointer, _ start: Int, _ end: Int, fromClient: Bool) -> Bool {
        if fromClient {
            return agreesWithPrefix(bytes, start, end, portKeyword) || agreesWithPrefix(bytes, start, end, eprtKeyword)
        }
        return agreesWithPrefix(bytes, start, end, passiveKeyword) || agreesWithPrefix(bytes, start, end, extendedPassiveKeyword)
    }

    /// "KEYWORD " at `start` (or the line is exactly "KEYWORD").
    private static func keywordLine(_ bytes: UnsafeRawBufferPointer, _ start: Int, _ end: Int, _ keyword: StaticString) -> Bool {
        let length = keyword.utf8CodeUnitCount
        let word = length - 1 // without its space
        guard end - start >= word else { return false }
        let head = keyword.utf8Start
        for i in 0..<word where ASCIIBytes.upper(bytes[start + i]) != head[i] { return false }
        return end - start == word || bytes[start + word] == UInt8(ascii: " ")
    }

    private static func agreesWithPrefix(_ bytes: UnsafeRawBufferPointer, _ start: Int, _ end: Int, _ keyword: StaticString) -> Bool {
        let n = min(end - start, keyword.utf8CodeUnitCount)
        let head = keyword.utf8Start
        for i in 0..<n where ASCIIBytes.upper(bytes[start + i]) != head[i] { return false }
        return true
    }

    // MARK: the four lines

    /// `PORT h1,h2,h3,h4,p1,p2` (RFC 959): decimal numbers 0–255 of at most 3 digits, no
    /// spaces around the commas, nothing but spaces after the last one.
    static func parsePORT(_ bytes: UnsafeRawBufferPointer, _ start: Int, _ end: Int) -> FTPParseResult {
        var i = skipSpaces(bytes, start + 4, end)
        guard i > start + 4, let found = sixNumbers(bytes, &i, end), onlySpaces(bytes, i, end) else { return .malformed }
        return .endpoint(found)
    }

    /// `EPRT <d>1<d>a.b.c.d<d>port<d>` (RFC 2428): `d` is any of ASCII 33–126; protocol 2
    /// (IPv6) is not ours.
    static func parseEPRT(_ bytes: UnsafeRawBufferPointer, _ start: Int, _ end: Int) -> FTPParseResult {
        var i = skipSpaces(bytes, start + 4, end)
        guard i > start + 4, i < end else { return .malformed }
        let d = bytes[i]
        guard d >= 33, d <= 126 else { return .malformed }
        i += 1
        guard let family = number(bytes, &i, end, maxDigits: 1), i < end, bytes[i] == d else { return .malformed }
        i += 1
        switch family {
        case 1: break
        case 2:
            // An IPv6 address, then the port: check the shape only.
            guard let close = ASCIIBytes.firstIndex(of: d, bytes, i, end), close > i else { return .malformed }
            var j = close + 1
            guard number(bytes, &j, end, maxDigits: 5) != nil, j < end, bytes[j] == d else { return .malformed }
            return .otherProtocol
        default: return .malformed
        }
        let addressStart = i
        guard let address = dottedQuad(bytes, &i, end), i < end, bytes[i] == d else { return .malformed }
        i += 1
        guard let port = number(bytes, &i, end, maxDigits: 5), port <= 65535, i < end, bytes[i] == d else { return .malformed }
        let portEnd = i
        i += 1
        guard onlySpaces(bytes, i, end) else { return .malformed }
        return .endpoint(FTPEndpoint(address: address, port: UInt16(port), range: addressStart..<portEnd, delimiter: d))
    }

    /// `227 <text> (h1,h2,h3,h4,p1,p2)`: the first run of six comma-separated numbers after
    /// the code, with or without parentheses.
    static func parse227(_ bytes: UnsafeRawBufferPointer, _ start: Int, _ end: Int) -> FTPParseResult {
        var i = start + 3
        while i < end {
            if ASCIIBytes.isDigit(bytes[i]), !ASCIIBytes.isDigit(bytes[i - 1]) {
                var j = i
                if let found = sixNumbers(bytes, &j, end), !(j < end && bytes[j] == UInt8(ascii: ",")) {
                    return .endpoint(found)
                }
            }
            i += 1
        }
        return .malformed
    }

    /// `229 <text> (<d><d><d>port<d>)` (RFC 2428 EPSV): `d` any of ASCII 33–126 but a digit.
    static func parse229(_ bytes: UnsafeRawBufferPointer, _ start: Int, _ end: Int) -> FTPParseResult {
        guard let open = ASCIIBytes.firstIndex(of: UInt8(ascii: "("), bytes, start + 3, end), open + 4 < end else { return .malformed }
        let d = bytes[open + 1]
        guard d >= 33, d <= 126, !ASCIIBytes.isDigit(d), bytes[open + 2] == d, bytes[open + 3] == d else { return .malformed }
        var i = open + 4
        let portStart = i
        guard let port = number(bytes, &i, end, maxDigits: 5), port <= 65535, i < end, bytes[i] == d else { return .malformed }
        return .endpoint(FTPEndpoint(address: nil, port: UInt16(port), range: portStart..<i))
    }

    // MARK: pieces

    /// "n,n,n,n,n,n" at `i`: an address and a port (n5 * 256 + n6).
    private static func sixNumbers(_ bytes: UnsafeRawBufferPointer, _ i: inout Int, _ end: Int) -> FTPEndpoint? {
        let first = i
        guard let value = byteList(bytes, &i, end, count: 6, separator: UInt8(ascii: ",")) else { return nil }
        return FTPEndpoint(address: IPv4Address(UInt32(value >> 16)), port: UInt16(value & 0xffff), range: first..<i)
    }

    /// "a.b.c.d" at `i`, each 0–255 in at most 3 digits.
    private static func dottedQuad(_ bytes: UnsafeRawBufferPointer, _ i: inout Int, _ end: Int) -> IPv4Address? {
        byteList(bytes, &i, end, count: 4, separator: UInt8(ascii: ".")).map { IPv4Address(UInt32($0)) }
    }

    /// `count` (at most 8) numbers at `i`, each 0–255 in at most 3 digits, apart by `separator`:
    /// one big-endian value, a byte each.
    private static func byteList(_ bytes: UnsafeRawBufferPointer, _ i: inout Int, _ end: Int, count: Int, separator: UInt8) -> UInt64? {
        var value: UInt64 = 0
        for k in 0..<count {
            if k > 0 {
                guard i < end, bytes[i] == separator else { return nil }
                i += 1
            }
            guard let n = number(bytes, &i, end, maxDigits: 3), n <= 255 else { return nil }
            value = value << 8 | UInt64(n)
        }
        return value
    }

    /// 1…maxDigits decimal digits at `i` (not followed by another digit).
    private static func number(_ bytes: UnsafeRawBufferPointer, _ i: inout Int, _ end: Int, maxDigits: Int) -> UInt32? {
        var value: UInt32 = 0
        var digits = 0
        while i < end, ASCIIBytes.isDigit(bytes[i]) {
            digits += 1
            guard digits <= maxDigits else { return nil }
            value = value * 10 + UInt32(bytes[i] - UInt8(ascii: "0"))
            i += 1
        }
        return digits > 0 ? value : nil
    }

    private static func skipSpaces(_ bytes: UnsafeRawBufferPointer, _ i: Int, _ end: Int) -> Int {
        var i = i
        while i < end, bytes[i] == UInt8(ascii: " ") { i += 1 }
        return i
    }

    private static func onlySpaces(_ bytes: UnsafeRawBufferPointer, _ i: Int, _ end: Int) -> Bool {
        var i = i
        while i < end {
            guard bytes[i] == UInt8(ascii: " ") || bytes[i] == UInt8(ascii: "\t") else { return false }
            i += 1
        }
        return true
    }
}
