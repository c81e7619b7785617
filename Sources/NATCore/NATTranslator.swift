import CounterSet
// The translation core: owns the mapping and session tables and rewrites packets in place.
// Single-threaded: one packet loop owns it. No syscalls, no clock: `now` comes with every
// call. Storage is allocated once in `init` at the configured caps; translating a packet
// never allocates.

//
// `@exclusivity(unchecked)` on the stored properties: the translator is owned by one thread
// (or used under one lock) and its methods never hold overlapping accesses to a table, so
// the runtime's dynamic exclusivity bookkeeping on every table access (about 1 % of
// masqd's profile under a ping-pong) buys nothing here.
public final class NATTranslator {
    @exclusivity(unchecked) public internal(set) var configuration: NATConfiguration
    @exclusivity(unchecked) public internal(set) var counters = NATCounters()
    @exclusivity(unchecked) var mappings: MappingTable
    @exclusivity(unchecked) var sessions: SessionTable
    @exclusivity(unchecked) var hosts: HostTable
    /// Owners of external ports, per external address (the WAN address, then the pool's).
    let externalPorts: ExternalPortTable
    /// Port blocks per host (PortBlocks.swift); nil when they are off.
    @exclusivity(unchecked) var portBlocks: PortBlockTable?
    /// `portBlocks != nil`, kept as a plain flag: testing the noncopyable optional itself
    /// borrows it, and a reload cannot turn port blocks on or off.
    let hasPortBlocks: Bool
    /// Round-robin placement: the next address of each source pool (SourceAddressPools.swift).
    @exclusivity(unchecked) var poolCursors: [Int]
    /// Address-only translations of the protocols without ports (NATTranslator-AddressOnly.swift).
    @exclusivity(unchecked) var addressOnly: AddressOnlyTable
    /// PPTP's enhanced GRE calls, made by the PPTP helper (NATTranslator-GRECalls.swift).
    @exclusivity(unchecked) var greCalls: GRECallTable
    /// Ports the router's own sockets hold or reserve (set by the daemon, LocalPorts.swift).
    @exclusivity(unchecked) var localPorts = LocalPortMap()
    /// The time of the packet being translated (helpers' expectations are timed from it).
    @exclusivity(unchecked) var currentTime = NATTime(nanoseconds: 0)

    // Application helpers: their connections, expectations, and scratch space for edits.
    @exclusivity(unchecked) var helperConnections: HelperConnectionTable
    @exclusivity(unchecked) var expectations: ExpectationTable
    let helperScratch: HelperScratch
    @exclusivity(unchecked) var stagedEditCount = 0
    @exclusivity(unchecked) var stagedEditRoom = 0
    /// NAT events waiting for the daemon (NATTranslator-Events.swift); empty and off by default.
    @exclusivity(unchecked) var events = NATEventRing()
    /// Set while `importState` runs: its sessions are recorded as restored.
    @exclusivity(unchecked) var restoring = false
    /// Record `.sessionEstablished` events too (the kernel fast path's; NATTranslator-FastPath.swift).
    @exclusivity(unchecked) public var recordsEstablishedSessions = false
    /// Record `.helperStateChanged` events too (the HA increments'; NATTranslator-HelperState.swift).
    @exclusivity(unchecked) public var recordsHelperStateChanges = false

    // Transparent redirect (NATTranslator-Redirect.swift): its connections and the router's
    // addresses by interface.
    @exclusivity(unchecked) var redirectSessions: RedirectTable
    /// Redirected connections per client address, for the per-host share.
    @exclusivity(unchecked) var redirectHosts: HostTable
    @exclusivity(unchecked) var interfaceAddresses: [InterfaceAddress] = []
    /// When a full table may next look for expired sessions (NATTranslator-Reclaim.swift).
    @exclusivity(unchecked) var reclaimNotBefore: UInt64 = 0

