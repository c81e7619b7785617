// Parsing the IRC lines that carry DCC offers, straight from the inspected bytes (no copies,
// no allocation). Every function takes the line as [start, end) of `bytes`, without its
// terminator, and never reads outside it.
//
// The only lines recognised:
//
//   [@tags ][:prefix ]PRIVMSG|NOTICE <target> :\x01DCC <type> <argument> <address> <port>[ <more>]\x01
//   [@tags ][:prefix ]PRIVMSG|NOTICE <target> :\x01DCC ACCEPT <argument> <port> <position>[ <more>]\x01
//
// The CTCP must open the trailing parameter: "\x01DCC" anywhere else in a line (inside the
// text of a message, in a target, in a prefix) is text, not an offer (CVE-2022-2663).

import NATCore

/// Where a line stands against the DCC line grammar.
enum IRCHeaderScan: Equatable {
    /// It is not (and, if unfinished, cannot become) a DCC line.
    case notDCC
    /// An unfinished line that agrees with a DCC line so far.
    case needMore
    /// A DCC line: the index of its type (right after "\x01DCC ").
    case dcc(Int)
}

/// An endpoint offered by DCC SEND, CHAT, MOVE, TSEND or SCHAT.
struct DCCOffer: Equatable {
    var address: IPv4Address
    /// Written as a dotted quad rather than a 32-bit integer (rewritten the same way).
    var dotted: Bool
    var port: UInt16
    /// The bytes the rewrite replaces: "<address> <port>" (the spaces between them too).
    var range: Range<Int>
}

enum DCCParseResult: Equatable {
    case offer(DCCOffer)
    /// DCC ACCEPT: the port of an earlier offer, and its bytes.
    case accept(port: UInt16, range: Range<Int>)
    /// An offer with port 0: a reverse ("passive") DCC, the peer will be the one listening.
    case passive
    /// An offer of an IPv6 endpoint: not ours.
    case otherProtocol
    /// A DCC type the helper leaves alone (RESUME, or one it does not know).
    case notOurs
    case malformed
}

enum IRCDCCParser {
    /// The DCC types that offer an endpoint to connect to.
    static let offerTypes: [StaticString] = ["SEND", "CHAT", "MOVE", "TSEND", "SCHAT"]
    static let acceptType: StaticString = "ACCEPT"

    // MARK: the header, up to the DCC type

    /// Scans [start, end) as far as the DCC type. With `complete` false the line is
    /// unfinished: running out of bytes where the grammar still agrees gives `.needMore`.
    static func scanHeader(_ bytes: UnsafeRawBufferPointer, _ start: Int, _ end: Int, complete: Bool) -> IRCHeaderScan {
        let more: IRCHeaderScan = complete ? .notDCC : .needMore
        var i = start
        // Message tags (IRCv3), then the prefix: a token each, then spaces.
        if i < end, bytes[i] == UInt8(ascii: "@") {
            i = tokenEnd(bytes, i, end)
            guard i < end else { return more }
            i = skipSpaces(bytes, i, end)
        }
        if i < end, bytes[i] == UInt8(ascii: ":") {
            i = tokenEnd(bytes, i, end)
            guard i < end else { return more }
            i = skipSpaces(bytes, i, end)
        }
        guard i < end else { return more }
        // The command, then its space.
        let privmsg = match(bytes, &i, end, "PRIVMSG ")
        if privmsg != .yes {
            let notice = match(bytes, &i, end, "NOTICE ")
            if notice != .yes { return privmsg == .truncated || notice == .truncated ? more : .notDCC }
        }
        i = skipSpaces(bytes, i, end)
        guard i < end else { return more }
        // The target: one token (a trailing parameter here would mean there is none).
        guard bytes[i] != UInt8(ascii: ":") else { return .notDCC }
        i = tokenEnd(bytes, i, end)
        guard i < end else { return more }
        i = skipSpaces(bytes, i, end)
        guard i < end else { return more }
        // The trailing parameter, which must start with the CTCP.
        switch match(bytes, &i, end, ":\u{01}DCC ") {
        case .yes: return .dcc(i)
        case .truncated: return more
        case .no: return .notDCC
        }
    }

    // MARK: the DCC body

