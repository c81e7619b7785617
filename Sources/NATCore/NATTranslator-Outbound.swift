// Outbound: internal source → external address and mapped port (creating the mapping and
// the session on first use). A packet that cannot be translated is dropped, never leaked.

extension NATTranslator {
    func translateOutbound(_ ip: IPv4Packet, checksum: PacketChecksumState, now: NATTime) -> TranslationVerdict {
        let header = ip.header
        guard let external = configuration.externalAddress else { return drop(.noExternalAddress) }
        let source = header.source
        if source == external || !isInternal(source) {
            // The router's own packets: only its ICMP errors about translated packets need work.
            if source == external, header.protocolNumber == IPProtocolNumber.icmp, !header.isFragment {
                return translateOutboundICMPError(ip, now: now) ?? passOutboundNotInternal()
            }
            return passOutboundNotInternal()
        }
        if header.isFragment { return drop(.fragmentUnsupported) }

        let endpoint: TransportEndpoint
        switch ip.readTransport() {
        case .endpoint(let e): endpoint = e
        case .unsupported(let reason):
            if reason == .icmpUnsupported, let verdict = translateOutboundICMPError(ip, now: now) { return verdict }
            return drop(reason)
        case .malformed: return drop(.malformedTransport)
        }
        let isQuery = endpoint.slot == 2
        if isQuery, ICMPHeader(unchecked: ip.transport).type != ICMPHeader.echoRequest {
            // An echo reply from inside answers nothing we forward.
            return drop(.icmpUnsupported)
        }
        // ICMP echo: the identifier is the internal "port"; the remote has none.
        let internalPort = endpoint.sourcePort
        let remotePort: UInt16 = isQuery ? 0 : endpoint.destinationPort
        if !isQuery, internalPort == 0 || remotePort == 0 { return drop(.zeroPort) }
        let protocolNumber = header.protocolNumber
        let remote = header.destination.value

        // Mapping: one per internal endpoint, whatever the destination.
        let mappingHash = mappings.hash(protocolNumber: protocolNumber, address: source.value, port: internalPort)
        var mappingRow = mappings.find(protocolNumber: protocolNumber, address: source.value, port: internalPort, hash: mappingHash)
        if mappingRow < 0 {
            if mappings.count >= mappings.capacity {
                // Expired sessions do not always free a mapping (it may have live ones): check again.
                _ = reclaimExpired(now: now)
                guard mappings.count < mappings.capacity else { return drop(.mappingTableFull) }
            }
            guard let port = configuration.ports.allocate(
                in: externalPorts, slot: endpoint.slot, internalPort: internalPort, startHash: mappingHash)
            else { return drop(.portsExhausted) }
            mappingRow = mappings.insert(Mapping(
                internalAddress: source.value, hash: mappingHash, sessionCount: 0,
                internalPort: internalPort, externalPort: port, protocolNumber: protocolNumber))
            externalPorts.claim(slot: endpoint.slot, port: port, row: mappingRow)
            counters.mappingsCreated &+= 1
        }

        // Session: one per (mapping, remote endpoint); it is also the inbound filter.
        let sessionHash = sessions.hash(mapping: mappingRow, remoteAddress: remote, remotePort: remotePort)
        var sessionRow = liveSession(mappingRow: mappingRow, remoteAddress: remote, remotePort: remotePort, hash: sessionHash, now: now)
        if sessionRow < 0 {
            if mappings[mappingRow].protocolNumber == 0 {
                // Removing the stale session freed its mapping too: start again from the top.
                return translateOutbound(ip, checksum: checksum, now: now)
            }
            let opened = openSession(mappingRow: mappingRow, remoteAddress: remote, remotePort: remotePort, hash: sessionHash,
                                     protocolNumber: protocolNumber, inbound: false, now: now)
            if let reason = opened.reason {
                if mappings[mappingRow].sessionCount == 0, !mappings[mappingRow].isStatic { removeMapping(mappingRow) }
                return drop(reason)
            }
            sessionRow = opened.row
        }
        touch(sessionRow, protocolNumber: protocolNumber, tcpFlags: endpoint.tcpFlags, outbound: true, now: now)

        rewrite(ip, slot: endpoint.slot, rewriteSource: true, address: external, port: mappings[mappingRow].externalPort, checksum: checksum)
        counters.outboundTranslated &+= 1
        return .acceptRewritten
    }

    @inline(__always)
    func passOutboundNotInternal() -> TranslationVerdict {
        counters.outboundNotInternal &+= 1
        return .accept
    }
}
