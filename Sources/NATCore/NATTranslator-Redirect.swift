// Transparent redirect (TransparentRedirect.swift). The client's packet is queued before
// routing on the internal side; its destination becomes the router's own address on the
// interface it came in on and the local port, so routing delivers it to the proxy
// (KERNEL-FACTS 6). The proxy's replies are the router's own packets, queued in OUTPUT; their
// source becomes the original destination again. An address change in OUTPUT makes the
// kernel route the packet again on reinjection (nf_reinject → nf_reroute →
// ip_route_me_harder, with a foreign source allowed), and the route to the client is the one
// it already had.

/// The router's IPv4 address on one interface (by index), as the daemon reads them.
public struct InterfaceAddress: Sendable, Equatable {
    public var interfaceIndex: UInt32
    public var address: IPv4Address

    public init(interfaceIndex: UInt32, address: IPv4Address) {
        self.interfaceIndex = interfaceIndex
        self.address = address
    }
}

extension NATTranslator {
    /// The router's addresses, by interface: the redirect's local address is the one of the
    /// interface a client's packet came in on (as the kernel's REDIRECT takes), and traffic to
    /// any of them is the router's own, never redirected.
    public func setInterfaceAddresses(_ addresses: [InterfaceAddress]) {
        interfaceAddresses = addresses
    }

    /// `translate(_:direction:checksum:now:)`, plus the redirect for packets from the internal
    /// side (`.hairpin`: queued before routing) that came in on `inputInterface`.
    public func translate(_ packet: UnsafeMutableRawBufferPointer, direction: PacketDirection, checksum: PacketChecksumState,
                          now: NATTime, inputInterface: UInt32) -> TranslationVerdict {
        if direction == .hairpin, !configuration.redirects.isEmpty, let base = packet.baseAddress,
           case .success(let ip) = IPv4Packet.parse(base, count: packet.count),
           let verdict = redirectToProxy(ip, inputInterface: inputInterface, checksum: checksum, now: now) {
            return verdict
        }
        return translate(packet, direction: direction, checksum: checksum, now: now)
    }

    /// A packet the router sends (queued in OUTPUT) from a redirect's local port: a reply of the
    /// proxy to a redirected client gets the original destination as its source. Anything
    /// else — a connection made to the proxy directly — passes unchanged
    /// (`redirect_replies_unmatched`).
    public func translateRedirectReply(_ packet: UnsafeMutableRawBufferPointer, checksum: PacketChecksumState,
                                       now: NATTime) -> TranslationVerdict {
        currentTime = now
        guard let base = packet.baseAddress, case .success(let ip) = IPv4Packet.parse(base, count: packet.count),
              ip.header.protocolNumber == IPProtocolNumber.tcp, !ip.header.isFragment,
              case .endpoint(let endpoint) = ip.readTransport() else {
            counters[.redirectRepliesUnmatched] &+= 1
            return .accept // the router's own packet: not ours to judge
        }
        let client = ip.header.destination.value
        let hash = redirectSessions.hash(clientAddress: client, clientPort: endpoint.destinationPort, localPort: endpoint.sourcePort)
        let row = liveRedirect(clientAddress: client, clientPort: endpoint.destinationPort, localPort: endpoint.sourcePort,
                               hash: hash, now: now)
        guard row >= 0, redirectSessions[row].localAddress == ip.header.source.value else {
            counters[.redirectRepliesUnmatched] &+= 1
            return .accept
        }
        let session = redirectSessions[row]
        rewrite(ip, transport: .tcp, rewriteSource: true, address: IPv4Address(session.originalAddress), port: session.originalPort,
                checksum: checksum)
        touchRedirect(row, flags: endpoint.tcpFlags, fromClient: false, now: now)
        counters[.redirectedFromProxy] &+= 1
        return .acceptRewritten
    }

    /// The original destination of a redirected client endpoint (the proxy's lookup), or nil.
    public func originalDestination(clientAddress: IPv4Address, clientPort: UInt16, now: NATTime) -> RedirectSnapshot? {
        for redirect in configuration.redirects {
            let hash = redirectSessions.hash(clientAddress: clientAddress.value, clientPort: clientPort, localPort: redirect.localPort)
            let row = redirectSessions.find(clientAddress: clientAddress.value, clientPort: clientPort,
                                            localPort: redirect.localPort, hash: hash)
            if row >= 0, redirectSessions[row].expires > now.nanoseconds { return redirectSnapshot(row, now: now) }
        }
        return nil
    }

    /// Calls `body` for every live redirected connection (listings, not the packet path).
    public func forEachRedirect(now: NATTime, _ body: (RedirectSnapshot) -> Void) {
        for i in 0..<redirectSessions.highWater {
            let row = Int32(i)
            guard redirectSessions[row].localPort != 0, redirectSessions[row].expires > now.nanoseconds else { continue }
            body(redirectSnapshot(row, now: now))
        }
    }

    public var redirectSessionCount: Int { redirectSessions.count }

    /// Examines up to `budget` redirect rows (a cursor, as the session sweep) and frees the expired.
    @discardableResult
    func expireRedirects(now: NATTime, budget: Int) -> Int {
        sweep(budget: min(budget, redirectSessions.highWater), next: { redirectSessions.nextStaleRow(now: now, budget: &$0) },
              expire: expireRedirect)
    }

    /// Removes a stale redirected connection (the sweep's, or one a lookup found) and counts it.
    func expireRedirect(_ row: Int32) {
        removeRedirect(row, reason: .expired)
        counters[.redirectSessionsExpired] &+= 1
    }

    // MARK: - The client's side

