// What the kernel fast path (Masqd's FastPath) needs from the core: a `.sessionEstablished`
// event when a session it may take over becomes two-way, and, while it has the session, a
// way to hand back the time of its last packet so that expiry never removes a live flow
// whose packets the core no longer sees. The core decides which sessions may be offloaded.

/// The fast path's look at one session (`fastPathCheck`).
public enum FastPathSessionCheck: Equatable, Sendable {
    /// Live and still offloadable: translated with this external address and port (host order).
    case live(externalAddress: UInt32, externalPort: UInt16)
    /// Live but no longer the fast path's (TCP left ESTABLISHED, a helper took it).
    case ended
    /// No such session (removed, expired, or never made).
    case gone
}

extension TCPSessionState {
    /// UDP sessions keep which directions have been seen in `tcpFlagsSeen` (unused by UDP).
    /// Not saved in the state file (its format is unchanged): relearned from the next exchange.
    static let udpSeenOutbound: UInt8 = 8
    static let udpSeenInbound: UInt8 = 16
    static let udpSeenBoth: UInt8 = udpSeenOutbound | udpSeenInbound
}

extension NATTranslator {
    /// Plain sessions only: no helper (it must see every byte), not hairpinned (both
    /// addresses change), a remote outside the LAN prefixes, TCP only while ESTABLISHED.
    @inline(__always)
    func isOffloadable(_ session: Session) -> Bool {
        guard session.helper < 0, let external = configuration.externalAddress, session.remoteAddress != external.value,
              configuration.internalPrefixes.isEmpty || !isInternal(IPv4Address(session.remoteAddress)) else { return false }
        return session.protocolNumber == IPProtocolNumber.udp
            || (session.protocolNumber == IPProtocolNumber.tcp && session.tcpState == .established)
    }

    /// At TCP's transition to ESTABLISHED (or UDP's first two-way packet).
    func recordEstablished(_ row: Int32, reason: NATEventReason? = nil) {
        guard isOffloadable(sessions[row]) else { return }
        recordSession(.sessionEstablished, row, reason: reason ?? (sessions[row].tcpFlagsSeen & TCPSessionState.openedInbound != 0 ? .inbound : .outbound))
    }

    /// A restored TCP session that was ESTABLISHED when saved: offloadable again at once (a
    /// new engine's fast path starts empty). UDP ones wait for their next exchange.
    func recordRestoredEstablished(_ row: Int32) {
        if sessions[row].protocolNumber == IPProtocolNumber.tcp, sessions[row].tcpState == .established {
            recordEstablished(row, reason: .restored)
        }
    }

    /// UDP: marks the packet's direction; the first packet of the second direction makes the event.
    @inline(__always)
    func noteUDPDirection(_ row: Int32, outbound: Bool) {
        let session = sessions.pointer(row)
        let bit = outbound ? TCPSessionState.udpSeenOutbound : TCPSessionState.udpSeenInbound
        guard session.pointee.tcpFlagsSeen & bit == 0 else { return }
        session.pointee.tcpFlagsSeen |= bit
        if session.pointee.tcpFlagsSeen & TCPSessionState.udpSeenBoth == TCPSessionState.udpSeenBoth { recordEstablished(row) }
    }

    /// The session of `flow`, for the fast path. `lastSeen`, the kernel's time of the flow's last packet, first renews
    /// the session's timer as a packet at that time would have (never shortens it).
    public func fastPathCheck(_ flow: NATFlow, lastSeen: NATTime?, now: NATTime) -> FastPathSessionCheck {
        let protocolNumber = flow.protocolNumber
        let internalAddress = flow.internalEndpoint.address.value, internalPort = flow.internalEndpoint.port
        let remoteAddress = flow.remoteEndpoint.address.value, remotePort = flow.remoteEndpoint.port
        let hash = sessions.tupleHash(protocolNumber: protocolNumber, internalAddress: internalAddress, internalPort: internalPort,
                                      remoteAddress: remoteAddress, remotePort: remotePort)
        let row = sessions.find(protocolNumber: protocolNumber, internalAddress: internalAddress, internalPort: internalPort,
                                remoteAddress: remoteAddress, remotePort: remotePort, tupleHash: hash)
        guard row >= 0 else { return .gone }
        let session = sessions.pointer(row)
        if let lastSeen {
            let timeout = configuration.timeouts.timeout(protocolNumber: protocolNumber, tcpState: session.pointee.tcpState)
            session.pointee.expires = max(session.pointee.expires, lastSeen.nanoseconds &+ timeout.nanoseconds)
        }
        guard session.pointee.expires > now.nanoseconds else { return .gone }
        guard isOffloadable(session.pointee), let external = configuration.externalAddress else { return .ended }
        return .live(externalAddress: external.value, externalPort: session.pointee.externalPort)
    }
}

extension NATTranslator {
    /// A FIN or RST from the remote of a TCP flow the fast path carried: the engine saw none of
    /// the offloaded segments, so its window data are stale and the packet would be judged out
    /// of window. The kernel's record of the flow's last segments (the internal host's highest
    /// ACK and its window, the end of the remote's latest segment) replaces them first.
    public func fastPathResyncTCPWindow(internalAddress: UInt32, internalPort: UInt16, remoteAddress: UInt32, remotePort: UInt16,
                                        internalAcknowledged: UInt32, internalWindow: UInt16, remoteEnd: UInt32?) {
        let tcp = IPProtocolNumber.tcp
        let hash = sessions.tupleHash(protocolNumber: tcp, internalAddress: internalAddress, internalPort: internalPort,
                                      remoteAddress: remoteAddress, remotePort: remotePort)
        let row = sessions.find(protocolNumber: tcp, internalAddress: internalAddress, internalPort: internalPort,
                                remoteAddress: remoteAddress, remotePort: remotePort, tupleHash: hash)
        guard row >= 0 else { return }
        sessions.pointer(row).pointee.tcpWindow.resync(internalAcknowledged: internalAcknowledged, internalWindow: internalWindow, remoteEnd: remoteEnd)
    }
}

extension TCPWindowTracking {
    /// What the kernel saw of an offloaded stretch. Only ever moves forward; the scale the SYNs
    /// agreed stays (the window field is a scaled one now).
    mutating func resync(internalAcknowledged ack: UInt32, internalWindow window: UInt16, remoteEnd end: UInt32?) {
        if flags & Self.internalAckKnown == 0 || Int32(bitPattern: ack &- internalAcknowledged) >= 0 {
            internalAcknowledged = ack
            internalWindow = window
            flags &= ~(Self.windowFromSYN | Self.restored)
            flags |= Self.internalAckKnown
        }
        if let end, flags & Self.remoteEndKnown == 0 || Int32(bitPattern: end &- remoteEnd) > 0 {
            remoteEnd = end
            flags |= Self.remoteEndKnown
        }
    }
}
