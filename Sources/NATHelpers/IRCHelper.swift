// The IRC DCC helper: rewrites the endpoint an inside IRC client offers in a DCC request so
// the peer (another IRC user, anywhere) can connect to it through the NAT, using only
// NATCore's public helper API.
//
//   Client inside, lines it sends:  PRIVMSG|NOTICE <target> :\x01DCC SEND <file> <address> <port>[ <size>]\x01
//                                   (and CHAT, MOVE, TSEND, SCHAT; ACCEPT, see below)
//
// `<address>` is the client's own, as a 32-bit decimal integer (or a dotted quad); it is
// replaced by the external address (in the same form) and `<port>` by the external port the
// core reserved for an expected connection from any remote endpoint (the peer is not known:
// the IRC server only relays) to the client's port, once, within the expectation timeout.
//
// Anchors: Linux's nf_conntrack_irc + nf_nat_irc and libalias's alias_irc, and what went
// wrong with them. What masqd does that the kernel's helper does not:
// - The CTCP must open the trailing parameter of a PRIVMSG or NOTICE whose command starts
//   a line (after optional IRCv3 tags and a prefix): "\x01DCC" elsewhere — inside the text
//   of a message, as a web page can arrange ("NAT slipstreaming", CVE-2022-2663: the kernel
//   matched "\1DCC" anywhere in a packet until it was tightened in September 2022) — is
//   text. The CTCP must also close with \x01 at the end of its line.
// - A client stream that begins with an HTTP request line (a browser made to talk to the
//   IRC port, the slipstreaming vector) is never parsed at all (counted `abandoned`); its
//   first bytes are held until they decide it, however the stream is cut into segments.
// - Only bytes the client sends, and only when the client is inside, are looked at (the
//   kernel too ignores the server's direction): a line the server echoes or relays to the
//   client never opens anything and is never rewritten.
// - Lines are found by the stream's own line breaks, remembered across segments: a segment
//   starting in the middle of a line is not taken for a line start (the kernel searches
//   each packet on its own). Lines are bounded (512 bytes with their terminator, RFC 2812);
//   longer ones pass unchanged.
// - An offer split across segments is held by the core until its line is complete (the
//   kernel misses it); several offers in one segment are all rewritten (up to 4 per
//   segment, the core's edit limit).
// - Numbers are parsed exactly and bounded: a port above 65535 or an address above
//   2^32 - 1 is malformed (the kernel's simple_strtoul truncated an oversized port to 16
//   bits); every index is checked against the line (FreeBSD-SA-20:12 and a recent
//   nf_conntrack_irc fix were both reads past the data).
// - Low ports (below 1024) are refused as well as 0 (the kernel refuses only 0), so an
//   offer cannot open a way in to a privileged service of the client's host. The address
//   must be the client's own internal one (as the kernel checks); the external address is
//   not accepted as its own (a web page knows it, so it would let slipstreaming name the
//   victim without guessing its internal address). `allowForeignAddresses` lets it
//   name another internal host (one outside the internal prefixes is refused by the core).
// - A dotted-quad address is rewritten as a dotted quad (the kernel reads only the integer
//   form); an IPv6 endpoint passes unchanged.
// - Port 0 (reverse/"passive" DCC, with a token: the peer will listen and the client dials
//   out) passes unchanged and uncounted (the kernel logs it as forged).
// - DCC ACCEPT (the offerer's answer to the peer's RESUME, naming the port it offered) gets
//   the external port the core assigned to that offer, remembered per connection (the last
//   4 offers). DCC RESUME passes unchanged: the client sends it as the receiver, naming the
//   peer's port, not ours. The peer's RESUME to an offering client names the external port
//   and reaches the client unchanged (server→client bytes are never rewritten): a client
//   that matches RESUME by port resumes only when the external port is its own port (the
//   core keeps the internal port when it is free), as with the kernel, which has no RESUME
//   support at all.
// - The expectation admits one connection, from any address and port (the peer's address
//   is unknown, as in the kernel), within the core's expectation timeout.
//
// Stateless: the class holds configuration only; the little per-connection memory it needs
// lives in `HelperContext.state`.

import NATCore

