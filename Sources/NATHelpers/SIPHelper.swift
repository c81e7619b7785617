// The SIP helper (RFC 3261 over UDP, SDP per RFC 4566/3264): lets a phone inside register,
// call out and be called through the NAT, media included. The kernel's nf_nat_sip is the
// anchor; what this one does, and never does:
//
// From the inside endpoint (a phone or a server behind a forward), it rewrites only
// occurrences of that endpoint's own address:port (a missing port is 5060) to the WAN address
// and the flow's external port:
//   - the sent-by of Via values; the sip:/sips: URIs of Contact, From and To;
//   - in an SDP body: o= and c= lines naming the inside address; the port of each m= line
//     whose connection address is the inside one, mapped with a port pair (RTP on the port,
//     RTCP on the next, through an even external pair) that expects media from the signalling
//     peer (or, in an answer, from the media address the offer named); a=rtcp: (RFC 3605)
//     port and address to match;
//   - Content-Length, when the body changed length.
// From outside, it restores the external endpoint to the inside one in Via sent-by (the
// phone checks its own Via on responses), the Request-URI (an INVITE sent to the Contact a
// REGISTER left) and From/To. It remembers the media address an outside SDP names, so the
// inside answer's media is expected from there.
//
// It never touches: host names, IPv6, other hosts' addresses (a Contact the phone learnt by
// STUN is already right), Call-ID, tags, branch or any other parameter, Route/Record-Route,
// Authorization (digest covers the Request-URI: rewriting a request from inside would break
// it, and requests from inside keep theirs), bodies other than application/sdp, and
// multi-port m= lines (`m=video 5000/2`). Malformed SIP (no end of headers, a Content-Length
// that is not a number or runs past the datagram, more than 256 header lines) passes
// unchanged and is counted as `malformed`; a message needing more edits than a datagram
// takes passes unchanged and is counted as `limit`. Media sections after the fourth are not
// mapped.
//
// Over TCP the same rewrites apply message by message (framed by Content-Length, which a
// stream must carry). A message split across segments is held until it is whole, up to
// `HelperLimits.heldBytes`; a longer one passes unedited (counted as `limit`) and the helper
// skips to the next message by its length. A stream it cannot frame (no Content-Length, not
// SIP, headers longer than it can hold) is left alone from there on, counted.

import NATCore

public final class SIPHelper: ApplicationHelper {
    public let name = "sip"
    public init() {}

    /// Per-flow state bytes: the media address the last outside SDP named; the inside media
    /// address and up to `maxMedia` media ports of the last inside SDP.
    enum State {
        static let remoteMedia = 0, insideMedia = 4, portCount = 8, ports = 10
        /// Per stream direction (8 bytes each): bytes still to skip of a message passed
        /// unedited (4), and 1 once the stream could not be framed (1).
        static let streams = 24
    }
    static let maxMedia = 4

    public func inspect(_ data: HelperData, _ context: inout HelperContext) -> HelperVerdict {
        let bytes = data.bytes
        guard context.transport == .datagram else { return inspectStream(bytes, &context) }
        switch SIPMessageParser.parse(bytes) {
        case .notSIP, .incomplete: break
        case .malformed: context.count(.malformed)
        case .message(let message): rewrite(message, bytes, at: 0, &context)
        }
        return .pass
    }

    /// The messages of a TCP stream, each rewritten like a datagram.
    private func inspectStream(_ bytes: UnsafeRawBufferPointer, _ context: inout HelperContext) -> HelperVerdict {
        let memory = State.streams + (context.direction == .fromClient ? 0 : 8)
        if context.state[memory + 4] != 0 { return .pass } // could not be framed: left alone
        var position = min(Int(Self.load32(context.state, memory)), bytes.count)
        Self.store32(context.state, memory, Self.load32(context.state, memory) - UInt32(position))
        while position < bytes.count {
            // CR LF keep-alives between messages (RFC 5626 §3.5.1).
            if bytes[position] == 13 || bytes[position] == 10 {
                position += 1
                continue
            }
            let rest = UnsafeRawBufferPointer(rebasing: bytes[position...])
            switch SIPMessageParser.parse(rest, stream: true) {
            case .message(let message):
                rewrite(message, rest, at: position, &context)
                position += message.body.upperBound
            case .incomplete(let length):
                if rest.count <= context.holdCapacity { return .holdFrom(position) }
                context.count(.limit)
                guard let length else { return lose(memory, &context) }
                // Too long to hold whole: it passes unedited, and its rest is skipped.
                Self.store32(context.state, memory, UInt32(length - rest.count))
                return .pass
            case .notSIP, .malformed:
                context.count(.malformed)
                return lose(memory, &context)
            }
        }
        return .pass
    }

