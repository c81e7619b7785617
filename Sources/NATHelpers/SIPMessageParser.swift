// Reading a SIP message (RFC 3261) in place, for the SIP helper: the start line, the header
// fields (by name, compact forms included, folded continuation lines joined to their field),
// Content-Length and Content-Type, and where the body is. Nothing is copied or allocated.
//
// Outcomes are defined for every input: `.notSIP` for datagrams that are not SIP at all
// (keep-alive CR LF pairs, STUN on the SIP port), `.malformed` with the reason for SIP that
// cannot be read safely (no end of headers, a Content-Length that is not a number or runs
// past the datagram, more header lines than `maxHeaderLines`). The helper passes both on
// unchanged; it counts the malformed ones.

public enum SIPHeaderName: Equatable, Sendable {
    case via, contact, from, to, contentLength, contentType, other

    /// The field a name (full or compact form, any case) stands for.
    static func named(_ bytes: UnsafeRawBufferPointer, _ range: Range<Int>) -> SIPHeaderName {
        let count = range.count
        if count == 1 {
            switch ASCIIBytes.upper(bytes[range.lowerBound]) {
            case UInt8(ascii: "V"): return .via
            case UInt8(ascii: "M"): return .contact
            case UInt8(ascii: "F"): return .from
            case UInt8(ascii: "T"): return .to
            case UInt8(ascii: "L"): return .contentLength
            case UInt8(ascii: "C"): return .contentType
            default: return .other
            }
        }
        if ASCIIBytes.equalsIgnoringCase(bytes, range, "Via") { return .via }
        if ASCIIBytes.equalsIgnoringCase(bytes, range, "Contact") { return .contact }
        if ASCIIBytes.equalsIgnoringCase(bytes, range, "From") { return .from }
        if ASCIIBytes.equalsIgnoringCase(bytes, range, "To") { return .to }
        if ASCIIBytes.equalsIgnoringCase(bytes, range, "Content-Length") { return .contentLength }
        if ASCIIBytes.equalsIgnoringCase(bytes, range, "Content-Type") { return .contentType }
        return .other
    }
}

public struct SIPMessage: Equatable, Sendable {
    public enum StartLine: Equatable, Sendable {
        /// A request: the method and the Request-URI (byte ranges).
        case request(method: Range<Int>, uri: Range<Int>)
        /// A response and its status code.
        case response(status: Int)
    }

    public var startLine: StartLine
    /// From the first header line to the end of the last one (before the empty line).
    public var headers: Range<Int>
    /// The body: Content-Length bytes after the empty line (the rest of the datagram when
    /// the message has no Content-Length, as RFC 3261 §18.3 allows over UDP).
    public var body: Range<Int>
    /// The Content-Length value's digits, when the field is there.
    public var contentLengthDigits: Range<Int>?
    /// Content-Type is application/sdp.
    public var bodyIsSDP: Bool
}

public enum SIPMalformation: Equatable, Sendable {
    case noEndOfHeaders
    /// On a stream, where it is the only way to find the message's end (RFC 3261 §18.3).
    case noContentLength
    case badStartLine
    case badContentLength
    case contentLengthBeyondDatagram
    case tooManyHeaderLines
    case headerWithoutColon
}

public enum SIPParse: Equatable, Sendable {
    case message(SIPMessage)
    case notSIP
    case malformed(SIPMalformation)
    /// On a stream: the message has not all arrived; its whole length when the headers have.
    case incomplete(length: Int?)
}

/// One header field: its name and its value, continuation lines included.
public struct SIPHeaderField: Equatable, Sendable {
    public var name: SIPHeaderName
    public var nameRange: Range<Int>
    /// From the first byte after the colon to the end of the field's last line (no CR LF).
    public var value: Range<Int>
}

public enum SIPMessageParser {
    /// Header lines read at most; a message with more is malformed (not parsed further).
    public static let maxHeaderLines = 256

