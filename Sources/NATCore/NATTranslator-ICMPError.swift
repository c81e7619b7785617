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
            of: quoted, mappingRow: externalPorts.owner(slot: quoted.slot, port: quoted.sourcePort, address: addressIndex),
            remoteAddress: quoted.header.destination.value, remotePort: quoted.destinationPort, now: now)
        else { return nil }
        let mapping = mappings[mappingRow]
        let internalAddress = IPv4Address(mapping.internalAddress)
        ip.header.rewriteDestination(internalAddress)
        quoted.rewrite(source: true, address: internalAddress, port: mapping.internalPort)
        ICMPHeader.updateChecksum(of: ip)
        counters.icmpErrorsInbound &+= 1
        counters.inboundTranslated &+= 1
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
        counters.icmpErrorsOutbound &+= 1
        counters.outboundTranslated &+= 1
        return .acceptRewritten
    }

    /// `mappingRow` if it has a live session with the remote endpoint; errors never open one.
    private func sessionMapping(of quoted: QuotedPacket, mappingRow: Int32, remoteAddress: UInt32, remotePort: UInt16, now: NATTime) -> Int32? {
        guard mappingRow >= 0, mappings[mappingRow].protocolNumber == quoted.header.protocolNumber else { return nil }
        let port: UInt16 = quoted.slot == 2 ? 0 : remotePort
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
    let slot: Int
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
        let l4 = bytes + headerLength
        switch header.protocolNumber {
        case IPProtocolNumber.tcp:
            slot = 0
            sourcePort = l4.loadBE16(at: 0)
            destinationPort = l4.loadBE16(at: 2)
        case IPProtocolNumber.udp:
            slot = 1
            sourcePort = l4.loadBE16(at: 0)
            destinationPort = l4.loadBE16(at: 2)
        case IPProtocolNumber.icmp:
            // Only errors about echo queries: no error is ever sent about an error (RFC 1122 3.2.2).
            let type = l4.loadBE8(at: 0)
            guard type == ICMPHeader.echoRequest || type == ICMPHeader.echoReply else { return nil }
            slot = 2
            sourcePort = l4.loadBE16(at: 4)
            destinationPort = sourcePort
        default:
            return nil
        }
        self.header = header
        self.available = available
    }

    /// Rewrites the quoted source (or destination) address and port, with the quoted IP
    /// header checksum and, where it was quoted, the quoted transport checksum.
    func rewrite(source: Bool, address: IPv4Address, port: UInt16) {
        let oldAddress = source ? header.source.value : header.destination.value
        if source { header.rewriteSource(address) } else { header.rewriteDestination(address) }
        let l4 = header.bytes + header.headerLength
        let l4Available = available - header.headerLength
        switch slot {
        case 2:
            let old = l4.loadBE16(at: 4)
            l4.storeBE16(port, at: 4)
            l4.storeBE16(InternetChecksum.adjust(l4.loadBE16(at: 2), old: old, new: port), at: 2)
        default:
            let portOffset = source ? 0 : 2
            let oldPort = l4.loadBE16(at: portOffset)
            l4.storeBE16(port, at: portOffset)
            let checksumOffset = slot == 0 ? TCPHeader.checksumOffset : UDPHeader.checksumOffset
            // A TCP checksum lies beyond the 8 guaranteed bytes: fix it only if it was quoted.
            guard l4Available >= checksumOffset + 2 else { return }
            let old = l4.loadBE16(at: checksumOffset)
            if slot == 1, old == 0 { return }
            var sum = InternetChecksum.adjust(old, oldAddress: oldAddress, newAddress: address.value)
            sum = InternetChecksum.adjust(sum, old: oldPort, new: port)
            l4.storeBE16(slot == 1 && sum == 0 ? 0xffff : sum, at: checksumOffset)
        }
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
