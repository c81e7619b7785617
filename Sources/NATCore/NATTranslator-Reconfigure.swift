import CounterSet
// Changing the settings of a running translator (the daemon's SIGHUP reload) without
// dropping live flows. Everything is checked before anything changes: a refused
// reconfiguration leaves the translator exactly as it was.
//
// What may change, and when it takes effect:
// - forwards: a new forward's static mapping is made at once (its ports are reserved); a
//   removed forward's mapping goes at once when nothing uses it, else it lives on as an
//   ordinary mapping until its last session ends — like conntrack entries after a DNAT rule
//   is deleted: the remotes it has sessions with still reach the internal host, new ones do
//   not (under endpoint-independent filtering, any remote while a session lives, as for any
//   mapping). A forward that takes over a removed forward's external port, or its internal
//   endpoint (a forward re-pointed or moved), flushes that old mapping's sessions: one port
//   cannot lead to two hosts. A new forward whose port, or whose internal endpoint, is held by
//   a live dynamic mapping of a LAN host is refused (the whole reconfiguration is): the
//   mapping ends when its sessions expire, then the reload can be repeated. A dynamic mapping
//   of the forward's own endpoint on the forward's own port simply becomes static.
// - timeouts: a new session gets the new ones; a live session gets them from its next packet
//   (its expiry is recomputed at every packet); an idle one keeps the expiry it has, like a
//   conntrack entry after a sysctl change.
// - filtering, the per-host cap, expectationsPerConnection and expectationTimeout: from the
//   next packet (or expectation). A host above a lowered cap keeps its sessions.
// - helpers: matched by name. A new connection gets the helper of the port it dials under the
//   new list; a live helper connection keeps its helper until it ends, even when that helper
//   was removed or moved to other ports (a removed helper stays in `configuration.helpers`
//   with no ports, so its connections and counters go on; its index never changes).
// What may not (`ReconfigureError.unchangeable`): the internal prefixes (the steering rules
// are made from them), the port range and the table sizes (maxSessions, maxMappings, the
// helper tables' sizes). The external address and the hash seed are the translator's own and
// are kept whatever `new` says.

/// A setting the translator cannot change while it runs.
public enum NATSetting: String, Sendable, CaseIterable {
    case internalPrefixes = "internal prefixes"
    case ports = "port range"
    case maxSessions = "session table size"
    case maxMappings = "mapping table size"
    case helperLimits = "helper table sizes"
    case sourcePools = "source address pools"
    case maxAddressOnlyFlows = "address-only table size"
    case portBlocks = "port block size"
}

/// Why a reconfiguration was refused; nothing was changed.
public enum ReconfigureError: Error, Equatable, Sendable, CustomStringConvertible {
    case unchangeable(NATSetting)
    case invalid(NATConfigurationError)
    /// The forward's external `port` belongs to a live mapping of another internal endpoint.
    case forwardPortInUse(PortForward, port: UInt16, holder: IPv4Address, holderPort: UInt16)
    /// The forward's internal endpoint already has a live mapping, on external port `externalPort`.
    case forwardTargetInUse(PortForward, internalPort: UInt16, externalPort: UInt16)
    /// More distinct helpers than a helper connection can name (256).
    case tooManyHelpers

    public var description: String {
        switch self {
        case .unchangeable(let setting):
            "the \(setting.rawValue) cannot change while running"
        case .invalid(.forwardTargetsSameEndpoint(let a, let b)):
            "forward \(b) targets the same internal endpoint as forward \(a)"
        case .invalid(.forwardsExceedMappings):
            "too many forwarded ports"
        case let .forwardPortInUse(forward, port, holder, holderPort):
            "forward \(forward): external port \(port) is held by a live mapping of \(holder):\(holderPort); retry when it has expired, or use another port"
        case let .forwardTargetInUse(forward, internalPort, externalPort):
            "forward \(forward): \(forward.internalAddress):\(internalPort) already has a live mapping on external port \(externalPort); retry when it has expired"
        case .tooManyHelpers:
            "more than 256 different helpers"
        }
    }
}

/// What a reconfiguration changed.
public struct ReconfigureSummary: Sendable, Equatable {
    /// Forwards in the new list and not in the old one, and the other way round (a changed
    /// forward is in both).
    public var forwardsAdded: [PortForward] = []
    public var forwardsRemoved: [PortForward] = []
    /// Sessions cut because a new forward took their (removed) forward's port or endpoint.
    public var sessionsFlushed = 0
    /// Mappings of removed forwards that live on until their sessions end.
    public var mappingsLingering = 0
    public var timeoutsChanged = false
    public var filteringChanged = false
    /// A helper added, removed, or moved to other ports.
    public var helpersChanged = false
    /// The per-host cap or the helpers' expectation limits.
    public var limitsChanged = false