    /// Parses a DCC line's body: `typeStart` from `scanHeader`, `end` the line's end.
    static func parseBody(_ bytes: UnsafeRawBufferPointer, _ typeStart: Int, _ end: Int) -> DCCParseResult {
        guard typeStart <= end else { return .malformed }
        var typeEnd = typeStart
        while typeEnd < end, bytes[typeEnd] != UInt8(ascii: " "), bytes[typeEnd] != 0x01 { typeEnd += 1 }
        let isOffer = offerTypes.contains { equalsIgnoringCase(bytes, typeStart, typeEnd, $0) }
        let isAccept = equalsIgnoringCase(bytes, typeStart, typeEnd, acceptType)
        guard isOffer || isAccept else { return .notOurs }
        // The CTCP ends with \x01 at the end of the line, and holds no other one.
        guard end > typeEnd, bytes[end - 1] == 0x01 else { return .malformed }
        let bodyEnd = end - 1
        var k = typeEnd
        while k < bodyEnd {
            if bytes[k] == 0x01 { return .malformed }
            k += 1
        }
        // The argument: a file name, quoted if it has spaces, or "chat".
        var i = skipSpaces(bytes, typeEnd, bodyEnd)
        guard i < bodyEnd else { return .malformed }
        if bytes[i] == UInt8(ascii: "\"") {
            guard let close = ASCIIBytes.firstIndex(of: UInt8(ascii: "\""), bytes, i + 1, bodyEnd) else { return .malformed }
            i = close + 1
            guard i < bodyEnd, bytes[i] == UInt8(ascii: " ") else { return .malformed }
        } else {
            i = tokenEnd(bytes, i, bodyEnd)
        }
        i = skipSpaces(bytes, i, bodyEnd)
        guard i < bodyEnd else { return .malformed }

        if isAccept {
            // "<port> <position>[ <token>]": the port of an earlier offer.
            let portStart = i
            i = tokenEnd(bytes, i, bodyEnd)
            guard let port = number(bytes, portStart, i, maxDigits: 5), port <= 65535 else { return .malformed }
            let portEnd = i
            i = skipSpaces(bytes, i, bodyEnd)
            let positionEnd = tokenEnd(bytes, i, bodyEnd)
            guard number(bytes, i, positionEnd, maxDigits: 20) != nil else { return .malformed }
            return .accept(port: UInt16(port), range: portStart..<portEnd)
        }

        // "<address> <port>[ <size>[ <token>]]".
        let addressStart = i
        let addressEnd = tokenEnd(bytes, i, bodyEnd)
        i = skipSpaces(bytes, addressEnd, bodyEnd)
        guard i > addressEnd, i < bodyEnd else { return .malformed }
        let portStart = i
        let portEnd = tokenEnd(bytes, i, bodyEnd)
        guard let port = number(bytes, portStart, portEnd, maxDigits: 5), port <= 65535 else { return .malformed }
        let address: UInt32
        let dotted: Bool
        if let value = number(bytes, addressStart, addressEnd, maxDigits: 10) {
            guard value <= UInt64(UInt32.max) else { return .malformed }
            address = UInt32(value)
            dotted = false
        } else if let value = dottedQuad(bytes, addressStart, addressEnd) {
            address = value
            dotted = true
        } else if looksLikeIPv6(bytes, addressStart, addressEnd) {
            return port == 0 ? .passive : .otherProtocol
        } else {
            return .malformed
        }
        if port == 0 { return .passive }
        return .offer(DCCOffer(address: IPv4Address(address), dotted: dotted, port: UInt16(port), range: addressStart..<portEnd))
    }

    // MARK: pieces

    enum Match { case yes, no, truncated }

    /// `keyword` (letters case-insensitively) at `i`; advances `i` past it on `.yes`.
    static func match(_ bytes: UnsafeRawBufferPointer, _ i: inout Int, _ end: Int, _ keyword: StaticString) -> Match {
        let length = keyword.utf8CodeUnitCount
        let head = keyword.utf8Start
        var k = 0
        while k < length {
            guard i + k < end else { return .truncated }
            guard ASCIIBytes.upper(bytes[i + k]) == head[k] else { return .no }
            k += 1
        }
        i += length
        return .yes
    }

    /// True if [start, end) is exactly `word` (letters case-insensitively).
    static func equalsIgnoringCase(_ bytes: UnsafeRawBufferPointer, _ start: Int, _ end: Int, _ word: StaticString) -> Bool {
        guard end - start == word.utf8CodeUnitCount else { return false }
        let head = word.utf8Start
        for k in 0..<(end - start) where ASCIIBytes.upper(bytes[start + k]) != head[k] { return false }
        return true
    }

    /// 1…maxDigits decimal digits filling [start, end) exactly (up to 20 fit in a UInt64).
    static func number(_ bytes: UnsafeRawBufferPointer, _ start: Int, _ end: Int, maxDigits: Int) -> UInt64? {
        guard end > start, end - start <= min(maxDigits, 19) else { return nil }
        var value: UInt64 = 0
        for k in start..<end {
            guard ASCIIBytes.isDigit(bytes[k]) else { return nil }
            value = value * 10 + UInt64(bytes[k] - UInt8(ascii: "0"))
        }
        return value
    }

    /// "a.b.c.d" filling [start, end) exactly, each 0–255 in at most 3 digits.
    static func dottedQuad(_ bytes: UnsafeRawBufferPointer, _ start: Int, _ end: Int) -> UInt32? {
        guard let parsed = ASCIIBytes.ipv4(bytes, at: start, end: end), parsed.end == end else { return nil }
        return parsed.address
    }

    /// Hex digits, colons and dots, with at least one colon: an IPv6 address (not checked
    /// further: it is passed as it is).
    static func looksLikeIPv6(_ bytes: UnsafeRawBufferPointer, _ start: Int, _ end: Int) -> Bool {
        var colons = 0
        for k in start..<max(start, end) {
            let b = bytes[k]
            if b == UInt8(ascii: ":") { colons += 1; continue }
            guard ASCIIBytes.isDigit(b) || b == UInt8(ascii: ".") || (ASCIIBytes.upper(b) >= UInt8(ascii: "A") && ASCIIBytes.upper(b) <= UInt8(ascii: "F")) else {
                return false
            }
        }
        return colons >= 2
    }

    /// The end of the token at `i`: the next space, or `end`.
    static func tokenEnd(_ bytes: UnsafeRawBufferPointer, _ i: Int, _ end: Int) -> Int {
        var i = i
        while i < end, bytes[i] != UInt8(ascii: " ") { i += 1 }
        return i
    }

    static func skipSpaces(_ bytes: UnsafeRawBufferPointer, _ i: Int, _ end: Int) -> Int {
        var i = i
        while i < end, bytes[i] == UInt8(ascii: " ") { i += 1 }
        return i
    }
}
