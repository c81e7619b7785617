// Outbound: internal source → external address and mapped port (creating the mapping and
// the session on first use). A packet that cannot be translated is dropped, never leaked.

extension NATTranslator {
    func translateOutbound(_ ip: IPv4Packet, checksum: PacketChecksumState, now: NATTime) -> TranslationVerdict {
        let header = ip.header
        let wan = configuration.externalAddress
        guard wan != nil || !configuration.sourcePools.isEmpty else { return drop(.noExternalAddress) }
        let source = header.source
        // The router's own packets (from the WAN address or a pool address it holds): only its
        // ICMP errors about translated packets need work.
        let fromRouter = source == wan || (!configuration.sourcePools.isEmpty && externalIndex(of: source) >= 0)
        if fromRouter || !isInternal(source) {
            if fromRouter, header.protocolNumber == IPProtocolNumber.icmp, !header.isFragment {
                return translateOutboundICMPError(ip, now: now) ?? translateOutboundAddressOnlyICMPError(ip, now: now)
                    ?? passOutboundNotInternal()
            }
            return passOutboundNotInternal()
        }
        if header.isFragment { return drop(.fragmentUnsupported) }

        let endpoint: TransportEndpoint
        switch ip.readTransport() {
        case .endpoint(let e): endpoint = e
        case .unsupported(let reason):
            if reason == .protocolUnsupported {
                // Protocols without ports leave from the WAN address, pools or not: their rows
                // know one external address (README, Protocols).
                guard let wan else { return drop(.noExternalAddress) }
                return translateOutboundGRECall(ip, external: wan, now: now) ?? translateOutboundAddressOnly(ip, external: wan, now: now)
            }
            if reason == .icmpUnsupported,
               let verdict = translateOutboundICMPError(ip, now: now) ?? translateOutboundAddressOnlyICMPError(ip, now: now) {
                return verdict
            }
            return drop(reason)
        case .malformed: return drop(.malformedTransport)
        }
        let isQuery = !endpoint.transport.remoteHasPort
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

        // Established: the 5-tuple finds the session, which holds all the translation needs.
        // (Its four finishing lines repeat the slow path's end on purpose: a shared function
        // measured 10-15 ns slower per packet here.)
        let tupleHash = sessions.tupleHash(protocolNumber: protocolNumber, internalAddress: source.value,
                                           internalPort: internalPort, remoteAddress: remote, remotePort: remotePort)
        let established = sessions.find(protocolNumber: protocolNumber, internalAddress: source.value, internalPort: internalPort,
                                        remoteAddress: remote, remotePort: remotePort, tupleHash: tupleHash)
        if established >= 0, sessions[established].expires > now.nanoseconds {
            guard let external = externalAddress(index: sessions[established].externalIndex) else { return drop(.noExternalAddress) }
            touch(established, protocolNumber: protocolNumber, tcpFlags: endpoint.tcpFlags, outbound: true, ip: ip, checksum: checksum, now: now)
            rewrite(ip, transport: endpoint.transport, rewriteSource: true, address: external, port: sessions[established].externalPort, checksum: checksum)
            counters[.outboundTranslated] &+= 1
            if sessions[established].helper >= 0 { return applyHelper(ip, sessionRow: established, outbound: true, now: now) }
            return .acceptRewritten
        }

        // Mapping: one per internal endpoint, whatever the destination.
        let mappingHash = mappings.hash(protocolNumber: protocolNumber, address: source.value, port: internalPort)
        var mappingRow = mappings.find(protocolNumber: protocolNumber, address: source.value, port: internalPort, hash: mappingHash)
        if mappingRow < 0 {
            let created = createMapping(protocolNumber: protocolNumber, slot: endpoint.transport.slot, address: source.value,
                                        port: internalPort, hash: mappingHash, externalIndex: pairedIndex(for: source.value), now: now)
            if let reason = created.reason { return drop(reason) }
            mappingRow = created.row
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
                                     protocolNumber: protocolNumber, inbound: false, newFlow: true, now: now)
            if let reason = opened.reason {
                removeMappingIfUnused(mappingRow)
                return drop(reason)
            }
            sessionRow = opened.row
        }
        guard let external = externalAddress(index: mappings[mappingRow].externalIndex) else { return drop(.noExternalAddress) }
        touch(sessionRow, protocolNumber: protocolNumber, tcpFlags: endpoint.tcpFlags, outbound: true, ip: ip, checksum: checksum, now: now)

        rewrite(ip, transport: endpoint.transport, rewriteSource: true, address: external, port: mappings[mappingRow].externalPort, checksum: checksum)
        counters[.outboundTranslated] &+= 1
        if sessions[sessionRow].helper >= 0 { return applyHelper(ip, sessionRow: sessionRow, outbound: true, now: now) }
        return .acceptRewritten
    }

    /// A new dynamic mapping for an internal endpoint, or why there is none.
    func createMapping(protocolNumber: UInt8, slot: Int, address: UInt32, port internalPort: UInt16,
                       hash: UInt32, externalIndex: UInt8 = 0, now: NATTime) -> (row: Int32, reason: DropReason?) {
        if externalIndex == 0, configuration.externalAddress == nil { return (-1, .noExternalAddress) }
        if mappings.count >= mappings.capacity {
            // Expired sessions do not always free a mapping (it may have live ones): check again.
            _ = reclaimExpired(now: now)
            guard mappings.count < mappings.capacity else { return (-1, .mappingTableFull) }
        }
        let port = allocatePort(slot: slot, internalPort: internalPort, hash: hash, address: Int(externalIndex), host: address,
                                reason: .outbound)
        if let reason = port.reason { return (-1, reason) }
        let row = insertMapping(protocolNumber: protocolNumber, slot: slot, address: address, port: internalPort, externalPort: port.port,
                                hash: hash, externalIndex: externalIndex, reason: .outbound)
        return (row, nil)
    }

    /// Files a new dynamic mapping on `externalPort` (from `allocatePort`; the table has room).
    @inline(__always)
    func insertMapping(protocolNumber: UInt8, slot: Int, address: UInt32, port internalPort: UInt16, externalPort: UInt16,
                       hash: UInt32, externalIndex: UInt8, reason: NATEventReason) -> Int32 {
        let row = mappings.insert(Mapping(
            internalAddress: address, hash: hash, sessionCount: 0,
            internalPort: internalPort, externalPort: externalPort, protocolNumber: protocolNumber, externalIndex: externalIndex))
        externalPorts.claim(slot: slot, port: externalPort, row: row, address: Int(externalIndex))
        if hasPortBlocks { addBlockMapping(port: externalPort, address: Int(externalIndex), host: address) }
        counters[.mappingsCreated] &+= 1
        recordMapping(.mappingCreated, row, reason: reason)
        return row
    }

    /// Removes a dynamic mapping that nothing uses (after a refused session).
    func removeMappingIfUnused(_ row: Int32) {
        let mapping = mappings[row]
        if mapping.protocolNumber != 0, mapping.sessionCount == 0, mapping.pendingExpectations == 0, !mapping.isStatic {
            removeMapping(row, reason: .refused)
        }
    }

    @inline(__always)
    func passOutboundNotInternal() -> TranslationVerdict {
        counters[.outboundNotInternal] &+= 1
        return .accept
    }
}
