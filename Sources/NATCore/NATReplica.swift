// An HA standby's copy of its peer's translation state (issue #18): the latest full resync
// (a state snapshot) with the peer's increments applied on top — its NAT events, mappings
// and sessions created, established and removed — keyed by tuple so each applies at once.
// At takeover it becomes a snapshot again and is restored as a state file is, so every
// mapping keeps its external address and port.
//
// Lifetimes are deadlines on the peer's wall clock (the resync's save time plus what was
// left; an increment's batch time plus the timeout of the session's state). The events do
// not say when a session last saw a packet, so a deadline can pass on a flow still in use;
// such a flow is still live on the peer (its removal would have come as an event), so the
// snapshot gives it at least `minimumRemaining`. Address-only rows and redirected connections
// are kept from their events as sessions are (a redirect as just opened: its events do not
// carry its TCP state). A helper connection's state comes with the resync and as its own
// increment when it changes (`applyHelperState`); its streams resume at the next segment after
// a takeover (HelperRecord.resumed).

public struct NATReplica: Sendable {
    struct MappingKey: Hashable, Sendable {
        var protocolNumber: UInt8
        var internalEndpoint: IPv4Endpoint
    }

    /// A session by its flow (protocol, internal and remote endpoints).
    typealias SessionKey = NATFlow

    /// The mapping and session an event names (protocol, internal and remote endpoints).
    static func keys(_ event: NATEvent) -> (mapping: MappingKey, session: SessionKey) {
        (MappingKey(protocolNumber: event.protocolNumber, internalEndpoint: event.internalEndpoint), event.flow)
    }

    struct MappingEntry: Sendable {
        var externalPort: UInt16
        var externalIndex: UInt8
        var isStatic: Bool
    }

    struct AddressOnlyKey: Hashable, Sendable {
        var protocolNumber: UInt8
        var remoteAddress: UInt32
    }

    struct AddressOnlyEntry: Sendable {
        var internalAddress: UInt32
        /// Peer wall clock, ns since 1970.
        var expires: UInt64
    }

    struct RedirectKey: Hashable, Sendable {
        var client: IPv4Endpoint
        var localPort: UInt16
    }

    struct RedirectEntry: Sendable {
        var original: IPv4Endpoint
        var localAddress: IPv4Address
        var tcpState: TCPSessionState
        var tcpFlagsSeen: UInt8
        /// Peer wall clock, ns since 1970.
        var expires: UInt64
    }

    struct SessionEntry: Sendable {
        var tcpState: TCPSessionState
        var tcpFlagsSeen: UInt8
        /// Peer wall clock, ns since 1970.
        var expires: UInt64
        /// The helper connection's state (from the resync or a later increment), or nil.
        var helper: NATStateSnapshot.HelperRecord?
    }

    /// The resync: its header fields.
    private var base: NATStateSnapshot
    private var mappings: [MappingKey: MappingEntry] = [:]
    private var sessions: [SessionKey: SessionEntry] = [:]
    private var addressOnly: [AddressOnlyKey: AddressOnlyEntry] = [:]
    private var redirects: [RedirectKey: RedirectEntry] = [:]
    /// The peer's wall clock at the resync's save or the latest increment.
    public private(set) var updatedAt: UInt64

    public var sessionCount: Int { sessions.count }
    public var mappingCount: Int { mappings.count }
    public var addressOnlyFlowCount: Int { addressOnly.count }
    public var redirectCount: Int { redirects.count }

