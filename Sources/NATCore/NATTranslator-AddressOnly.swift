// Address-only NAT for the protocols the seam has no identifiers for (AddressOnlyTable.swift):
// outbound, the source becomes the external address and the (protocol, remote) row names
// the internal host; inbound, the remote's packets of that protocol go to that host. A
// second internal host to a (protocol, remote) another one holds is dropped and counted
// (`drop_address_only_remote_in_use`): its replies could not be told apart.

extension NATTranslator {
    func translateOutboundAddressOnly(_ ip: IPv4Packet, external: IPv4Address, now: NATTime) -> TranslationVerdict {
        let header = ip.header
        let protocolNumber = header.protocolNumber
        guard AddressOnlyChecksum.isReadable(ip) else { return drop(.malformedTransport) }
        let source = header.source.value
        let remote = header.destination.value
        let hash = addressOnly.hash(protocolNumber: protocolNumber, remoteAddress: remote)
        var row = liveAddressOnlyFlow(protocolNumber: protocolNumber, remoteAddress: remote, hash: hash, now: now)
        if row >= 0 {
            guard addressOnly[row].internalAddress == source else { return drop(.addressOnlyRemoteInUse) }
        } else {
            if addressOnly.count >= addressOnly.capacity, expireAddressOnly(now: now, budget: addressOnly.capacity) == 0 {
                return drop(.addressOnlyTableFull)
            }
            // Rows count in the host's share of translations (`maxSessionsPerHost`), so one
            // host cannot take every row.
            if hosts.sessions(of: source) >= UInt32(clamping: configuration.maxSessionsPerHost) { return drop(.hostSessionLimit) }
            guard hosts.add(source) else { return drop(.addressOnlyTableFull) }
            row = addressOnly.insert(AddressOnlyFlow(expires: 0, remoteAddress: remote, internalAddress: source, hash: hash,
                                                     protocolNumber: protocolNumber))
            counters[.addressOnlyFlowsCreated] &+= 1
            recordAddressOnly(.addressOnlyCreated, row, reason: .outbound)
        }
        addressOnly[row].expires = now.nanoseconds &+ configuration.timeouts.other.nanoseconds
        header.rewriteSource(external)
        AddressOnlyChecksum.adjust(ip, oldAddress: source, newAddress: external.value)
        counters[.outboundTranslated] &+= 1
        return .acceptRewritten
    }

    /// Nil when no live row names a host for this remote: the caller hands the packet to the router's stack.
    func translateInboundAddressOnly(_ ip: IPv4Packet, now: NATTime) -> TranslationVerdict? {
        let header = ip.header
        let remote = header.source.value
        let row = liveAddressOnlyFlow(protocolNumber: header.protocolNumber, remoteAddress: remote, now: now)
        guard row >= 0, AddressOnlyChecksum.isReadable(ip) else { return nil }
        let internalAddress = addressOnly[row].internalAddress
        addressOnly[row].expires = now.nanoseconds &+ configuration.timeouts.other.nanoseconds
        let old = header.destination.value
        header.rewriteDestination(IPv4Address(internalAddress))
        AddressOnlyChecksum.adjust(ip, oldAddress: old, newAddress: internalAddress)
        counters[.inboundTranslated] &+= 1
        return .acceptRewritten
    }

    /// Inbound ICMP error quoting a packet we sent for an internal host (quoted source = the
    /// external address): outer destination and quoted source back to that host. Nil when no
    /// live row matches (the caller passes the error on). Errors never refresh a row.
    func translateInboundAddressOnlyICMPError(_ ip: IPv4Packet, now: NATTime) -> TranslationVerdict? {
        guard let quoted = QuotedAddressOnlyPacket(errorIn: ip), let external = configuration.externalAddress,
              quoted.header.source == external else { return nil }
        let row = liveAddressOnlyFlow(protocolNumber: quoted.header.protocolNumber, remoteAddress: quoted.header.destination.value, now: now)
        guard row >= 0 else { return nil }
        let internalAddress = IPv4Address(addressOnly[row].internalAddress)
        ip.header.rewriteDestination(internalAddress)
        quoted.rewrite(source: true, address: internalAddress)
        ICMPHeader.updateChecksum(of: ip)
        counters[.icmpErrorsInbound] &+= 1
        counters[.inboundTranslated] &+= 1
        return .acceptRewritten
    }

    /// Outbound ICMP error, from inside or from the router, about a packet an internal host
    /// received from a remote through an address-only row: quoted destination (and the outer
    /// source, if internal) become the external address.
    func translateOutboundAddressOnlyICMPError(_ ip: IPv4Packet, now: NATTime) -> TranslationVerdict? {
        guard let quoted = QuotedAddressOnlyPacket(errorIn: ip), let external = configuration.externalAddress else { return nil }
        let row = liveAddressOnlyFlow(protocolNumber: quoted.header.protocolNumber, remoteAddress: quoted.header.source.value, now: now)
        guard row >= 0, addressOnly[row].internalAddress == quoted.header.destination.value else { return nil }
        if ip.header.source != external { ip.header.rewriteSource(external) }
        quoted.rewrite(source: false, address: external)
        ICMPHeader.updateChecksum(of: ip)
        counters[.icmpErrorsOutbound] &+= 1
        counters[.outboundTranslated] &+= 1
        return .acceptRewritten
    }