    /// nil: not a redirected packet (translate it as any packet from inside).
    func redirectToProxy(_ ip: IPv4Packet, inputInterface: UInt32, checksum: PacketChecksumState, now: NATTime) -> TranslationVerdict? {
        let header = ip.header
        guard header.protocolNumber == IPProtocolNumber.tcp, !header.isFragment,
              case .endpoint(let endpoint) = ip.readTransport(),
              let localPort = redirectLocalPort(destinationPort: endpoint.destinationPort),
              !isRouterAddress(header.destination.value), isInternal(header.source) else { return nil }
        currentTime = now
        guard endpoint.sourcePort != 0 else { return drop(.zeroPort) }
        let client = header.source.value
        let hash = redirectSessions.hash(clientAddress: client, clientPort: endpoint.sourcePort, localPort: localPort)
        var row = liveRedirect(clientAddress: client, clientPort: endpoint.sourcePort, localPort: localPort, hash: hash, now: now)
        if row >= 0 {
            let session = redirectSessions[row]
            // One client endpoint to two destinations at once would be one socket pair at the proxy.
            guard session.originalAddress == header.destination.value, session.originalPort == endpoint.destinationPort else {
                return drop(.redirectClash)
            }
        } else {
            guard let local = arrivalAddress(inputInterface) else { return drop(.redirectNoLocalAddress) }
            if redirectSessions.count >= redirectSessions.capacity, expireRedirects(now: now, budget: 256) == 0 {
                return drop(.redirectTableFull)
            }
            // Each client's share, so one LAN host cannot take the whole table.
            guard redirectHosts.sessions(of: client) < UInt32(clamping: configuration.maxRedirectSessionsPerHost) else {
                return drop(.redirectHostLimit)
            }
            guard redirectHosts.add(client) else { return drop(.redirectTableFull) }
            row = redirectSessions.insert(RedirectSession(
                expires: now.nanoseconds, clientAddress: client, originalAddress: header.destination.value,
                localAddress: local, hash: hash, clientPort: endpoint.sourcePort, originalPort: endpoint.destinationPort,
                localPort: localPort, tcpState: .opening, tcpFlagsSeen: 0))
            guard row >= 0 else {
                redirectHosts.remove(client)
                return drop(.redirectTableFull)
            }
            counters[.redirectSessionsCreated] &+= 1
            recordRedirect(.redirectCreated, row, reason: .outbound)
        }
        // Delivered locally, a GSO packet is not segmented again, so nothing would finish its
        // checksum: a not-ready one gets the full sum even then (unlike forwarded packets).
        rewrite(ip, transport: .tcp, rewriteSource: false, address: IPv4Address(redirectSessions[row].localAddress), port: localPort,
                checksum: PacketChecksumState(checksumNotReady: checksum.checksumNotReady, isGSO: false))
        touchRedirect(row, flags: endpoint.tcpFlags, fromClient: true, now: now)
        counters[.redirectedToProxy] &+= 1
        return .acceptRewritten
    }

    @inline(__always)
    func redirectLocalPort(destinationPort: UInt16) -> UInt16? {
        for redirect in configuration.redirects where redirect.port == destinationPort { return redirect.localPort }
        return nil
    }

    @inline(__always)
    func isRouterAddress(_ address: UInt32) -> Bool {
        if address == configuration.externalAddress?.value { return true }
        for entry in interfaceAddresses where entry.address.value == address { return true }
        return false
    }

    @inline(__always)
    func arrivalAddress(_ interfaceIndex: UInt32) -> UInt32? {
        for entry in interfaceAddresses where entry.interfaceIndex == interfaceIndex { return entry.address.value }
        return nil
    }

    /// The live row, or -1 (a stale one is freed).
    @inline(__always)
    func liveRedirect(clientAddress: UInt32, clientPort: UInt16, localPort: UInt16, hash: UInt32, now: NATTime) -> Int32 {
        let row = redirectSessions.find(clientAddress: clientAddress, clientPort: clientPort, localPort: localPort, hash: hash)
        return live(row, stale: redirectSessions.isStale(row, now: now), expire: expireRedirect)
    }

    /// `.expired` is refined by the TCP state, as for sessions.
    func removeRedirect(_ row: Int32, reason given: NATEventReason) {
        recordRedirect(.redirectRemoved, row,
                       reason: given == .expired ? Self.idleReason(redirectSessions[row].tcpState) : given)
        redirectHosts.remove(redirectSessions[row].clientAddress)
        redirectSessions.remove(row)
    }

    /// TCP state and idle timer as for any session (the client is the "internal" side).
    @inline(__always)
    func touchRedirect(_ row: Int32, flags: TCPFlags, fromClient: Bool, now: NATTime) {
        let session = redirectSessions.pointer(row)
        session.pointee.tcpState = TCPSessionState.next(session.pointee.tcpState, flags: flags, outbound: fromClient,
                                                        seen: &session.pointee.tcpFlagsSeen)
        let timeout = configuration.timeouts.timeout(protocolNumber: IPProtocolNumber.tcp, tcpState: session.pointee.tcpState)
        session.pointee.expires = now.nanoseconds &+ timeout.nanoseconds
    }

    func redirectSnapshot(_ row: Int32, now: NATTime) -> RedirectSnapshot {
        let s = redirectSessions[row]
        return RedirectSnapshot(
            clientAddress: IPv4Address(s.clientAddress), clientPort: s.clientPort,
            originalAddress: IPv4Address(s.originalAddress), originalPort: s.originalPort,
            localAddress: IPv4Address(s.localAddress), localPort: s.localPort, tcpState: s.tcpState,
            expiresIn: NATDuration(nanoseconds: s.expires > now.nanoseconds ? s.expires - now.nanoseconds : 0))
    }
}