    private func lose(_ memory: Int, _ context: inout HelperContext) -> HelperVerdict {
        context.state[memory + 4] = 1
        return .pass
    }

    /// Plans and stages the edits of one message, which starts at `offset` of the inspected bytes.
    private func rewrite(_ message: SIPMessage, _ bytes: UnsafeRawBufferPointer, at offset: Int, _ context: inout HelperContext) {
        withUnsafeTemporaryAllocation(of: SIPPlannedEdit.self, capacity: SIPEditPlan.capacity) { storage in
            var plan = SIPEditPlan(storage, offset: offset)
            if context.senderIsInternal {
                planFromInside(message, bytes, &plan, &context)
            } else {
                planFromOutside(message, bytes, &plan, &context)
            }
            let delta = plan.delta(in: message.body)
            if delta != 0, let digits = message.contentLengthDigits {
                plan.add(digits, .number(UInt32(message.body.count + delta)))
            }
            switch plan.apply(&context) {
            case .nothing: break
            case .applied: context.count(.rewrite)
            case .refused: context.count(.limit)
            }
        }
    }

    // MARK: from the inside endpoint

    private func planFromInside(_ message: SIPMessage, _ bytes: UnsafeRawBufferPointer, _ plan: inout SIPEditPlan,
                                _ context: inout HelperContext) {
        let inside = (context.internalAddress.value, context.internalPort)
        let outside = (context.externalAddress.value, context.externalPort)
        forEachHeaderEndpoint(bytes, message) { endpoint in
            guard endpoint.names(inside.0, inside.1) else { return }
            plan.add(endpoint.range, .endpoint(address: outside.0, port: endpoint.port == nil && outside.1 == 5060 ? nil : outside.1))
        }
        if message.bodyIsSDP, !message.body.isEmpty {
            planInsideSDP(message, bytes, &plan, &context)
        }
    }

    private func planInsideSDP(_ message: SIPMessage, _ bytes: UnsafeRawBufferPointer, _ plan: inout SIPEditPlan,
                               _ context: inout HelperContext) {
        let insideAddress = context.internalAddress.value
        let external = context.externalAddress.value
        // Pass 1: the session's connection address and each media section's own.
        var sessionConnection: UInt32? = nil
        var mediaConnection: (UInt32?, UInt32?, UInt32?, UInt32?) = (nil, nil, nil, nil)
        var media = -1
        SDPReader.forEachLine(bytes, message.body) { type, value in
            switch type {
            case UInt8(ascii: "m"): media += 1
            case UInt8(ascii: "c"):
                guard let address = SDPReader.connectionAddress(bytes, value)?.address else { return }
                switch media {
                case -1: sessionConnection = address
                case 0: mediaConnection.0 = address
                case 1: mediaConnection.1 = address
                case 2: mediaConnection.2 = address
                case 3: mediaConnection.3 = address
                default: break
                }
            default: break
            }
        }
        // An answer to an offer from outside: media comes from the address that offer named.
        var mediaSource = context.remoteAddress
        if case .response = message.startLine, Self.load32(context.state, State.remoteMedia) != 0 {
            mediaSource = IPv4Address(Self.load32(context.state, State.remoteMedia))
            // Used once: a later call's answer must not expect media from this call's peer.
            Self.store32(context.state, State.remoteMedia, 0)
        }
        // Pass 2: the edits, and the media pairs.
        media = -1
        var pair: (internal: UInt16, external: UInt16)? = nil
        var ports = 0
        SDPReader.forEachLine(bytes, message.body) { type, value in
            switch type {
            case UInt8(ascii: "o"):
                if let origin = SDPReader.originAddress(bytes, value), origin.address == insideAddress {
                    plan.add(origin.range, .address(external))
                }
            case UInt8(ascii: "c"):
                if let connection = SDPReader.connectionAddress(bytes, value), connection.address == insideAddress {
                    plan.add(connection.range, .address(external))
                }
            case UInt8(ascii: "m"):
                media += 1
                pair = nil
                let own: UInt32?? = switch media {
                case 0: .some(mediaConnection.0)
                case 1: .some(mediaConnection.1)
                case 2: .some(mediaConnection.2)
                case 3: .some(mediaConnection.3)
                default: nil
                }
                guard let own, (own ?? sessionConnection) == insideAddress,
                      let port = SDPReader.mediaPort(bytes, value), !port.hasCount, port.text.port != 0, port.text.port < 65535,
                      let mapped = context.expectPortPair(from: mediaSource, port: nil, to: context.internalAddress, port: port.text.port)
                else { return }
                pair = (port.text.port, mapped)
                if mapped != port.text.port { plan.add(port.text.range, .number(UInt32(mapped))) }
                if ports < Self.maxMedia {
                    Self.store16(context.state, State.ports + 2 * ports, port.text.port)
                    ports += 1
                }
            case UInt8(ascii: "a"):
                guard let rtcp = SDPReader.rtcpAttribute(bytes, value) else { return }
                if let pair, rtcp.port.port == pair.internal &+ 1, pair.external &+ 1 != rtcp.port.port {
                    plan.add(rtcp.port.range, .number(UInt32(pair.external) + 1))
                }
                if let address = rtcp.address, address.address == insideAddress { plan.add(address.range, .address(external)) }
            default: break
            }
        }
        if ports > 0 {
            Self.store32(context.state, State.insideMedia, insideAddress)
            context.state[State.portCount] = UInt8(ports)
        }
    }

