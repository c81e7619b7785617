// The FTP helper: rewrites the addresses FTP sends inside its control connection so data
// connections cross the NAT, using only NATCore's public helper API.
//
//   Client inside, commands it sends:   PORT h1,h2,h3,h4,p1,p2          (RFC 959)
//                                       EPRT |1|a.b.c.d|port|           (RFC 2428)
//   Server inside (behind a forward),   227 … (h1,h2,h3,h4,p1,p2)       (PASV reply)
//   replies it sends:                   229 … (|||port|)                (EPSV reply)
//
// Each offered endpoint gets an expectation (one connection, from the control connection's
// remote address, any port) and is replaced by the external address and the port the core
// reserved for it. The core fixes lengths, checksums and sequence numbers.
//
// How it differs from Linux's nf_conntrack_ftp + nf_nat_ftp and libalias's alias_ftp:
// - Sender-address check: the address offered must be the sender's own (as both do for
//   IPv4); `allowForeignAddresses` lets it name another internal host (the expectation then
//   goes to that host; one outside the internal prefixes is refused by the core, `.limit`).
// - Low ports: a port below 1024 is refused (as alias_ftp does; nf_conntrack_ftp expects
//   any port), so a PORT line cannot open a way in to, say, an internal host's sshd.
// - Lines split across segments: the unfinished start of a line that may become one we
//   rewrite is held by the core and shown again with the next bytes, so the complete line
//   is rewritten. nf_conntrack_ftp drops a segment ending in a partial match (hoping the
//   retransmission is coalesced); alias_ftp misses a command that does not fit one segment.
// - Every line of a segment is looked at, not only the one the segment starts with. Like
//   both, a segment that starts in the middle of a line is not taken for a command: the
//   helper remembers, per direction, whether the stream is at a line start (and checks
//   that a line it asked to hold really comes back first).
// - EPRT (client inside) and EPSV's 229 (server inside) are handled like PORT and 227;
//   EPRT for IPv6 (|2|) passes unchanged. The 227/229 replies of a server outside need
//   nothing: the client inside dials out.
//
// Stateless: the class holds configuration only; the little per-connection memory it needs
// lives in `HelperContext.state`.

import NATCore

public final class FTPHelper: ApplicationHelper {
    public let name = "ftp"
    /// Lets PORT/EPRT/227 name an internal address other than the sender's own.
    public let allowForeignAddresses: Bool

    /// Longer lines are not commands or replies we rewrite: they pass as they are.
    public static let maxLineLength = 256
    /// `HelperContext.replace` takes at most this many edits per `inspect`.
    static let maxEditsPerInspect = HelperLimits.editsPerInspect

    public init(allowForeignAddresses: Bool = false) {
        self.allowForeignAddresses = allowForeignAddresses
    }

    public func inspect(_ data: HelperData, _ context: inout HelperContext) -> HelperVerdict {
        // Only the internal side's addresses need rewriting: the client's commands when the
        // client is inside, the server's replies when the server is.
        guard context.senderIsInternal else { return .pass }
        let fromClient = data.direction == .fromClient
        let bytes = data.bytes
        let count = bytes.count
        let memory = FTPLineMemory(context.state, fromClient: fromClient)
        guard var cursor = memory.firstLineStart(bytes) else {
            memory.setMidLine()
            return .pass
        }
        var edits = 0
        while cursor < count {
            guard let newline = ASCIIBytes.firstIndex(of: UInt8(ascii: "\n"), bytes, cursor, count) else { break }
            var end = newline
            if end > cursor, bytes[end - 1] == UInt8(ascii: "\r") { end -= 1 }
            if end - cursor <= FTPHelper.maxLineLength,
               let kind = FTPCommandParser.kind(bytes, cursor, end, fromClient: fromClient) {
                handle(kind, bytes, cursor, end, edits: &edits, &context)
            }
            cursor = newline + 1
        }
        guard cursor < count else {
            memory.setLineStart()
            return .pass
        }
        // An unfinished line: hold it if it may still become one we rewrite.
        if count - cursor <= FTPHelper.maxLineLength,
           FTPCommandParser.mayBecomeRewritten(bytes, cursor, count, fromClient: fromClient) {
            memory.setHeld(bytes, from: cursor)
            return .holdFrom(cursor)
        }
        memory.setMidLine()
        return .pass
    }