    /// The live row of (protocol, remote), or -1 (a stale one is removed).
    func liveAddressOnlyFlow(protocolNumber: UInt8, remoteAddress: UInt32, now: NATTime) -> Int32 {
        liveAddressOnlyFlow(protocolNumber: protocolNumber, remoteAddress: remoteAddress,
                            hash: addressOnly.hash(protocolNumber: protocolNumber, remoteAddress: remoteAddress), now: now)
    }

    /// The same, with the row hash the caller already has (outbound keeps it for the insert).
    func liveAddressOnlyFlow(protocolNumber: UInt8, remoteAddress: UInt32, hash: UInt32, now: NATTime) -> Int32 {
        let row = addressOnly.find(protocolNumber: protocolNumber, remoteAddress: remoteAddress, hash: hash)
        return live(row, stale: addressOnly.isStale(row, now: now), expire: expireAddressOnlyFlow)
    }

    func removeAddressOnlyFlow(_ row: Int32, reason: NATEventReason) {
        recordAddressOnly(.addressOnlyRemoved, row, reason: reason)
        hosts.remove(addressOnly[row].internalAddress)
        addressOnly.remove(row)
    }

    /// Removes a stale row (the sweep's, or one a lookup found) and counts it.
    func expireAddressOnlyFlow(_ row: Int32) {
        removeAddressOnlyFlow(row, reason: .expired)
        counters[.addressOnlyFlowsExpired] &+= 1
    }

    /// Examines up to `budget` rows from the sweep cursor and removes the expired ones.
    @discardableResult
    func expireAddressOnly(now: NATTime, budget: Int) -> Int {
        sweep(budget: min(budget, addressOnly.highWater), next: { addressOnly.nextStaleRow(now: now, budget: &$0) },
              expire: expireAddressOnlyFlow)
    }
}

/// A packet of a protocol without ports quoted in an ICMP error: its IP header and at least
/// 8 bytes after it (RFC 792), as QuotedPacket requires of the others.
struct QuotedAddressOnlyPacket {
    let header: IPv4Header

    init?(errorIn ip: IPv4Packet) {
        guard ip.header.protocolNumber == IPProtocolNumber.icmp, ip.transportLength >= ICMPHeader.length + 28 else { return nil }
        guard QuotedPacket.isError(ICMPHeader(unchecked: ip.transport).type) else { return nil }
        let bytes = ip.transport + ICMPHeader.length
        let available = ip.transportLength - ICMPHeader.length
        let header = IPv4Header(unchecked: bytes)
        let headerLength = header.headerLength
        guard header.version == 4, headerLength >= 20, available >= headerLength + 8, header.fragmentOffset == 0,
              TransportProtocol(protocolNumber: header.protocolNumber) == nil else { return nil }
        self.header = header
    }

    /// Rewrites the quoted source (or destination) with the quoted IP header checksum and,
    /// for DCCP and UDP-Lite, the quoted transport checksum (within the 8 bytes).
    func rewrite(source: Bool, address: IPv4Address) {
        let old = source ? header.source.value : header.destination.value
        if source { header.rewriteSource(address) } else { header.rewriteDestination(address) }
        if AddressOnlyChecksum.covered(header.protocolNumber) {
            AddressOnlyChecksum.adjust(header.bytes + header.headerLength, oldAddress: old, newAddress: address.value)
        }
    }
}

/// The address-only protocols whose checksum covers the IPv4 pseudo-header, so an address
/// change must be carried into it: DCCP (RFC 4340) and UDP-Lite (RFC 3828), both at byte 6.
/// ESP, GRE and SCTP (CRC32c) have none; AH's ICV covers the addresses and cannot survive any
/// NAT (RFC 3715).
enum AddressOnlyChecksum {
    static let dccp: UInt8 = 33
    static let udpLite: UInt8 = 136
    static let offset = 6

    @inline(__always)
    static func covered(_ protocolNumber: UInt8) -> Bool { protocolNumber == dccp || protocolNumber == udpLite }

    /// A protocol whose checksum must be fixed needs its checksum field present.
    @inline(__always)
    static func isReadable(_ ip: IPv4Packet) -> Bool {
        !covered(ip.header.protocolNumber) || ip.transportLength >= offset + 2
    }

    @inline(__always)
    static func adjust(_ ip: IPv4Packet, oldAddress: UInt32, newAddress: UInt32) {
        guard covered(ip.header.protocolNumber) else { return }
        adjust(ip.transport, oldAddress: oldAddress, newAddress: newAddress)
    }

    /// RFC 1624 update of the checksum at `l4 + offset` (mandatory in both: no "0 = none" rule).
    @inline(__always)
    static func adjust(_ l4: UnsafeMutableRawPointer, oldAddress: UInt32, newAddress: UInt32) {
        let old = l4.loadBE16(at: offset)
        l4.storeBE16(InternetChecksum.adjust(old, oldAddress: oldAddress, newAddress: newAddress), at: offset)
    }
}