    // MARK: from outside

    private func planFromOutside(_ message: SIPMessage, _ bytes: UnsafeRawBufferPointer, _ plan: inout SIPEditPlan,
                                 _ context: inout HelperContext) {
        let inside = (context.internalAddress.value, context.internalPort)
        let outside = (context.externalAddress.value, context.externalPort)
        forEachHeaderEndpoint(bytes, message, requestURI: true, contact: false) { endpoint in
            guard endpoint.names(outside.0, outside.1) else { return }
            plan.add(endpoint.range, .endpoint(address: inside.0, port: endpoint.port == nil && inside.1 == 5060 ? nil : inside.1))
        }
        guard message.bodyIsSDP, !message.body.isEmpty else { return }
        // Where the other side's media comes from: the first connection address it names.
        var remote: UInt32? = nil
        SDPReader.forEachLine(bytes, message.body) { type, value in
            if remote == nil, type == UInt8(ascii: "c"), let connection = SDPReader.connectionAddress(bytes, value) {
                remote = connection.address
            }
        }
        guard let remote, remote != 0 else { return }
        Self.store32(context.state, State.remoteMedia, remote)
        // An answer to the inside's offer: its media may come from elsewhere than the
        // signalling peer; expect it from there on the pairs the offer mapped.
        let insideMedia = Self.load32(context.state, State.insideMedia)
        guard case .response = message.startLine, insideMedia != 0, remote != context.remoteAddress.value else { return }
        for i in 0..<min(Int(context.state[State.portCount]), Self.maxMedia) {
            let port = Self.load16(context.state, State.ports + 2 * i)
            guard port != 0 else { continue }
            _ = context.expectPortPair(from: IPv4Address(remote), port: nil, to: IPv4Address(insideMedia), port: port)
        }
    }

    // MARK: header fields

    /// Every IPv4 endpoint in Via sent-by, Contact (when `contact`), From and To, and the
    /// Request-URI (when `requestURI`), in message order.
    private func forEachHeaderEndpoint(_ bytes: UnsafeRawBufferPointer, _ message: SIPMessage, requestURI: Bool = false,
                                       contact: Bool = true, _ body: (SIPEndpointText) -> Void) {
        if requestURI, case .request(_, let uri) = message.startLine {
            SIPAddressFinder.forEachURIHost(bytes, uri, body)
        }
        var position = message.headers.lowerBound
        while let next = SIPMessageParser.nextField(bytes, from: &position, end: message.headers.upperBound) {
            guard let field = next else { continue }
            switch field.name {
            case .via: SIPAddressFinder.forEachViaSentBy(bytes, field.value, body)
            case .contact where contact: SIPAddressFinder.forEachURIHost(bytes, field.value, body)
            case .from, .to: SIPAddressFinder.forEachURIHost(bytes, field.value, body)
            default: break
            }
        }
    }

    // MARK: state bytes

    static func load32(_ state: UnsafeMutableRawBufferPointer, _ offset: Int) -> UInt32 {
        UInt32(state[offset]) << 24 | UInt32(state[offset + 1]) << 16 | UInt32(state[offset + 2]) << 8 | UInt32(state[offset + 3])
    }

    static func store32(_ state: UnsafeMutableRawBufferPointer, _ offset: Int, _ value: UInt32) {
        for i in 0..<4 { state[offset + i] = UInt8(truncatingIfNeeded: value >> (24 - 8 * UInt32(i))) }
    }

    static func load16(_ state: UnsafeMutableRawBufferPointer, _ offset: Int) -> UInt16 {
        UInt16(state[offset]) << 8 | UInt16(state[offset + 1])
    }

    static func store16(_ state: UnsafeMutableRawBufferPointer, _ offset: Int, _ value: UInt16) {
        state[offset] = UInt8(value >> 8)
        state[offset + 1] = UInt8(value & 0xff)
    }
}
