// ICMP errors (destination unreachable incl. fragmentation needed, time exceeded, parameter
// problem) quote the packet that caused them. RFC 5508 REQ-3/4: translate the outer header,
// the quoted header and its ports or echo identifier, and every checksum, so path-MTU
// discovery and traceroute work through the NAT. An error is translated only when the
// quoted packet belongs to a live session; errors do not refresh session timers.

extension NATTranslator {
    /// Inbound: an error about a packet we sent (quoted source = external address).
    /// Nil when it is not an error for one of our sessions (the caller passes it to the stack).
    func translateInboundICMPError(_ ip: IPv4Packet, now: NATTime) -> TranslationVerdict? {
        guard let quoted = QuotedPacket(errorIn: ip) else { return nil }
        let addressIndex = externalIndex(of: quoted.header.source)
        guard addressIndex >= 0 else { return nil }
        guard let mappingRow = sessionMapping(
            of: quoted, mappingRow: externalPorts.owner(slot: quoted.transport.slot, port: quoted.sourcePort, address: addressIndex),
            remoteAddress: quoted.header.destination.value, remotePort: quoted.destinationPort, now: now)
        else { return nil }
        let mapping = mappings[mappingRow]
        let internalAddress = IPv4Address(mapping.internalAddress)
        ip.header.rewriteDestination(internalAddress)
        quoted.rewrite(source: true, address: internalAddress, port: mapping.internalPort)
        ICMPHeader.updateChecksum(of: ip)
        counters[.icmpErrorsInbound] &+= 1
        counters[.inboundTranslated] &+= 1
        return .acceptRewritten
    }

    /// Outbound: an error from inside (or from the router itself) about a packet an internal
    /// host received through the NAT (quoted destination = internal endpoint).
    func translateOutboundICMPError(_ ip: IPv4Packet, now: NATTime) -> TranslationVerdict? {
        guard let quoted = QuotedPacket(errorIn: ip) else { return nil }
        let internalAddress = quoted.header.destination.value
        // The quoted packet went to the internal endpoint: find its mapping by that endpoint.
        let hash = mappings.hash(protocolNumber: quoted.header.protocolNumber, address: internalAddress, port: quoted.destinationPort)
        let candidate = mappings.find(protocolNumber: quoted.header.protocolNumber, address: internalAddress,
                                      port: quoted.destinationPort, hash: hash)
        guard let mappingRow = sessionMapping(
            of: quoted, mappingRow: candidate,
            remoteAddress: quoted.header.source.value, remotePort: quoted.sourcePort, now: now)
        else { return nil }
        guard let external = externalAddress(index: mappings[mappingRow].externalIndex) else { return nil }
        // From inside: the host's external address. From the router itself: its own address stays.
        if externalIndex(of: ip.header.source) < 0 { ip.header.rewriteSource(external) }
        quoted.rewrite(source: false, address: external, port: mappings[mappingRow].externalPort)
        ICMPHeader.updateChecksum(of: ip)
        counters[.icmpErrorsOutbound] &+= 1
        counters[.outboundTranslated] &+= 1
        return .acceptRewritten
    }

    /// `mappingRow` if it has a live session with the remote endpoint; errors never open one.
    private func sessionMapping(of quoted: QuotedPacket, mappingRow: Int32, remoteAddress: UInt32, remotePort: UInt16, now: NATTime) -> Int32? {
        guard mappingRow >= 0, mappings[mappingRow].protocolNumber == quoted.header.protocolNumber else { return nil }
        let port: UInt16 = quoted.transport.remoteHasPort ? remotePort : 0
        let hash = sessions.hash(mapping: mappingRow, remoteAddress: remoteAddress, remotePort: port)
        let row = sessions.find(mapping: mappingRow, remoteAddress: remoteAddress, remotePort: port, hash: hash)
        guard row >= 0, sessions[row].expires > now.nanoseconds else { return nil }
        return mappingRow
    }
}

/// The packet quoted inside an ICMP error: its IP header and at least the first 8 bytes of
/// its transport header (RFC 792), possibly cut short after that.
struct QuotedPacket {
    let header: IPv4Header
    /// Bytes of the quoted packet present in the error.
    let available: Int
    let transport: TransportProtocol
    let sourcePort: UInt16
    let destinationPort: UInt16

    static func isError(_ type: UInt8) -> Bool {
        type == ICMPHeader.destinationUnreachable || type == ICMPHeader.timeExceeded || type == ICMPHeader.parameterProblem
    }

    init?(errorIn ip: IPv4Packet) {
        guard ip.header.protocolNumber == IPProtocolNumber.icmp, ip.transportLength >= ICMPHeader.length + 28 else { return nil }
        let icmp = ICMPHeader(unchecked: ip.transport)
        guard QuotedPacket.isError(icmp.type) else { return nil }
        let bytes = ip.transport + ICMPHeader.length
        let available = ip.transportLength - ICMPHeader.length
        let header = IPv4Header(unchecked: bytes)
        let headerLength = header.headerLength
        guard header.version == 4, headerLength >= 20, available >= headerLength + 8,
              header.fragmentOffset == 0 else { return nil }
        guard let transport = TransportProtocol(protocolNumber: header.protocolNumber),
              let ports = transport.readQuoted(bytes + headerLength) else { return nil }
        self.transport = transport
        sourcePort = ports.source
        destinationPort = ports.destination
        self.header = header
        self.available = available
    }

    /// Rewrites the quoted source (or destination) address and port, with the quoted IP
    /// header checksum and, where it was quoted, the quoted transport checksum.
    func rewrite(source: Bool, address: IPv4Address, port: UInt16) {
        let oldAddress = source ? header.source.value : header.destination.value
        if source { header.rewriteSource(address) } else { header.rewriteDestination(address) }
        transport.rewriteQuoted(header.bytes + header.headerLength, available: available - header.headerLength, source: source,
                                oldAddress: oldAddress, newAddress: address.value, port: port)
    }
}

extension ICMPHeader {
    /// Recomputes an ICMP message's checksum over all of it (errors are small; the quoted
    /// bytes changed in several places).
    static func updateChecksum(of ip: IPv4Packet) {
        let l4 = ip.transport
        l4.storeBE16(0, at: checksumOffset)
        l4.storeBE16(InternetChecksum.checksum(UnsafeRawPointer(l4), count: ip.transportLength), at: checksumOffset)
    }
}