public final class IRCHelper: ApplicationHelper {
    public let name = "irc"
    /// Lets an offer name an internal address other than the client's own.
    public let allowForeignAddresses: Bool

    /// Longer lines (with their terminator: RFC 2812's 512) are not looked at: they pass.
    public static let maxLineLength = 512
    /// `HelperContext.replace` takes at most this many edits per `inspect`.
    static let maxEditsPerInspect = HelperLimits.editsPerInspect

    public init(allowForeignAddresses: Bool = false) {
        self.allowForeignAddresses = allowForeignAddresses
    }

    public func inspect(_ data: HelperData, _ context: inout HelperContext) -> HelperVerdict {
        // Only what an inside client sends: never what the server sends it.
        guard data.direction == .fromClient, context.clientIsInternal else { return .pass }
        let bytes = data.bytes
        var memory = IRCStreamMemory(context.state)
        if memory.firstCall {
            // Decided on the stream's start, however few bytes its first segment has (a server
            // can shrink its window to make the browser send "PO", then "ST /"): held until
            // they can no longer become an HTTP method.
            guard let http = IRCHelper.startsLikeHTTPRequest(bytes) else { return .holdFrom(0) }
            memory.setStarted(http: http)
            if http { context.count(.abandoned) }
        }
        guard !memory.disabled else { return .pass }
        var edits = 0
        return memory.lineReader.read(bytes, line: { line in
            // The 512-byte limit counts the line end (RFC 2812 2.3).
            if line.lengthWithTerminator <= IRCHelper.maxLineLength,
               case .dcc(let typeStart) = IRCDCCParser.scanHeader(bytes, line.start, line.end, complete: true) {
                handle(IRCDCCParser.parseBody(bytes, typeStart, line.end), edits: &edits, memory: &memory, &context)
            }
        }, holdTail: { start in
            // An unfinished line: hold it if it may still become a DCC line.
            bytes.count - start < IRCHelper.maxLineLength
                && IRCDCCParser.scanHeader(bytes, start, bytes.count, complete: false) != .notDCC
        })
    }

    /// One complete DCC line, parsed.
    private func handle(_ result: DCCParseResult, edits: inout Int, memory: inout IRCStreamMemory, _ context: inout HelperContext) {
        switch result {
        case .offer(let offer):
            offered(offer, edits: &edits, memory: &memory, &context)
        case .accept(let port, let range):
            // The port of one of the client's own offers: the one the peer was told.
            guard let external = memory.externalPort(offered: port), external != port else { return }
            guard edits < IRCHelper.maxEditsPerInspect, context.editsRemaining > 0 else {
                context.count(.limit)
                return
            }
            if context.replace(range, { $0.write(decimal: UInt32(external)) }) {
                edits += 1
                context.count(.rewrite)
            } else {
                context.count(.limit)
            }
        case .passive, .otherProtocol, .notOurs:
            return
        case .malformed:
            context.count(.malformed)
        }
    }

    private func offered(_ offer: DCCOffer, edits: inout Int, memory: inout IRCStreamMemory, _ context: inout HelperContext) {
        // The external address is not the client's own: a page that makes a browser send DCC
        // lines knows it (it sees it), while the internal one it would have to guess.
        let own = offer.address == context.internalAddress
        guard own || allowForeignAddresses else {
            context.count(.refusedForeignAddress)
            return
        }
        guard offer.port >= 1024 else {
            context.count(.refusedLowPort)
            return
        }
        guard edits < IRCHelper.maxEditsPerInspect, context.editsRemaining > 0 else {
            // More offers in one segment than the core takes edits: pass the rest (before
            // making an expectation no one would be told about).
            context.count(.limit)
            return
        }
        let target = own ? context.internalAddress : offer.address
        // The peer is another IRC user, somewhere: any address, any port.
        guard let port = context.expectConnection(from: nil, port: nil, to: target, port: offer.port)
        else { return } // counted as .limit by the core
        let external = context.externalAddress
        let dotted = offer.dotted
        let written = context.replace(offer.range) { text in
            if dotted {
                text.write(address: external, separator: UInt8(ascii: "."))
            } else {
                text.write(decimal: external.value)
            }
            text.write(byte: UInt8(ascii: " "))
            text.write(decimal: UInt32(port))
        }
        if written {
            edits += 1
            context.count(.rewrite)
            memory.rememberOffer(internalPort: offer.port, externalPort: port)
        } else {
            context.count(.limit)
        }
    }

