// Inbound: packets to the external address whose port belongs to a mapping and whose
// source is a remote endpoint of one of its sessions (address-and-port-dependent
// filtering) go to the internal endpoint. Everything else addressed to us goes to the
// router's own stack unchanged; nothing unmatched ever reaches an internal host.

extension NATTranslator {
    func translateInbound(_ ip: IPv4Packet, checksum: PacketChecksumState, now: NATTime) -> TranslationVerdict {
        let header = ip.header
        let destination = header.destination
        guard let external = configuration.externalAddress, destination == external else {
            // Straight to an internal address from the WAN side: a masqueraded network is
            // not reachable that way.
            if !configuration.internalPrefixes.isEmpty, isInternal(destination) {
                return drop(.inboundToInternalAddress)
            }
            counters.inboundNotForUs &+= 1
            return .accept
        }
        if header.isFragment { return drop(.fragmentUnsupported) }

        let endpoint: TransportEndpoint
        switch ip.readTransport() {
        case .endpoint(let e): endpoint = e
        case .unsupported, .malformed:
            // Not ours to judge (ICMP errors, other protocols, junk): the router's stack decides.
            counters.inboundUnmatched &+= 1
            return .accept
        }
        let isQuery = endpoint.slot == 2
        if isQuery, ICMPHeader(unchecked: ip.transport).type != ICMPHeader.echoReply {
            counters.inboundUnmatched &+= 1
            return .accept
        }
        let mappingRow = externalPorts.owner(slot: endpoint.slot, port: endpoint.destinationPort)
        guard mappingRow >= 0 else {
            counters.inboundUnmatched &+= 1
            return .accept
        }
        let remote = header.source.value
        let remotePort: UInt16 = isQuery ? 0 : endpoint.sourcePort
        let sessionHash = sessions.hash(mapping: mappingRow, remoteAddress: remote, remotePort: remotePort)
        let sessionRow = sessions.find(mapping: mappingRow, remoteAddress: remote, remotePort: remotePort, hash: sessionHash)
        guard sessionRow >= 0 else {
            counters.inboundUnmatched &+= 1
            return .accept
        }
        if sessions[sessionRow].expires <= now.nanoseconds {
            removeSession(sessionRow)
            counters.sessionsExpired &+= 1
            counters.inboundUnmatched &+= 1
            return .accept
        }
        let protocolNumber = header.protocolNumber
        touch(sessionRow, protocolNumber: protocolNumber, tcpFlags: endpoint.tcpFlags, outbound: false, now: now)
        let mapping = mappings[mappingRow]
        rewrite(ip, slot: endpoint.slot, rewriteSource: false, address: IPv4Address(mapping.internalAddress),
                port: mapping.internalPort, checksum: checksum)
        counters.inboundTranslated &+= 1
        return .acceptRewritten
    }
}