    /// One complete line [start, end) of a kind we rewrite.
    private func handle(_ kind: FTPLineKind, _ bytes: UnsafeRawBufferPointer, _ start: Int, _ end: Int,
                        edits: inout Int, _ context: inout HelperContext) {
        let result: FTPParseResult
        switch kind {
        case .port: result = FTPCommandParser.parsePORT(bytes, start, end)
        case .eprt: result = FTPCommandParser.parseEPRT(bytes, start, end)
        case .reply227: result = FTPCommandParser.parse227(bytes, start, end)
        case .reply229: result = FTPCommandParser.parse229(bytes, start, end)
        }
        let endpoint: FTPEndpoint
        switch result {
        case .endpoint(let found): endpoint = found
        case .otherProtocol: return
        case .malformed:
            context.count(.malformed)
            return
        }
        let target = endpoint.address ?? context.internalAddress
        guard target == context.internalAddress || allowForeignAddresses else {
            context.count(.refusedForeignAddress)
            return
        }
        guard endpoint.port >= 1024 else {
            context.count(.refusedLowPort)
            return
        }
        guard edits < FTPHelper.maxEditsPerInspect, context.editsRemaining > 0 else {
            // More rewritable lines in one segment than the core takes edits: pass the rest
            // (before making an expectation no one would be told about).
            context.count(.limit)
            return
        }
        guard let port = context.expectConnection(from: context.remoteAddress, port: nil, to: target, port: endpoint.port)
        else { return } // counted as .limit by the core
        let external = context.externalAddress
        let delimiter = endpoint.delimiter
        let written = context.replace(endpoint.range) { text in
            switch kind {
            case .port, .reply227:
                text.write(address: external, separator: UInt8(ascii: ","))
                text.write(byte: UInt8(ascii: ","))
                text.write(decimal: UInt32(port >> 8))
                text.write(byte: UInt8(ascii: ","))
                text.write(decimal: UInt32(port & 0xff))
            case .eprt:
                text.write(address: external, separator: UInt8(ascii: "."))
                text.write(byte: delimiter)
                text.write(decimal: UInt32(port))
            case .reply229:
                text.write(decimal: UInt32(port))
            }
        }
        if written {
            edits += 1
            context.count(.rewrite)
        } else {
            context.count(.limit)
        }
    }
}

/// What the helper remembers of one direction between calls, in `HelperContext.state`
/// (8 bytes per direction): whether the stream is at a line start, in the middle of a line
/// that was passed, or has an unfinished line held (its length and a hash, to recognise it
/// when the core shows it again — and to notice when the core had to let it go instead).
struct FTPLineMemory {
    private let state: UnsafeMutableRawBufferPointer
    private let offset: Int

    private static let atLineStart: UInt8 = 0
    private static let midLine: UInt8 = 1
    private static let held: UInt8 = 2

    init(_ state: UnsafeMutableRawBufferPointer, fromClient: Bool) {
        // Without room for the memory, every call starts at a line start.
        self.state = state.count >= 16 ? state : UnsafeMutableRawBufferPointer(start: nil, count: 0)
        offset = fromClient ? 0 : 8
    }

    /// Where the first line starting in `bytes` begins; nil if none does.
    func firstLineStart(_ bytes: UnsafeRawBufferPointer) -> Int? {
        guard state.count >= 16 else { return 0 }
        switch state[offset] {
        case FTPLineMemory.atLineStart:
            return 0
        case FTPLineMemory.held:
            let length = Int(state.loadUnaligned(fromByteOffset: offset + 2, as: UInt16.self))
            let hash = state.loadUnaligned(fromByteOffset: offset + 4, as: UInt32.self)
            if length <= bytes.count, FTPLineMemory.hash(bytes, 0, length) == hash { return 0 }
        default:
            break
        }
        // In the middle of a line: the next one starts after its newline.
        var i = 0
        while i < bytes.count {
            if bytes[i] == UInt8(ascii: "\n") { return i + 1 }
            i += 1
        }
        return nil
    }

    func setLineStart() { set(FTPLineMemory.atLineStart) }

    func setMidLine() { set(FTPLineMemory.midLine) }

    func setHeld(_ bytes: UnsafeRawBufferPointer, from start: Int) {
        guard state.count >= 16 else { return }
        set(FTPLineMemory.held)
        state.storeBytes(of: UInt16(clamping: bytes.count - start), toByteOffset: offset + 2, as: UInt16.self)
        state.storeBytes(of: FTPLineMemory.hash(bytes, start, bytes.count), toByteOffset: offset + 4, as: UInt32.self)
    }

    private func set(_ mode: UInt8) {
        guard state.count >= 16 else { return }
        state[offset] = mode
    }

    /// FNV-1a over [start, end).
    private static func hash(_ bytes: UnsafeRawBufferPointer, _ start: Int, _ end: Int) -> UInt32 {
        var h: UInt32 = 0x811c_9dc5
        var i = start
        while i < end {
            h = (h ^ UInt32(bytes[i])) &* 0x0100_0193
            i += 1
        }
        return h
    }
}
