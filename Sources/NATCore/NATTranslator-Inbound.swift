// Inbound: packets to the external address whose port belongs to a mapping go to the
// internal endpoint when the mapping's filter lets them in: by default only from remote
// endpoints it has sessions with (address-and-port-dependent filtering); a port forward's
// mapping, or any mapping under endpoint-independent filtering, opens a session for a new
// remote. Everything else addressed to us goes to the router's own stack unchanged; nothing
// unmatched ever reaches an internal host. Spoofed and martian sources are dropped first
// (NATTranslator-Spoofing.swift).

extension NATTranslator {
    func translateInbound(_ ip: IPv4Packet, checksum: PacketChecksumState, now: NATTime) -> TranslationVerdict {
        let header = ip.header
        if let reason = spoofedSourceFromWAN(header.source) { return drop(reason) }
        let destination = header.destination
        let addressIndex = externalIndex(of: destination)
        guard addressIndex >= 0 else {
            // Straight to an internal address from the WAN side: a masqueraded network is
            // not reachable that way.
            if !configuration.internalPrefixes.isEmpty, isInternal(destination) {
                return drop(.inboundToInternalAddress)
            }
            counters[.inboundNotForUs] &+= 1
            return .accept
        }
        if header.isFragment { return drop(.fragmentUnsupported) }

        let endpoint: TransportEndpoint
        switch ip.readTransport() {
        case .endpoint(let e): endpoint = e
        case .unsupported(let reason):
            if reason == .protocolUnsupported,
               let verdict = translateInboundGRECall(ip, now: now) ?? translateInboundAddressOnly(ip, now: now) {
                return verdict
            }
            if reason == .icmpUnsupported,
               let verdict = translateInboundICMPError(ip, now: now) ?? translateInboundAddressOnlyICMPError(ip, now: now) {
                return verdict
            }
            return passInboundUnmatched()
        case .malformed:
            // Not ours to judge: the router's stack drops junk addressed to it.
            return passInboundUnmatched()
        }
        let isQuery = !endpoint.transport.remoteHasPort
        if isQuery, ICMPHeader(unchecked: ip.transport).type != ICMPHeader.echoReply {
            return passInboundUnmatched() // echo requests to the router: its stack answers
        }
        let mappingRow = externalPorts.owner(slot: endpoint.transport.slot, port: endpoint.destinationPort, address: addressIndex)
        // The router's own socket (IKE, WireGuard, its DNS forwarder's reply port): its packets, never a LAN host's.
        if isRoutersPort(slot: endpoint.transport.slot, port: endpoint.destinationPort, owner: mappingRow) { return .accept }
        guard mappingRow >= 0 else { return passInboundUnmatched() }
        let remote = header.source.value
        let remotePort: UInt16 = isQuery ? 0 : endpoint.sourcePort
        if !isQuery, remotePort == 0 { return passInboundUnmatched() }
        let sessionHash = sessions.hash(mapping: mappingRow, remoteAddress: remote, remotePort: remotePort)
        var sessionRow = liveSession(mappingRow: mappingRow, remoteAddress: remote, remotePort: remotePort, hash: sessionHash, now: now)
        if sessionRow < 0 {
            // The stale session may have taken a dynamic mapping with it: look again.
            let row = externalPorts.owner(slot: endpoint.transport.slot, port: endpoint.destinationPort, address: addressIndex)
            guard row == mappingRow else { return passInboundUnmatched() }
            let mapping = mappings[mappingRow]
            guard !isQuery, mapping.isStatic || configuration.filtering == .endpointIndependent
                    || consumeExpectation(mappingRow: mappingRow, remoteAddress: remote, remotePort: remotePort, now: now)
            else {
                return passInboundUnmatched()
            }
            let opened = openSession(mappingRow: mappingRow, remoteAddress: remote, remotePort: remotePort, hash: sessionHash,
                                     protocolNumber: header.protocolNumber, inbound: true, now: now)
            if let reason = opened.reason {
                removeMappingIfUnused(mappingRow)
                return drop(reason)
            }
            sessionRow = opened.row
        }
        let protocolNumber = header.protocolNumber
        touch(sessionRow, protocolNumber: protocolNumber, tcpFlags: endpoint.tcpFlags, outbound: false, ip: ip, checksum: checksum, now: now)
        let session = sessions[sessionRow]
        rewrite(ip, transport: endpoint.transport, rewriteSource: false, address: IPv4Address(session.internalAddress),
                port: session.internalPort, checksum: checksum)
        counters[.inboundTranslated] &+= 1
        if sessions[sessionRow].helper >= 0 { return applyHelper(ip, sessionRow: sessionRow, outbound: false, now: now) }
        return .acceptRewritten
    }

    @inline(__always)
    func passInboundUnmatched() -> TranslationVerdict {
        counters[.inboundUnmatched] &+= 1
        return .accept
    }
}
