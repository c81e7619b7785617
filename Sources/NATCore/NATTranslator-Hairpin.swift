// Hairpinning (RFC 4787 REQ-9, RFC 5382 REQ-8): an internal host reaching another internal
// host through the external address and a mapped or forwarded port. The packet is
// translated both ways at once — its source as if it left (the sender's mapping, a session
// towards external:port) and its destination as if it came in (the target mapping's filter
// decides, with the sender appearing as external:its-port) — so each side sees the other
// exactly as an outside host would. It arrives before routing from the internal side, so
// the new destination is routed back inside.

extension NATTranslator {
    func translateHairpin(_ ip: IPv4Packet, checksum: PacketChecksumState, now: NATTime) -> TranslationVerdict {
        let header = ip.header
        // `external`: the address the sender dialled (the WAN address or a pool address).
        let external = header.destination
        let targetIndex = externalIndex(of: external)
        guard targetIndex >= 0, externalIndex(of: header.source) < 0, isInternal(header.source) else {
            // To another of the router's addresses, or not from inside: the stack's business.
            counters[.hairpinPassed] &+= 1
            return .accept
        }
        if header.isFragment { return drop(.fragmentUnsupported) }
        guard case .endpoint(let endpoint) = ip.readTransport(), endpoint.transport.remoteHasPort else {
            counters[.hairpinPassed] &+= 1
            return .accept // ICMP to the external address: the router answers itself
        }
        guard endpoint.sourcePort != 0, endpoint.destinationPort != 0 else { return drop(.zeroPort) }
        let protocolNumber = header.protocolNumber
        let source = header.source.value
        let target = externalPorts.owner(slot: endpoint.transport.slot, port: endpoint.destinationPort, address: targetIndex)
        if isRoutersPort(slot: endpoint.transport.slot, port: endpoint.destinationPort, owner: target) {
            counters[.hairpinPassed] &+= 1
            return .accept // the router's own socket serves it
        }
        guard target >= 0, mappings[target].internalAddress != source || mappings[target].internalPort != endpoint.sourcePort else {
            counters[.hairpinPassed] &+= 1
            return .accept // a service of the router itself
        }
        // Outbound half first, as for any packet leaving: the sender's mapping and its session
        // towards external:destinationPort. Made even if the target then refuses the packet,
        // so two inside peers can open a path to each other the way they would across two
        // NATs (each sends first; the second packet finds the first one's session).
        let senderHash = mappings.hash(protocolNumber: protocolNumber, address: source, port: endpoint.sourcePort)
        var sender = mappings.find(protocolNumber: protocolNumber, address: source, port: endpoint.sourcePort, hash: senderHash)
        if sender < 0 {
            let created = createMapping(protocolNumber: protocolNumber, slot: endpoint.transport.slot, address: source,
                                        port: endpoint.sourcePort, hash: senderHash, externalIndex: pairedIndex(for: source), now: now)
            if let reason = created.reason { return drop(reason) }
            sender = created.row
        }
        let outboundHash = sessions.hash(mapping: sender, remoteAddress: external.value, remotePort: endpoint.destinationPort)
        var outbound = liveSession(mappingRow: sender, remoteAddress: external.value, remotePort: endpoint.destinationPort,
                                   hash: outboundHash, now: now)
        if outbound < 0 {
            if mappings[sender].protocolNumber == 0 {
                // The stale session took the sender's mapping with it: start again.
                return translateHairpin(ip, checksum: checksum, now: now)
            }
            let opened = openSession(mappingRow: sender, remoteAddress: external.value, remotePort: endpoint.destinationPort,
                                     hash: outboundHash, protocolNumber: protocolNumber, inbound: false, newFlow: true, now: now)
            if let reason = opened.reason {
                removeMappingIfUnused(sender)
                return drop(reason)
            }
            outbound = opened.row
        }
        touch(outbound, protocolNumber: protocolNumber, tcpFlags: endpoint.tcpFlags, outbound: true, ip: ip, checksum: checksum, now: now)
        let senderPort = mappings[sender].externalPort
        // The sender appears as its own external address (paired: maybe not the one it dialled).
        guard let senderExternal = externalAddress(index: mappings[sender].externalIndex) else { return drop(.noExternalAddress) }

        // Inbound half: the target's session with external:senderPort, or its filter's consent.
        guard externalPorts.owner(slot: endpoint.transport.slot, port: endpoint.destinationPort, address: targetIndex) == target else {
            counters[.hairpinPassed] &+= 1
            return .accept
        }
        let inboundHash = sessions.hash(mapping: target, remoteAddress: senderExternal.value, remotePort: senderPort)
        var inbound = liveSession(mappingRow: target, remoteAddress: senderExternal.value, remotePort: senderPort, hash: inboundHash, now: now)
        if inbound < 0 {
            guard externalPorts.owner(slot: endpoint.transport.slot, port: endpoint.destinationPort, address: targetIndex) == target,
                  mappings[target].isStatic || configuration.filtering == .endpointIndependent
                    || consumeExpectation(mappingRow: target, remoteAddress: senderExternal.value, remotePort: senderPort, now: now)
            else {
                counters[.hairpinPassed] &+= 1
                return .accept // filtered, as it would be from outside: the router's stack gets it
            }
            let opened = openSession(mappingRow: target, remoteAddress: senderExternal.value, remotePort: senderPort, hash: inboundHash,
                                     protocolNumber: protocolNumber, inbound: true, now: now)
            if let reason = opened.reason { return drop(reason) }
            inbound = opened.row
        }
        touch(inbound, protocolNumber: protocolNumber, tcpFlags: endpoint.tcpFlags, outbound: false, ip: ip, checksum: checksum, now: now)

        let targetMapping = mappings[target]
        rewrite(ip, transport: endpoint.transport, rewriteSource: true, address: senderExternal, port: senderPort, checksum: checksum)
        // The first rewrite left a valid checksum (or one the kernel redoes, for TCP GSO).
        rewrite(ip, transport: endpoint.transport, rewriteSource: false, address: IPv4Address(targetMapping.internalAddress),
                port: targetMapping.internalPort, checksum: PacketChecksumState(checksumNotReady: false, isGSO: checksum.isGSO))
        counters[.hairpinTranslated] &+= 1
        return .acceptRewritten
    }
}