    public init(_ snapshot: NATStateSnapshot) {
        base = snapshot
        updatedAt = snapshot.savedAt
        mappings.reserveCapacity(snapshot.mappings.count)
        sessions.reserveCapacity(snapshot.sessions.count)
        var keys: [MappingKey] = []
        keys.reserveCapacity(snapshot.mappings.count)
        for m in snapshot.mappings {
            let key = MappingKey(protocolNumber: m.protocolNumber, internalEndpoint: m.internalEndpoint)
            keys.append(key)
            mappings[key] = MappingEntry(externalPort: m.externalPort, externalIndex: m.externalIndex, isStatic: m.isStatic)
        }
        for s in snapshot.sessions where s.mapping >= 0 && s.mapping < keys.count {
            sessions[SessionKey(protocolNumber: keys[s.mapping].protocolNumber, internalEndpoint: keys[s.mapping].internalEndpoint,
                                remoteEndpoint: s.remoteEndpoint)] =
                SessionEntry(tcpState: s.lifetime.tcpState, tcpFlagsSeen: s.lifetime.tcpFlagsSeen,
                             expires: snapshot.savedAt &+ s.lifetime.remaining.nanoseconds,
                             helper: s.helper.flatMap { $0 >= 0 && $0 < snapshot.helperConnections.count ? snapshot.helperConnections[$0] : nil })
        }
        for f in snapshot.addressOnlyFlows {
            addressOnly[AddressOnlyKey(protocolNumber: f.protocolNumber, remoteAddress: f.remoteAddress)] =
                AddressOnlyEntry(internalAddress: f.internalAddress, expires: snapshot.savedAt &+ f.remaining.nanoseconds)
        }
        for r in snapshot.redirects {
            redirects[RedirectKey(client: r.client, localPort: r.local.port)] =
                RedirectEntry(original: r.original, localAddress: r.local.address,
                              tcpState: r.lifetime.tcpState, tcpFlagsSeen: r.lifetime.tcpFlagsSeen,
                              expires: snapshot.savedAt &+ r.lifetime.remaining.nanoseconds)
        }
        base.mappings = []
        base.sessions = []
        base.addressOnlyFlows = []
        base.redirects = []
        base.helperConnections = []
    }

    /// Applies one of the peer's events, made at `wallClock` (its clock). `configuration`:
    /// this router's (the same timeouts and pools as the peer's). Returns false when it
    /// changed nothing (a removal of what is not here, an event of another kind).
    @discardableResult
    public mutating func apply(_ event: NATEvent, wallClock: UInt64, configuration: NATConfiguration) -> Bool {
        updatedAt = max(updatedAt, wallClock)
        let (mappingKey, sessionKey) = Self.keys(event)
        switch event.kind {
        case .mappingCreated:
            mappings[mappingKey] = MappingEntry(externalPort: event.externalPort, externalIndex: externalIndex(event, configuration),
                                                isStatic: event.reason == .portForward)
            return true
        case .mappingRemoved:
            return mappings.removeValue(forKey: mappingKey) != nil
        case .sessionCreated:
            if mappings[mappingKey] == nil { // its mapping's event was lost to us: the session carries it
                mappings[mappingKey] = MappingEntry(externalPort: event.externalPort, externalIndex: externalIndex(event, configuration), isStatic: false)
            }
            let state: TCPSessionState = event.protocolNumber == IPProtocolNumber.tcp ? .opening : .none
            let flags = event.reason == .inbound || event.reason == .expectation ? TCPSessionState.openedInbound : 0
            let timeout = configuration.timeouts.timeout(protocolNumber: event.protocolNumber, tcpState: state)
            let helper = sessions[sessionKey]?.helper
            sessions[sessionKey] = SessionEntry(tcpState: state, tcpFlagsSeen: flags, expires: wallClock &+ timeout.nanoseconds, helper: helper)
            return true
        case .sessionEstablished:
            guard var session = sessions[sessionKey] else { return false }
            if event.protocolNumber == IPProtocolNumber.tcp { session.tcpState = .established }
            let timeout = configuration.timeouts.timeout(protocolNumber: event.protocolNumber, tcpState: session.tcpState)
            session.expires = max(session.expires, wallClock &+ timeout.nanoseconds)
            sessions[sessionKey] = session
            return true
        case .sessionRemoved:
            return sessions.removeValue(forKey: sessionKey) != nil
        case .portBlockAllocated, .portBlockReleased:
            // Not replicated: at takeover the restore rebuilds each host's blocks from the
            // mappings it holds, as it does from a state file.
            return false
        case .addressOnlyCreated:
            noteWANAddress(event)
            addressOnly[AddressOnlyKey(protocolNumber: event.protocolNumber, remoteAddress: event.remoteAddress)] =
                AddressOnlyEntry(internalAddress: event.internalAddress, expires: wallClock &+ configuration.timeouts.other.nanoseconds)
            return true
        case .addressOnlyRemoved:
            let key = AddressOnlyKey(protocolNumber: event.protocolNumber, remoteAddress: event.remoteAddress)
            guard addressOnly[key]?.internalAddress == event.internalAddress else { return false }
            addressOnly[key] = nil
            return true
        case .redirectCreated:
            let timeout = configuration.timeouts.timeout(protocolNumber: IPProtocolNumber.tcp, tcpState: .opening)
            redirects[RedirectKey(client: event.internalEndpoint, localPort: event.externalPort)] =
                RedirectEntry(original: event.remoteEndpoint, localAddress: IPv4Address(event.externalAddress),
                              tcpState: .opening, tcpFlagsSeen: 0, expires: wallClock &+ timeout.nanoseconds)
            return true
        case .redirectRemoved:
            let key = RedirectKey(client: event.internalEndpoint, localPort: event.externalPort)
            return redirects.removeValue(forKey: key) != nil
        case .helperStateChanged:
            return false // comes with its state: applyHelperState
        }
    }