    /// HTTP methods: a client stream starting with one of these and a space is a browser
    /// (or something else) speaking HTTP to the IRC port, not an IRC client.
    private static let httpMethods: [StaticString] = [
        "GET ", "POST ", "PUT ", "HEAD ", "DELETE ", "OPTIONS ", "PATCH ", "CONNECT ", "TRACE ",
    ]

    /// Whether the stream starts with an HTTP method and a space; nil while its bytes so far
    /// are a shorter start of one (the answer needs more).
    static func startsLikeHTTPRequest(_ bytes: UnsafeRawBufferPointer) -> Bool? {
        var undecided = false
        for method in httpMethods {
            let length = method.utf8CodeUnitCount
            let head = method.utf8Start
            let n = min(bytes.count, length)
            var same = true
            for k in 0..<n where bytes[k] != head[k] {
                same = false
                break
            }
            guard same else { continue }
            if n == length { return true }
            undecided = true
        }
        return undecided ? nil : false
    }
}

/// What the helper remembers of the client's stream between calls, in `HelperContext.state`:
///
///   bytes 0–7   the line reader's (HelperLineReader), except
///   byte 1      flags: the stream has started; it began like HTTP (nothing is parsed)
///   byte 8      next slot of the offer ring
///   bytes 16–31 the last 4 offers rewritten: (offered port, external port), 2 bytes each
struct IRCStreamMemory {
    private let state: UnsafeMutableRawBufferPointer
    /// Complete lines and held unfinished ones, over bytes 0–7.
    let lineReader: HelperLineReader

    static let bytesNeeded = 32
    static let offerSlots = 4

    private static let started: UInt8 = 1
    private static let http: UInt8 = 2

    init(_ state: UnsafeMutableRawBufferPointer) {
        // Without room for the memory, every call starts at a line start, nothing is held
        // across calls and no offer is remembered.
        self.state = state.count >= IRCStreamMemory.bytesNeeded ? state : UnsafeMutableRawBufferPointer(start: nil, count: 0)
        lineReader = HelperLineReader(context: state, offset: 0, needed: IRCStreamMemory.bytesNeeded)
    }

    private var usable: Bool { state.count >= IRCStreamMemory.bytesNeeded }

    /// True until the first bytes of the stream have been looked at.
    var firstCall: Bool { usable && state[1] & IRCStreamMemory.started == 0 }

    /// The stream began with an HTTP request: DCC is never looked for in it.
    var disabled: Bool { usable && state[1] & IRCStreamMemory.http != 0 }

    func setStarted(http: Bool) {
        guard usable else { return }
        state[1] |= IRCStreamMemory.started | (http ? IRCStreamMemory.http : 0)
    }

    func rememberOffer(internalPort: UInt16, externalPort: UInt16) {
        guard usable else { return }
        let slot = Int(state[8]) % IRCStreamMemory.offerSlots
        state.storeBytes(of: internalPort, toByteOffset: 16 + slot * 4, as: UInt16.self)
        state.storeBytes(of: externalPort, toByteOffset: 18 + slot * 4, as: UInt16.self)
        state[8] = UInt8((slot + 1) % IRCStreamMemory.offerSlots)
    }

    /// The external port of the latest remembered offer of `port`.
    func externalPort(offered port: UInt16) -> UInt16? {
        guard usable, port != 0 else { return nil }
        let newest = (Int(state[8]) + IRCStreamMemory.offerSlots - 1) % IRCStreamMemory.offerSlots
        for back in 0..<IRCStreamMemory.offerSlots {
            let slot = (newest - back + IRCStreamMemory.offerSlots) % IRCStreamMemory.offerSlots
            if state.loadUnaligned(fromByteOffset: 16 + slot * 4, as: UInt16.self) == port {
                return state.loadUnaligned(fromByteOffset: 18 + slot * 4, as: UInt16.self)
            }
        }
        return nil
    }
}