    public init() {}

    public var isEmpty: Bool {
        forwardsAdded.isEmpty && forwardsRemoved.isEmpty && !timeoutsChanged && !filteringChanged && !helpersChanged && !limitsChanged
    }
}

extension NATTranslator {
    /// Switches to the settings of `new` (see the top of this file for what may change and
    /// when it applies), or throws and changes nothing. `now` is used to clear away sessions
    /// that have already expired before a port is judged to be in use.
    @discardableResult
    public func reconfigure(_ new: NATConfiguration, now: NATTime) throws(ReconfigureError) -> ReconfigureSummary {
        currentTime = now
        let old = configuration
        if new.internalPrefixes != old.internalPrefixes { throw .unchangeable(.internalPrefixes) }
        if new.ports.portRange != old.ports.portRange || new.ports.lowPortRange != old.ports.lowPortRange {
            throw .unchangeable(.ports)
        }
        if new.maxSessions != old.maxSessions { throw .unchangeable(.maxSessions) }
        if new.maxMappings != old.maxMappings { throw .unchangeable(.maxMappings) }
        // Each pool address has a port table of its own, made at start.
        if new.sourcePools != old.sourcePools { throw .unchangeable(.sourcePools) }
        if new.maxAddressOnlyFlows != old.maxAddressOnlyFlows { throw .unchangeable(.maxAddressOnlyFlows) }
        // The blocks are cut at start; only the per-host cap may change.
        if new.portBlocks?.size != old.portBlocks?.size { throw .unchangeable(.portBlocks) }
        let limits = old.helperLimits
        if new.helperLimits.connections != limits.connections || new.helperLimits.heldBytes != limits.heldBytes
            || new.helperLimits.expectations != limits.expectations {
            throw .unchangeable(.helperLimits)
        }
        do { try new.validate() } catch { throw .invalid(error) }

        // Dead state is not "in use": expectations and sessions past their time go first
        // (the sweep would remove them soon anyway, so this changes nothing that matters).
        expireExpectations(now: now)
        let forwardPlan = try planForwards(new.forwards, now: now)
        let (helpers, helpersChanged) = try mergedHelpers(new.helpers)
        let needsHelperTables = helpers.contains { !$0.ports.isEmpty } && helperConnections.store.capacity < limits.connections
        if needsHelperTables, helperConnections.count > 0 || expectations.count > 0 { throw .unchangeable(.helperLimits) }

        // Checked: from here on nothing fails.
        var summary = ReconfigureSummary()
        summary.forwardsAdded = new.forwards.filter { !old.forwards.contains($0) }
        summary.forwardsRemoved = old.forwards.filter { !new.forwards.contains($0) }
        apply(forwardPlan, forwards: new.forwards, maxMappings: new.maxMappings, summary: &summary)

        if needsHelperTables {
            // Made with one row when there were no helpers at the start: empty, so remade.
            helperConnections = HelperConnectionTable(capacity: limits.connections, heldBytes: limits.heldBytes)
            expectations = ExpectationTable(capacity: limits.expectations)
        }
        while counters.helperEvents.count < helpers.count {
            counters.helperEvents.append(CounterSet<HelperEvent>())
        }
        configuration.helpers = helpers
        summary.helpersChanged = helpersChanged

        summary.timeoutsChanged = new.timeouts != old.timeouts
        summary.filteringChanged = new.filtering != old.filtering
        summary.limitsChanged = new.maxSessionsPerHost != old.maxSessionsPerHost
            || new.helperLimits.expectationsPerConnection != limits.expectationsPerConnection
            || new.helperLimits.expectationTimeout != limits.expectationTimeout
            || new.helperLimits.connectionsPerHost != limits.connectionsPerHost
            || new.helperLimits.expectationsPerHost != limits.expectationsPerHost
            || new.newFlowsPerHost != old.newFlowsPerHost
            || new.portBlocks != old.portBlocks
        configuration.timeouts = new.timeouts
        configuration.filtering = new.filtering
        configuration.maxSessionsPerHost = new.maxSessionsPerHost
        configuration.helperLimits.expectationsPerConnection = new.helperLimits.expectationsPerConnection
        configuration.helperLimits.expectationTimeout = new.helperLimits.expectationTimeout
        // Shares apply to new connections and expectations; a host over a lowered share keeps what it has.
        configuration.helperLimits.connectionsPerHost = new.helperLimits.connectionsPerHost
        configuration.helperLimits.expectationsPerHost = new.helperLimits.expectationsPerHost
        // Hosts keep their arrival times: a changed rate applies from each one's next new flow.
        configuration.newFlowsPerHost = new.newFlowsPerHost
        // A host over a lowered block cap keeps its blocks; it gets no new one.
        configuration.portBlocks = new.portBlocks
        return summary
    }
}

