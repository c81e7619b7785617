// Reading a TFTP request (RFC 1350, options RFC 2347) in place: opcode, file name, mode.
//
//   2 bytes opcode (1 RRQ, 2 WRQ) | file name | 0 | mode | 0 | [option | 0 | value | 0]…
//
// Only what the helper needs is checked: the opcode, a non-empty NUL-terminated file name,
// and a mode of netascii, octet or mail (any case). Options after the mode are not
// looked at (they change nothing the NAT does).

import NATCore

public enum TFTPOpcode: UInt16, Sendable {
    case readRequest = 1
    case writeRequest = 2
    case data = 3
    case acknowledgement = 4
    case error = 5
    case optionAcknowledgement = 6
}

public enum TFTPRequestParse: Equatable, Sendable {
    /// A read or write request; `fileName` and `mode` are byte ranges of the datagram.
    case request(TFTPOpcode, fileName: Range<Int>, mode: Range<Int>)
    /// Another TFTP message (data, acknowledgement, error, or an unknown opcode).
    case notARequest
    /// A request opcode with a body that is not a request.
    case malformed
}

public enum TFTPRequestParser {
    public static func parse(_ bytes: UnsafeRawBufferPointer) -> TFTPRequestParse {
        guard bytes.count >= 2 else { return .malformed }
        let opcode = UInt16(bytes[0]) << 8 | UInt16(bytes[1])
        guard opcode == TFTPOpcode.readRequest.rawValue || opcode == TFTPOpcode.writeRequest.rawValue else { return .notARequest }
        guard let nameEnd = ASCIIBytes.firstIndex(of: 0, bytes, 2, bytes.count), nameEnd > 2,
              let modeEnd = ASCIIBytes.firstIndex(of: 0, bytes, nameEnd + 1, bytes.count),
              isMode(bytes, nameEnd + 1, modeEnd)
        else { return .malformed }
        return .request(opcode == 1 ? .readRequest : .writeRequest, fileName: 2..<nameEnd, mode: (nameEnd + 1)..<modeEnd)
    }

    private static func isMode(_ bytes: UnsafeRawBufferPointer, _ start: Int, _ end: Int) -> Bool {
        func matches(_ word: StaticString) -> Bool {
            guard end - start == word.utf8CodeUnitCount else { return false }
            return word.withUTF8Buffer { expected in
                for i in 0..<expected.count where ASCIIBytes.upper(bytes[start + i]) != ASCIIBytes.upper(expected[i]) {
                    return false
                }
                return true
            }
        }
        return matches("netascii") || matches("octet") || matches("mail")
    }
}
