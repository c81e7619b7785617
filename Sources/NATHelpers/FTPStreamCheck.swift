// Is this control connection FTP at all? (NAT slipstreaming, issue #20 item 4.) A browser
// made to POST to attacker:2121 sends a request whose body can hold a PORT line for every
// LAN address; parsing every line of any stream on the helper's ports would let one of
// them, the victim's own, open a way in. So, as a real FTP session always does:
// - the server speaks first, with its greeting: 220 (or 120, "ready in n minutes", which
//   RFC 959 4.2 lets come before the 220) before any byte from the client;
// - every line the client sends is a command: a verb of 3 or 4 letters, then a space or the
//   end of the line (Telnet IAC sequences in front, as ABOR's "IAC IP IAC DM", allowed). An
//   HTTP request fails on its first header line ("Host: …"), a custom method or not;
// - the first PORT/EPRT naming an address that is not the client's own ends the check too:
//   a client does not guess its own address.
// A stream that fails is abandoned: nothing more of it is parsed or rewritten (counted once,
// `abandoned`). The memory is byte 16 of `HelperContext.state` (the line readers use 0-15).

import NATCore

struct FTPStreamCheck {
    private let state: UnsafeMutableRawBufferPointer
    static let offset = 16
    private static let serverSpoke: UInt8 = 1
    private static let greeted: UInt8 = 2
    private static let abandoned: UInt8 = 4

    init(_ state: UnsafeMutableRawBufferPointer) {
        // Too small a state (never the case in masqd: 64 bytes) checks nothing.
        self.state = state.count > FTPStreamCheck.offset ? state : UnsafeMutableRawBufferPointer(start: nil, count: 0)
    }

    private var flags: UInt8 { state.count > 0 ? state[FTPStreamCheck.offset] : FTPStreamCheck.greeted | FTPStreamCheck.serverSpoke }

    var isAbandoned: Bool { flags & FTPStreamCheck.abandoned != 0 }
    var serverHasSpoken: Bool { flags & FTPStreamCheck.serverSpoke != 0 }
    var serverGreeted: Bool { flags & FTPStreamCheck.greeted != 0 }

    func abandon(_ context: inout HelperContext) {
        guard state.count > 0, !isAbandoned else { return }
        state[FTPStreamCheck.offset] |= FTPStreamCheck.abandoned
        context.count(.abandoned)
    }

    /// The server's first bytes: a greeting, or (too few bytes yet) nil.
    func serverStarts(_ bytes: UnsafeRawBufferPointer, _ context: inout HelperContext) -> Bool? {
        guard bytes.count >= 3 else { return nil }
        let greeting = (bytes[0] == UInt8(ascii: "2") || bytes[0] == UInt8(ascii: "1"))
            && bytes[1] == UInt8(ascii: "2") && bytes[2] == UInt8(ascii: "0")
        if state.count > 0 { state[FTPStreamCheck.offset] |= FTPStreamCheck.serverSpoke | (greeting ? FTPStreamCheck.greeted : 0) }
        if !greeting { abandon(&context) }
        return greeting
    }

    /// A client line [start, end) shaped like an FTP command (see the top of the file); an
    /// empty line says nothing either way.
    static func isCommandLine(_ bytes: UnsafeRawBufferPointer, _ start: Int, _ end: Int) -> Bool {
        var i = start
        while i + 1 < end, bytes[i] == 0xff { i += 2 } // Telnet IAC + command
        if i == end { return true }
        var letters = 0
        while i < end, ASCIIBytes.isLetter(bytes[i]) {
            letters += 1
            i += 1
        }
        return (letters == 3 || letters == 4) && (i == end || bytes[i] == UInt8(ascii: " "))
    }
}