    /// An address-only event's external address is the peer's WAN address.
    private mutating func noteWANAddress(_ event: NATEvent) {
        if event.externalAddress != 0 { base.externalAddress = IPv4Address(event.externalAddress) }
    }

    /// The peer's helper connection state (`NATTranslator.helperState`) for the session `event`
    /// names (protocol, internal and remote endpoints). False when it does not decode or the
    /// session is not here.
    @discardableResult
    public mutating func applyHelperState(_ event: NATEvent, state: [UInt8], wallClock: UInt64) -> Bool {
        updatedAt = max(updatedAt, wallClock)
        let key = Self.keys(event).session
        guard sessions[key] != nil, let record = NATStateSnapshot.HelperRecord(syncEncoded: state) else { return false }
        sessions[key]!.helper = record
        return true
    }

    /// The event's external address as an index: 0 the WAN address, i the i-th pool address.
    private mutating func externalIndex(_ event: NATEvent, _ configuration: NATConfiguration) -> UInt8 {
        if let i = configuration.sourcePools.addresses.firstIndex(where: { $0.value == event.externalAddress }), i < 255 {
            return UInt8(i + 1)
        }
        // The WAN address: the peer's (a changed one flushed everything made with the old one).
        noteWANAddress(event)
        return 0
    }

    /// The copy as a snapshot saved at `savedAt` (the peer's clock: `updatedAt`, or this
    /// router's now), each session with at least `minimumRemaining` left.
    public func snapshot(savedAt: UInt64, minimumRemaining: NATDuration) -> NATStateSnapshot {
        var snapshot = base
        snapshot.savedAt = savedAt
        let longest = snapshot.longestTimeout
        func remaining(_ expires: UInt64) -> NATDuration {
            min(max(NATDuration(nanoseconds: expires > savedAt ? expires - savedAt : 0), minimumRemaining), longest)
        }
        snapshot.helperConnections = [] // only those of sessions still here, renumbered
        var mappingIndex: [MappingKey: Int] = [:]
        snapshot.sessions.reserveCapacity(sessions.count)
        for (key, session) in sessions {
            let mappingKey = MappingKey(protocolNumber: key.protocolNumber, internalEndpoint: key.internalEndpoint)
            guard let mapping = mappings[mappingKey] else { continue } // removed: its sessions went first
            let index: Int
            if let known = mappingIndex[mappingKey] {
                index = known
            } else {
                index = snapshot.mappings.count
                mappingIndex[mappingKey] = index
                snapshot.mappings.append(.init(protocolNumber: key.protocolNumber, internalEndpoint: key.internalEndpoint,
                                               externalPort: mapping.externalPort, isStatic: mapping.isStatic, externalIndex: mapping.externalIndex))
            }
            snapshot.sessions.append(.init(mapping: index, remoteEndpoint: key.remoteEndpoint,
                                           lifetime: .init(tcpState: session.tcpState, tcpFlagsSeen: session.tcpFlagsSeen,
                                                           remaining: remaining(session.expires)),
                                           helper: session.helper.map { _ in snapshot.helperConnections.count }))
            if let helper = session.helper { snapshot.helperConnections.append(helper.resumed) }
        }
        snapshot.addressOnlyFlows = addressOnly.map { key, flow in
            .init(protocolNumber: key.protocolNumber, internalAddress: flow.internalAddress, remoteAddress: key.remoteAddress,
                  remaining: remaining(flow.expires))
        }
        snapshot.redirects = redirects.map { key, r in
            .init(client: key.client, original: r.original, local: IPv4Endpoint(address: r.localAddress, port: key.localPort),
                  lifetime: .init(tcpState: r.tcpState, tcpFlagsSeen: r.tcpFlagsSeen, remaining: remaining(r.expires)))
        }
        return snapshot
    }
}