    /// `configuration` must pass `validate()`; the daemon checks it first and reports errors.
    public init(configuration: NATConfiguration) {
        precondition(configuration.maxSessions > 0 && configuration.maxSessions < Int(Int32.max) / 2)
        precondition(configuration.maxMappings > 0 && configuration.maxMappings < Int(Int32.max) / 2)
        precondition(configuration.maxAddressOnlyFlows > 0 && configuration.maxAddressOnlyFlows < Int(Int32.max) / 2)
        self.configuration = configuration
        let staticMappings = configuration.forwards.reduce(0) { $0 + $1.externalPorts.count }
        mappings = MappingTable(capacity: configuration.maxMappings + staticMappings, seed: configuration.hashSeed)
        sessions = SessionTable(capacity: configuration.maxSessions, seed: configuration.hashSeed &* 31 &+ 7)
        hosts = HostTable(capacity: configuration.maxSessions, seed: configuration.hashSeed &* 17 &+ 3)
        externalPorts = ExternalPortTable(addresses: 1 + configuration.sourcePools.addresses.count)
        hasPortBlocks = configuration.portBlocks != nil
        if let settings = configuration.portBlocks {
            portBlocks = PortBlockTable(settings: settings, portRange: configuration.ports.portRange,
                                        addresses: 1 + configuration.sourcePools.addresses.count, seed: configuration.hashSeed &* 23 &+ 13)
        } else {
            portBlocks = nil
        }
        poolCursors = [Int](repeating: 0, count: configuration.sourcePools.pools.count)
        addressOnly = AddressOnlyTable(capacity: configuration.maxAddressOnlyFlows, seed: configuration.hashSeed &* 13 &+ 5)
        greCalls = GRECallTable(capacity: max(1, configuration.helperLimits.greCalls), seed: configuration.hashSeed &* 11 &+ 9)
        let limits = configuration.helperLimits
        let helperRows = configuration.helpers.isEmpty ? 1 : limits.connections
        helperConnections = HelperConnectionTable(capacity: helperRows, heldBytes: limits.heldBytes)
        expectations = ExpectationTable(capacity: configuration.helpers.isEmpty ? 1 : limits.expectations)
        redirectSessions = RedirectTable(capacity: configuration.redirects.isEmpty ? 1 : configuration.maxRedirectSessions,
                                         seed: configuration.hashSeed &* 13 &+ 5)
        redirectHosts = HostTable(capacity: configuration.redirects.isEmpty ? 1 : configuration.maxRedirectSessions,
                                  seed: configuration.hashSeed &* 19 &+ 11)
        helperScratch = HelperScratch(heldBytes: limits.heldBytes)
        counters.helperEvents = configuration.helpers.map { _ in CounterSet<HelperEvent>() }
        installForwards()
    }

    /// Connections with an application helper, and expected connections pending.
    public var helperConnectionCount: Int { helperConnections.count }
    public var pendingExpectationCount: Int { expectations.count }

    public var sessionCount: Int { sessions.count }
    /// Live address-only translations (protocols without ports).
    public var addressOnlyFlowCount: Int { addressOnly.count }
    /// PPTP calls whose GRE call IDs are translated (live or not yet swept).
    public var greCallCount: Int { greCalls.count }
    /// Live mappings, port forwards' static ones included.
    public var mappingCount: Int { mappings.count }

    /// Translates one packet in place. `packet` holds the IPv4 packet from its first byte.
    public func translate(
        _ packet: UnsafeMutableRawBufferPointer,
        direction: PacketDirection,
        checksum: PacketChecksumState,
        now: NATTime
    ) -> TranslationVerdict {
        currentTime = now
        guard let base = packet.baseAddress else { return drop(.malformedIPv4) }
        let ip: IPv4Packet
        switch IPv4Packet.parse(base, count: packet.count) {
        case .success(let parsed): ip = parsed
        case .failure: return drop(.malformedIPv4)
        }
        switch direction {
        case .outbound: return translateOutbound(ip, checksum: checksum, now: now)
        case .inbound: return translateInbound(ip, checksum: checksum, now: now)
        case .hairpin: return translateHairpin(ip, checksum: checksum, now: now)
        }
    }

    /// Follows a change of the WAN address. Like the kernel's MASQUERADE (which deletes the
    /// conntrack entries of an interface whose address goes away), every dynamic mapping made
    /// with the old address is flushed: its replies would go to an address we no longer have.
    /// Port forwards are installed again for the new address.
    public func setExternalAddress(_ address: IPv4Address?) {
        guard address != configuration.externalAddress else { return }
        counters[.externalAddressChanges] &+= 1
        counters[.sessionsFlushed] &+= UInt64(sessions.count + addressOnly.count)
        recordFlushOfAll(reason: .addressChanged)
        releaseAllBlocks(reason: .addressChanged)
        sessions.removeAll()
        addressOnly.removeAll()
        greCalls.removeAll()
        mappings.removeAll()
        hosts.removeAll()
        externalPorts.removeAll()
        helperConnections.removeAll()
        expectations.removeAll()
        configuration.externalAddress = address
        installForwards()
    }