    /// Reads the message at the start of `bytes`: a whole datagram, or (`stream`) the bytes of
    /// a TCP stream from a message's start, where more may follow the message or be missing.
    public static func parse(_ bytes: UnsafeRawBufferPointer, stream: Bool = false) -> SIPParse {
        // Not SIP: empty, keep-alives, anything whose first byte is not a letter (STUN starts 0x00/0x01).
        var first = 0
        while first < bytes.count, bytes[first] == 13 || bytes[first] == 10 { first += 1 }
        guard first < bytes.count, ASCIIBytes.isLetter(bytes[first]) else { return .notSIP }
        guard let lineEnd = ASCIIBytes.firstIndex(of: 10, bytes, first, bytes.count) else {
            if stream { return .incomplete(length: nil) }
            return looksLikeSIP(bytes, first, bytes.count) ? .malformed(.noEndOfHeaders) : .notSIP
        }
        let line = first..<trimCR(bytes, first, lineEnd)
        guard looksLikeSIP(bytes, line.lowerBound, line.upperBound) else { return .notSIP }
        guard let startLine = parseStartLine(bytes, line) else { return .malformed(.badStartLine) }

        // Header fields up to the empty line.
        var cursor = lineEnd + 1
        var lines = 0
        var contentLength: (value: Int, digits: Range<Int>)? = nil
        var bodyIsSDP = false
        let headersStart = cursor
        var bodyStart = 0
        while true {
            guard cursor < bytes.count, let end = ASCIIBytes.firstIndex(of: 10, bytes, cursor, bytes.count) else {
                return stream ? .incomplete(length: nil) : .malformed(.noEndOfHeaders)
            }
            if trimCR(bytes, cursor, end) == cursor { // the empty line
                bodyStart = end + 1
                break
            }
            lines += 1
            guard lines <= maxHeaderLines else { return .malformed(.tooManyHeaderLines) }
            cursor = end + 1
        }
        let headers = headersStart..<max(headersStart, cursor - 1)

        var field = headers.lowerBound
        while let header = nextField(bytes, from: &field, end: headers.upperBound) {
            guard let header else { return .malformed(.headerWithoutColon) }
            switch header.name {
            case .contentLength:
                let digits = ASCIIBytes.trimmed(bytes, header.value)
                guard !digits.isEmpty, digits.count <= 9, let value = ASCIIBytes.decimal(bytes, digits) else {
                    return .malformed(.badContentLength)
                }
                contentLength = (value, digits)
            case .contentType:
                let value = ASCIIBytes.trimmed(bytes, header.value)
                let media = value.lowerBound..<(ASCIIBytes.firstIndex(of: UInt8(ascii: ";"), bytes, value.lowerBound, value.upperBound) ?? value.upperBound)
                bodyIsSDP = ASCIIBytes.equalsIgnoringCase(bytes, ASCIIBytes.trimmed(bytes, media), "application/sdp")
            default:
                break
            }
        }
        var bodyEnd = bytes.count
        if let contentLength {
            guard contentLength.value <= bytes.count - bodyStart else {
                return stream ? .incomplete(length: bodyStart + contentLength.value) : .malformed(.contentLengthBeyondDatagram)
            }
            bodyEnd = bodyStart + contentLength.value
        } else if stream {
            return .malformed(.noContentLength)
        }
        return .message(SIPMessage(startLine: startLine, headers: headers, body: bodyStart..<bodyEnd,
                                   contentLengthDigits: contentLength?.digits, bodyIsSDP: bodyIsSDP))
    }

    /// The header field starting at `position` (advanced past it), `.some(nil)` for a line
    /// without a colon, nil at the end. Lines starting with SP or HT continue the field.
    public static func nextField(_ bytes: UnsafeRawBufferPointer, from position: inout Int, end: Int) -> SIPHeaderField?? {
        guard position < end else { return nil }
        let lineEnd = ASCIIBytes.firstIndex(of: 10, bytes, position, end) ?? end
        guard let colon = ASCIIBytes.firstIndex(of: UInt8(ascii: ":"), bytes, position, lineEnd) else {
            position = min(end, lineEnd + 1)
            return .some(nil)
        }
        let name = ASCIIBytes.trimmed(bytes, position..<colon)
        var last = lineEnd
        // Folded lines (RFC 3261 §7.3.1): the field goes on while the next line starts with SP/HT.
        while last + 1 < end, bytes[last + 1] == 32 || bytes[last + 1] == 9 {
            last = ASCIIBytes.firstIndex(of: 10, bytes, last + 1, end) ?? end
        }
        position = min(end, last + 1)
        return .some(SIPHeaderField(name: SIPHeaderName.named(bytes, name), nameRange: name,
                                    value: (colon + 1)..<trimCR(bytes, colon + 1, last)))
    }

    private static func trimCR(_ bytes: UnsafeRawBufferPointer, _ start: Int, _ lineEnd: Int) -> Int {
        lineEnd > start && bytes[lineEnd - 1] == 13 ? lineEnd - 1 : lineEnd
    }

    /// "SIP/2.0 " at the start (a response) or " SIP/2.0" at the end (a request).
    private static func looksLikeSIP(_ bytes: UnsafeRawBufferPointer, _ start: Int, _ end: Int) -> Bool {
        if end - start >= 8, ASCIIBytes.equalsIgnoringCase(bytes, start..<(start + 8), "SIP/2.0 ") { return true }
        let line = start..<(end > start && bytes[end - 1] == 13 ? end - 1 : end)
        return line.count >= 8 && ASCIIBytes.equalsIgnoringCase(bytes, (line.upperBound - 8)..<line.upperBound, " SIP/2.0")
    }

    private static func parseStartLine(_ bytes: UnsafeRawBufferPointer, _ line: Range<Int>) -> SIPMessage.StartLine? {
        if ASCIIBytes.equalsIgnoringCase(bytes, line.lowerBound..<(line.lowerBound + 8), "SIP/2.0 ") {
            let codeStart = line.lowerBound + 8
            guard line.upperBound - codeStart >= 3, let status = ASCIIBytes.decimal(bytes, codeStart..<(codeStart + 3)),
                  (100...699).contains(status), line.upperBound == codeStart + 3 || bytes[codeStart + 3] == 32
            else { return nil }
            return .response(status: status)
        }
        guard let space = ASCIIBytes.firstIndex(of: 32, bytes, line.lowerBound, line.upperBound), space > line.lowerBound else { return nil }
        let uriEnd = line.upperBound - 8
        guard uriEnd > space + 1, ASCIIBytes.firstIndex(of: 32, bytes, space + 1, uriEnd) == nil else { return nil }
        return .request(method: line.lowerBound..<space, uri: (space + 1)..<uriEnd)
    }
}
