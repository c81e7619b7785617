// Outbound: internal source → external address and mapped port (creating the mapping and
// the session on first use). A packet that cannot be translated is dropped, never leaked.

extension NATTranslator {
    func translateOutbound(_ ip: IPv4Packet, checksum: PacketChecksumState, now: NATTime) -> TranslationVerdict {
        let header = ip.header
        guard let external = configuration.externalAddress else { return drop(.noExternalAddress) }
        let source = header.source
        if source == external || !isInternal(source) {
            counters.outboundNotInternal &+= 1
            return .accept
        }
        if header.isFragment { return drop(.fragmentUnsupported) }

        let endpoint: TransportEndpoint
        switch ip.readTransport() {
        case .endpoint(let e): endpoint = e
        case .unsupported(let reason): return drop(reason)
        case .malformed: return drop(.malformedTransport)
        }
        let isQuery = endpoint.slot == 2
        // ICMP echo: the identifier is the internal "port"; the remote has none.
        let internalPort = endpoint.sourcePort
        let remotePort: UInt16 = isQuery ? 0 : endpoint.destinationPort
        if !isQuery, internalPort == 0 || remotePort == 0 { return drop(.zeroPort) }
        let protocolNumber = header.protocolNumber
        let remote = header.destination.value

        // Mapping: one per internal endpoint, whatever the destination.
        let mappingHash = mappings.hash(protocolNumber: protocolNumber, address: source.value, port: internalPort)
        var mappingRow = mappings.find(protocolNumber: protocolNumber, address: source.value, port: internalPort, hash: mappingHash)
        var newMapping = false
        if mappingRow < 0 {
            guard mappings.count < mappings.capacity || reclaimExpired(now: now) else { return drop(.mappingTableFull) }
            guard let port = configuration.ports.allocate(
                in: externalPorts, slot: endpoint.slot, internalPort: internalPort, startHash: mappingHash)
            else { return drop(.portsExhausted) }
            mappingRow = mappings.insert(Mapping(
                internalAddress: source.value, hash: mappingHash, sessionCount: 0,
                internalPort: internalPort, externalPort: port, protocolNumber: protocolNumber))
            externalPorts.claim(slot: endpoint.slot, port: port, row: mappingRow)
            counters.mappingsCreated &+= 1
            newMapping = true
        }

        // Session: one per (mapping, remote endpoint); it is also the inbound filter.
        let sessionHash = sessions.hash(mapping: mappingRow, remoteAddress: remote, remotePort: remotePort)
        var sessionRow = sessions.find(mapping: mappingRow, remoteAddress: remote, remotePort: remotePort, hash: sessionHash)
        if sessionRow >= 0, sessions[sessionRow].expires <= now.nanoseconds, !newMapping {
            // Expired but not yet swept: start afresh, keeping the mapping if others use it.
            let keep = mappings[mappingRow].sessionCount > 1
            removeSession(sessionRow)
            counters.sessionsExpired &+= 1
            sessionRow = -1
            if !keep {
                return translateOutbound(ip, checksum: checksum, now: now)
            }
        }
        if sessionRow < 0 {
            if sessions.count >= sessions.capacity, !reclaimExpired(now: now) {
                if mappings[mappingRow].sessionCount == 0 {
                    externalPorts.release(slot: endpoint.slot, port: mappings[mappingRow].externalPort)
                    mappings.remove(mappingRow)
                }
                return drop(.sessionTableFull)
            }
            sessionRow = sessions.insert(Session(
                expires: 0, remoteAddress: remote, mapping: mappingRow, hash: sessionHash,
                remotePort: remotePort, tcpState: protocolNumber == IPProtocolNumber.tcp ? .opening : .none, tcpFlagsSeen: 0))
            mappings[mappingRow].sessionCount += 1
            counters.sessionsCreated &+= 1
        }
        touch(sessionRow, protocolNumber: protocolNumber, tcpFlags: endpoint.tcpFlags, outbound: true, now: now)

        rewrite(ip, slot: endpoint.slot, rewriteSource: true, address: external, port: mappings[mappingRow].externalPort, checksum: checksum)
        counters.outboundTranslated &+= 1
        return .acceptRewritten
    }
}