    /// Port forwards become static mappings: their external ports are never handed out.
    func installForwards() {
        for forward in configuration.forwards {
            guard let slot = ExternalPortTable.slot(forward.protocolNumber) else { continue }
            for port in forward.externalPorts {
                let internalPort = forward.internalPort(for: port)
                let hash = mappings.hash(protocolNumber: forward.protocolNumber, address: forward.internalAddress.value, port: internalPort)
                let row = mappings.insert(Mapping(
                    internalAddress: forward.internalAddress.value, hash: hash, sessionCount: 0,
                    internalPort: internalPort, externalPort: port, protocolNumber: forward.protocolNumber, isStatic: true))
                externalPorts.claim(slot: slot, port: port, row: row)
                recordMapping(.mappingCreated, row, reason: .portForward)
            }
        }
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

    /// Opens a session of `mappingRow` with a remote endpoint, within every cap; `newFlow`: one
    /// the internal host starts now (not a restored one), which spends its new-flow rate.
    /// Returns the row, or the reason it could not be opened.
    @inline(__always)
    func openSession(mappingRow: Int32, remoteAddress: UInt32, remotePort: UInt16, hash: UInt32,
                     protocolNumber: UInt8, inbound: Bool, newFlow: Bool = false, now: NATTime) -> (row: Int32, reason: DropReason?) {
        let internalAddress = mappings[mappingRow].internalAddress
        if sessions.count >= sessions.capacity {
            // Pin the mapping while sweeping: if its other sessions have all expired, the sweep
            // would otherwise free it and the new session would point at a free row.
            mappings[mappingRow].sessionCount += 1
            let reclaimed = reclaimExpired(now: now)
            mappings[mappingRow].sessionCount -= 1
            if !reclaimed { return (-1, .sessionTableFull) }
        }
        if hosts.sessions(of: internalAddress) >= UInt32(clamping: configuration.maxSessionsPerHost) {
            return (-1, .hostSessionLimit)
        }
        let rate = newFlow ? configuration.newFlowsPerHost : nil
        if let rate, !hosts.admitsNewFlow(internalAddress, rate: rate, now: now) {
            return (-1, .hostNewFlowRate)
        }
        let isTCP = protocolNumber == IPProtocolNumber.tcp
        // A helper follows flows dialled to its port: the remote's port for a flow from
        // inside, a port forward's external port for one from outside (a dynamic mapping that
        // happens to sit on 21 or 5060 is no server of that protocol).
        var helper: Int? = nil
        if !configuration.helpers.isEmpty, isTCP || protocolNumber == IPProtocolNumber.udp,
           !inbound || mappings[mappingRow].isStatic {
            helper = helperIndex(protocolNumber: protocolNumber, port: inbound ? mappings[mappingRow].externalPort : remotePort)
            if helper != nil {
                if helperConnections.count >= helperConnections.store.capacity { return (-1, .helperTableFull) }
                // Each host's share, so one host's SYNs to port 21 cannot lock every host out of FTP.
                if hosts.helperConnections(of: internalAddress) >= UInt32(clamping: configuration.helperLimits.connectionsPerHost) {
                    return (-1, .hostHelperLimit)
                }
            }
        }
        // A host's first session pairs it with its mapping's address (a forward's, on the WAN
        // address, pairs it with its placement instead).
        let paired = mappings[mappingRow].isStatic ? pairedIndex(for: internalAddress) : mappings[mappingRow].externalIndex
        guard hosts.add(internalAddress, externalIndex: paired) else { return (-1, .sessionTableFull) }
        if let rate { hosts.chargeNewFlow(internalAddress, rate: rate, now: now) }
        let mapping = mappings[mappingRow]
        let row = sessions.insertSession(Session(
            expires: now.nanoseconds, remoteAddress: remoteAddress, internalAddress: mapping.internalAddress,
            mapping: mappingRow, hash: hash, remotePort: remotePort,
            internalPort: mapping.internalPort, externalPort: mapping.externalPort,
            tcpState: isTCP ? .opening : .none, tcpFlagsSeen: inbound ? TCPSessionState.openedInbound : 0,
            protocolNumber: protocolNumber, externalIndex: mapping.externalIndex))
        if let helper {
            sessions.pointer(row).pointee.helper = helperConnections.insert(session: row, helperIndex: helper, clientIsInternal: !inbound)
            hosts.addHelperConnection(internalAddress)
        }
        mappings[mappingRow].sessionCount += 1
        counters[.sessionsCreated] &+= 1
        recordSession(.sessionCreated, row, reason: restoring ? .restored : inbound ? .inbound : .outbound)
        if inbound { counters[.sessionsOpenedInbound] &+= 1 }
        return (row, nil)
    }

    /// Removes a session, and its mapping when it was the mapping's last (static ones stay).
    /// `reason` goes into the removal events; `.expired` is refined by the TCP state.
    func removeSession(_ row: Int32, reason given: NATEventReason) {
        let reason = given == .expired ? Self.idleReason(sessions[row].tcpState) : given
        recordSession(.sessionRemoved, row, reason: reason)
        let mappingRow = sessions[row].mapping
        var mapping = mappings[mappingRow]
        if sessions[row].helper >= 0 {
            helperConnections.remove(sessions[row].helper)
            hosts.removeHelperConnection(mapping.internalAddress)
        }
        sessions.remove(row)
        hosts.remove(mapping.internalAddress)
        mapping.sessionCount -= 1
        mappings[mappingRow] = mapping
        if mapping.sessionCount == 0, mapping.pendingExpectations == 0, !mapping.isStatic { removeMapping(mappingRow, reason: reason) }
    }

    func removeMapping(_ row: Int32, reason: NATEventReason) {
        recordMapping(.mappingRemoved, row, reason: reason)
        let mapping = mappings[row]
        if let slot = ExternalPortTable.slot(mapping.protocolNumber) {
            externalPorts.release(slot: slot, port: mapping.externalPort, address: Int(mapping.externalIndex))
        }
        if hasPortBlocks, !mapping.isStatic { removeBlockMapping(mapping, reason: reason) }
        mappings.remove(row)
    }

    /// Refreshes a session's timer and TCP state for a packet crossing it; a TCP packet the
    /// window or checksum check refuses leaves both as they are (NATTranslator-TCPGuard.swift).
    @inline(__always)
    func touch(_ row: Int32, protocolNumber: UInt8, tcpFlags: TCPFlags, outbound: Bool, ip: IPv4Packet,
               checksum: PacketChecksumState, now: NATTime) {
        let session = sessions.pointer(row)
        if protocolNumber == IPProtocolNumber.tcp {
            guard admitTCP(session, flags: tcpFlags, outbound: outbound, ip: ip, checksum: checksum) else {
                // A session this very packet opened (its timer not yet set) still gets its first lifetime.
                if session.pointee.expires <= now.nanoseconds {
                    let timeout = configuration.timeouts.timeout(protocolNumber: protocolNumber, tcpState: session.pointee.tcpState)
                    session.pointee.expires = now.nanoseconds &+ timeout.nanoseconds
                }
                return
            }
            let before = session.pointee.tcpState
            session.pointee.tcpState = TCPSessionState.next(
                session.pointee.tcpState, flags: tcpFlags, outbound: outbound, seen: &session.pointee.tcpFlagsSeen)
            if recordsEstablishedSessions, before != .established, session.pointee.tcpState == .established {
                recordEstablished(row)
            }
        } else if recordsEstablishedSessions, protocolNumber == IPProtocolNumber.udp {
            noteUDPDirection(row, outbound: outbound)
        }
        let timeout = configuration.timeouts.timeout(protocolNumber: protocolNumber, tcpState: session.pointee.tcpState)
        session.pointee.expires = now.nanoseconds &+ timeout.nanoseconds
    }

    /// The live session of a mapping with a remote endpoint, or -1 (a stale one is removed).
    @inline(__always)
    func liveSession(mappingRow: Int32, remoteAddress: UInt32, remotePort: UInt16, hash: UInt32, now: NATTime) -> Int32 {
        let row = sessions.find(mapping: mappingRow, remoteAddress: remoteAddress, remotePort: remotePort, hash: hash)
        return live(row, stale: sessions.isStale(row, now: now), expire: expireSession)
    }
}

extension NATConfiguration {
    /// Checks what the translator cannot represent.
    public func validate() throws(NATConfigurationError) {
        var targets: [(PortForward, UInt8, UInt32, UInt16)] = []
        for forward in forwards {
            for port in forward.externalPorts {
                let key = (forward.protocolNumber, forward.internalAddress.value, forward.internalPort(for: port))
                if let other = targets.first(where: { $0.1 == key.0 && $0.2 == key.1 && $0.3 == key.2 }) {
                    throw .forwardTargetsSameEndpoint(other.0, forward)
                }
                targets.append((forward, key.0, key.1, key.2))
            }
        }
        if targets.count > 65536 * 2 { throw .forwardsExceedMappings }
    }
}