// MARK: - Forwards

/// The static-mapping changes a new forward list needs, worked out before anything changes.
struct ForwardPlan {
    /// Static mappings whose port or endpoint a new forward takes: their sessions are cut.
    var flush: [Int32] = []
    /// Static mappings of removed forwards: removed now, or left to their sessions.
    var release: [Int32] = []
    /// Live mappings of a new forward's endpoint on the forward's own port: made static.
    var promote: [Int32] = []
    var install: [(protocolNumber: UInt8, port: UInt16, address: UInt32, internalPort: UInt16)] = []
}

extension NATTranslator {
    /// Each forwarded (protocol, external port) with its internal endpoint and forward.
    static func forwardedPorts(_ forwards: [PortForward]) -> [UInt32: (target: UInt64, forward: PortForward)] {
        var ports: [UInt32: (target: UInt64, forward: PortForward)] = [:]
        for forward in forwards {
            for port in forward.externalPorts {
                let target = UInt64(forward.internalAddress.value) << 16 | UInt64(forward.internalPort(for: port))
                ports[UInt32(forward.protocolNumber) << 16 | UInt32(port)] = (target, forward)
            }
        }
        return ports
    }

    func planForwards(_ forwards: [PortForward], now: NATTime) throws(ReconfigureError) -> ForwardPlan {
        let before = Self.forwardedPorts(configuration.forwards), after = Self.forwardedPorts(forwards)
        var plan = ForwardPlan()
        var flush = Set<Int32>()
        for (key, old) in before where after[key]?.target != old.target {
            guard let slot = ExternalPortTable.slot(UInt8(key >> 16)) else { continue }
            let row = externalPorts.owner(slot: slot, port: UInt16(truncatingIfNeeded: key))
            if row >= 0, mappings[row].isStatic { plan.release.append(row) }
        }
        // In port order, so the same files always give the same refusal.
        for (key, new) in after.sorted(by: { $0.key < $1.key }) where before[key]?.target != new.target {
            let protocolNumber = UInt8(key >> 16), port = UInt16(truncatingIfNeeded: key)
            let address = UInt32(truncatingIfNeeded: new.target >> 16), internalPort = UInt16(truncatingIfNeeded: new.target)
            guard let slot = ExternalPortTable.slot(protocolNumber) else { continue }
            func isTarget(_ row: Int32) -> Bool {
                mappings[row].internalAddress == address && mappings[row].internalPort == internalPort
            }
            var owner = externalPorts.owner(slot: slot, port: port)
            if owner >= 0, !mappings[owner].isStatic, !isTarget(owner), removeExpiredSessions(ofMapping: owner, now: now) {
                owner = externalPorts.owner(slot: slot, port: port)
            }
            var promoted = false
            if owner >= 0 {
                let holder = mappings[owner]
                if holder.isStatic {
                    flush.insert(owner) // a removed or re-pointed forward's port
                } else if isTarget(owner) {
                    plan.promote.append(owner)
                    promoted = true
                } else {
                    throw .forwardPortInUse(new.forward, port: port, holder: IPv4Address(holder.internalAddress), holderPort: holder.internalPort)
                }
            }
            let hash = mappings.hash(protocolNumber: protocolNumber, address: address, port: internalPort)
            var held = mappings.find(protocolNumber: protocolNumber, address: address, port: internalPort, hash: hash)
            if held >= 0, held != owner, !mappings[held].isStatic, removeExpiredSessions(ofMapping: held, now: now) {
                held = mappings.find(protocolNumber: protocolNumber, address: address, port: internalPort, hash: hash)
            }
            if held >= 0, held != owner {
                // A static one is a removed forward's (a new list targets each endpoint once).
                guard mappings[held].isStatic else {
                    throw .forwardTargetInUse(new.forward, internalPort: internalPort, externalPort: mappings[held].externalPort)
                }
                flush.insert(held)
            }
            if !promoted { plan.install.append((protocolNumber, port, address, internalPort)) }
        }
        plan.flush = flush.sorted()
        plan.release.removeAll { flush.contains($0) }
        return plan
    }

