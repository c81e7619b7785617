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
// - The stream must look like FTP (FTPStreamCheck.swift): the server's 220 greeting before
//   any client byte, every client line a command, no PORT/EPRT naming a foreign address;
//   otherwise it is abandoned (NAT slipstreaming). The kernel parses whatever comes.
// - Server replies are split at CR LF only; client commands at LF too (as the kernel does,
//   which tracks line starts by LF in both directions): an inside server echoing a WAN
//   client's text cannot be made to send a "227" line of its own.
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
        let check = FTPStreamCheck(context.state)
        guard !check.isAbandoned else { return .pass }
        let fromClient = data.direction == .fromClient
        let bytes = data.bytes
        if fromClient {
            // A client that speaks before the server greeted it is not in an FTP session.
            guard check.serverGreeted else {
                check.abandon(&context)
                return .pass
            }
        } else if !check.serverHasSpoken {
            guard let greeted = check.serverStarts(bytes, &context) else { return .holdFrom(0) } // fewer than 3 bytes
            guard greeted else { return .pass }
        }
        // Only the internal side's addresses need rewriting: the client's commands when the
        // client is inside, the server's replies when the server is.
        guard context.senderIsInternal else { return .pass }
        // Each direction keeps its own line state: the client's at 0, the server's at 8. A
        // server's reply line ends at CR LF only (RFC 959 4.2): a bare LF in it can be text
        // the server echoes from its client, such as a file name, and must not start a "227".
        let reader = HelperLineReader(context: context.state, offset: fromClient ? 0 : 8, needed: 16, crlfOnly: !fromClient)
        var edits = 0
        var abandoned = false
        return reader.read(bytes, line: { line in
            guard !abandoned else { return }
            if fromClient, !FTPStreamCheck.isCommandLine(bytes, line.start, line.end) {
                check.abandon(&context)
                abandoned = true
                return
            }
            if line.length <= FTPHelper.maxLineLength,
               let kind = FTPCommandParser.kind(bytes, line.start, line.end, fromClient: fromClient) {
                if !handle(kind, bytes, line.start, line.end, edits: &edits, &context) {
                    check.abandon(&context)
                    abandoned = true
                }
            }
        }, holdTail: { start in
            // An unfinished line: hold it if it may still become one we rewrite.
            !abandoned && bytes.count - start <= FTPHelper.maxLineLength
                && FTPCommandParser.mayBecomeRewritten(bytes, start, bytes.count, fromClient: fromClient)
        })
    }

    /// One complete line [start, end) of a kind we rewrite. False when it named a foreign
    /// address: the stream is not trusted further (FTPStreamCheck.swift).
    private func handle(_ kind: FTPLineKind, _ bytes: UnsafeRawBufferPointer, _ start: Int, _ end: Int,
                        edits: inout Int, _ context: inout HelperContext) -> Bool {
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
        case .otherProtocol: return true
        case .malformed:
            context.count(.malformed)
            return true
        }
        let target = endpoint.address ?? context.internalAddress
        guard target == context.internalAddress || allowForeignAddresses else {
            context.count(.refusedForeignAddress)
            return false
        }
        guard endpoint.port >= 1024 else {
            context.count(.refusedLowPort)
            return true
        }
        guard edits < FTPHelper.maxEditsPerInspect, context.editsRemaining > 0 else {
            // More rewritable lines in one segment than the core takes edits: pass the rest
            // (before making an expectation no one would be told about).
            context.count(.limit)
            return true
        }
        guard let port = context.expectConnection(from: context.remoteAddress, port: nil, to: target, port: endpoint.port)
        else { return true } // counted as .limit by the core
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
        return true
    }
}
