// The translation core: owns the mapping and session tables and rewrites packets in place.
// Single-threaded: one packet loop owns it. No syscalls, no clock: `now` comes with every
// call. Storage is allocated once in `init` at the configured caps; translating a packet
// never allocates.

public final class NATTranslator {
    public private(set) var configuration: NATConfiguration
    public internal(set) var counters = NATCounters()
    var mappings: MappingTable
    var sessions: SessionTable
    let externalPorts = ExternalPortTable()
    var sweepCursor = 0

    public init(configuration: NATConfiguration) {
        precondition(configuration.maxSessions > 0 && configuration.maxSessions < Int(Int32.max) / 2)
        precondition(configuration.maxMappings > 0 && configuration.maxMappings < Int(Int32.max) / 2)
        self.configuration = configuration
        mappings = MappingTable(capacity: configuration.maxMappings, seed: configuration.hashSeed)
        sessions = SessionTable(capacity: configuration.maxSessions, seed: configuration.hashSeed &* 31 &+ 7)
    }

    deinit {
        mappings.deallocate()
        sessions.deallocate()
        externalPorts.deallocate()
    }

    public var sessionCount: Int { sessions.count }
    public var mappingCount: Int { mappings.count }

    /// Translates one packet in place. `packet` holds the IPv4 packet from its first byte.
    public func translate(
        _ packet: UnsafeMutableRawBufferPointer,
        direction: PacketDirection,
        checksum: PacketChecksumState,
        now: NATTime
    ) -> TranslationVerdict {
        guard let base = packet.baseAddress else { return drop(.malformedIPv4) }
        let ip: IPv4Packet
        switch IPv4Packet.parse(base, count: packet.count) {
        case .success(let parsed): ip = parsed
        case .failure: return drop(.malformedIPv4)
        }
        switch direction {
        case .outbound: return translateOutbound(ip, checksum: checksum, now: now)
        case .inbound: return translateInbound(ip, checksum: checksum, now: now)
        }
    }

    /// Follows a change of the WAN address. Like the kernel's MASQUERADE (which deletes the
    /// conntrack entries of an interface whose address goes away), every mapping made with
    /// the old address is flushed: its replies would be addressed to an address we no longer have.
    public func setExternalAddress(_ address: IPv4Address?) {
        guard address != configuration.externalAddress else { return }
        counters.externalAddressChanges &+= 1
        counters.sessionsFlushed &+= UInt64(sessions.count)
        sessions.removeAll()
        mappings.removeAll()
        externalPorts.removeAll()
        configuration.externalAddress = address
    }

    @inline(__always)
    func drop(_ reason: DropReason) -> TranslationVerdict {
        counters.countDrop(reason)
        return .drop(reason)
    }

    @inline(__always)
    func isInternal(_ address: IPv4Address) -> Bool {
        let prefixes = configuration.internalPrefixes
        if prefixes.isEmpty { return true }
        for prefix in prefixes where prefix.contains(address) { return true }
        return false
    }

    /// Removes a session, and its mapping when it was the mapping's last.
    func removeSession(_ row: Int32) {
        let mappingRow = sessions[row].mapping
        sessions.remove(row)
        var mapping = mappings[mappingRow]
        mapping.sessionCount -= 1
        if mapping.sessionCount == 0 {
            if let slot = ExternalPortTable.slot(mapping.protocolNumber) {
                externalPorts.release(slot: slot, port: mapping.externalPort)
            }
            mappings.remove(mappingRow)
        } else {
            mappings[mappingRow] = mapping
        }
    }

    /// Refreshes a session's timer and TCP state for a packet crossing it.
    @inline(__always)
    func touch(_ row: Int32, protocolNumber: UInt8, tcpFlags: TCPFlags, outbound: Bool, now: NATTime) {
        let session = sessions.pointer(row)
        if protocolNumber == IPProtocolNumber.tcp {
            session.pointee.tcpState = TCPSessionState.next(
                session.pointee.tcpState, flags: tcpFlags, outbound: outbound, seen: &session.pointee.tcpFlagsSeen)
        }
        let timeout = configuration.timeouts.timeout(protocolNumber: protocolNumber, tcpState: session.pointee.tcpState)
        session.pointee.expires = now.nanoseconds &+ timeout.nanoseconds
    }
}