    func apply(_ plan: ForwardPlan, forwards: [PortForward], maxMappings: Int, summary: inout ReconfigureSummary) {
        for row in plan.flush { summary.sessionsFlushed += flushMapping(row, reason: .reload) }
        for row in plan.release {
            mappings[row].isStatic = false
            if mappings[row].sessionCount == 0, mappings[row].pendingExpectations == 0 {
                removeMapping(row, reason: .reload)
            } else {
                summary.mappingsLingering += 1
            }
        }
        // Room for every dynamic mapping the cap allows besides the static ones, as at the start.
        let staticPorts = forwards.reduce(0) { $0 + $1.externalPorts.count }
        let needed = max(maxMappings + staticPorts, mappings.count + plan.install.count)
        if needed > mappings.capacity { mappings.grow(to: needed) }
        for row in plan.promote { mappings[row].isStatic = true }
        for entry in plan.install {
            guard let slot = ExternalPortTable.slot(entry.protocolNumber) else { continue }
            let hash = mappings.hash(protocolNumber: entry.protocolNumber, address: entry.address, port: entry.internalPort)
            let row = mappings.insert(Mapping(
                internalAddress: entry.address, hash: hash, sessionCount: 0,
                internalPort: entry.internalPort, externalPort: entry.port, protocolNumber: entry.protocolNumber, isStatic: true))
            externalPorts.claim(slot: slot, port: entry.port, row: row)
            recordMapping(.mappingCreated, row, reason: .portForward)
        }
        configuration.forwards = forwards
    }

    /// Removes a mapping with its sessions and pending expectations. Returns the sessions cut.
    func flushMapping(_ row: Int32, reason: NATEventReason) -> Int {
        mappings[row].isStatic = false
        if mappings[row].pendingExpectations > 0 {
            for i in 0..<expectations.capacity where expectations[Int32(i)].mapping == row {
                expectations.remove(Int32(i))
                mappings[row].pendingExpectations -= 1
            }
        }
        guard mappings[row].sessionCount > 0 else {
            removeMapping(row, reason: reason)
            return 0
        }
        var flushed = 0
        // The last removal takes the mapping with it.
        for i in 0..<sessions.highWater where sessions[Int32(i)].mapping == row {
            removeSession(Int32(i), reason: reason)
            flushed += 1
        }
        counters[.sessionsFlushed] &+= UInt64(flushed)
        return flushed
    }

    /// Removes the expired sessions of a mapping. True if the mapping went with them.
    func removeExpiredSessions(ofMapping row: Int32, now: NATTime) -> Bool {
        var removed: UInt64 = 0
        for i in 0..<sessions.highWater where mappings[row].protocolNumber != 0 {
            let session = sessions[Int32(i)]
            if session.mapping == row, session.expires <= now.nanoseconds {
                removeSession(Int32(i), reason: .expired)
                removed += 1
            }
        }
        counters[.sessionsExpired] &+= removed
        return mappings[row].protocolNumber == 0
    }
}

// MARK: - Helpers

extension NATTranslator {
    /// The helper list after a reconfiguration: every helper keeps its index (live connections
    /// and counters refer to it), a dropped one stays with no ports, a new one is added.
    func mergedHelpers(_ wanted: [HelperRegistration]) throws(ReconfigureError) -> (helpers: [HelperRegistration], changed: Bool) {
        var merged = configuration.helpers
        var matched = [Bool](repeating: false, count: merged.count)
        var changed = false
        for registration in wanted {
            if let i = merged.indices.first(where: { !matched[$0] && merged[$0].helper.name == registration.helper.name }) {
                matched[i] = true
                if merged[i].ports != registration.ports {
                    merged[i].ports = registration.ports
                    changed = true
                }
            } else {
                merged.append(registration)
                matched.append(true)
                changed = true
            }
        }
        for i in matched.indices where !matched[i] && !merged[i].ports.isEmpty {
            merged[i].ports = []
            changed = true
        }
        guard merged.count <= Int(UInt8.max) + 1 else { throw .tooManyHelpers }
        return (merged, changed)
    }
}
