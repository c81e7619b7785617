// NAT events: one fixed-size record per mapping or session created or removed, the full
// tuple and the time as passed in. The one event mechanism of the core: the audit log and
// IPFIX export (Masqd) drain it today; state sync and a kernel fast path can drain the same
// records later (new kinds go at the end of NATEventKind, new reasons in their group).

/// What happened. Raw values are stable (they leave the process in logs and exports).
public enum NATEventKind: UInt8, Sendable, BitwiseCopyable, CustomStringConvertible {
    /// An internal endpoint got an external port (RFC 4787's mapping; RFC 8158's BIB entry).
    case mappingCreated = 1
    case mappingRemoved = 2
    /// A mapping met a remote endpoint: one translated flow (RFC 8158's session).
    case sessionCreated = 3
    case sessionRemoved = 4
    /// A plain session (no helper) became two-way: TCP reached ESTABLISHED, or UDP was seen
    /// both ways. Only with `recordsEstablishedSessions` (the kernel fast path's cue to
    /// offload it); audit consumers skip it.
    case sessionEstablished = 5
    /// Port blocks (PortBlocks.swift): a host got a block, or gave it back with its last
    /// mapping. `externalPort`...`remotePort` are the block's first and last ports; no protocol.
    case portBlockAllocated = 6
    case portBlockReleased = 7
    /// A helper connection's stream state changed (an edit logged, held bytes, the helper's
    /// own state: NATTranslator-HelperStream.swift): the session's tuple; the state itself is
    /// read from the translator (`helperState`). Only with `recordsHelperStateChanges` (the
    /// HA increments'); audit consumers skip it.
    case helperStateChanged = 12

    public var description: String {
        switch self {
        case .mappingCreated: "mapping-created"
        case .mappingRemoved: "mapping-removed"
        case .sessionCreated: "session-created"
        case .sessionRemoved: "session-removed"
        case .sessionEstablished: "session-established"
        case .portBlockAllocated: "port-block-allocated"
        case .portBlockReleased: "port-block-released"
        case .helperStateChanged: "helper-state-changed"
        }
    }

    public var isCreation: Bool { self == .mappingCreated || self == .sessionCreated || self == .portBlockAllocated }
    public var isPortBlock: Bool { self == .portBlockAllocated || self == .portBlockReleased }
    public var isSession: Bool { self == .sessionCreated || self == .sessionRemoved || self == .sessionEstablished }
}

/// Why it happened: what made a mapping or session (1-15) or ended it (16 on).
public enum NATEventReason: UInt8, Sendable, BitwiseCopyable, CustomStringConvertible {
    /// A packet from inside (a mapping, or a session with a new remote endpoint).
    case outbound = 1
    /// A packet from outside: a port forward, endpoint-independent filtering, an expected connection.
    case inbound = 2
    /// An application helper's expected connection (FTP data, SIP media) was given a port.
    case expectation = 3
    /// A port forward's static mapping, installed at start, on reload or with a new WAN address.
    case portForward = 4
    /// Restored from the state file at start.
    case restored = 5

    /// Idle longer than its timeout (UDP, ICMP, TCP still open).
    case expired = 16
    /// TCP, idle past its timeout after a FIN (either side's).
    case tcpClosed = 17
    /// TCP, idle past its timeout after a RST.
    case tcpReset = 18
    /// The router's own socket took the external port (NATTranslator-LocalPorts.swift).
    case evicted = 19
    /// The WAN address changed: every translation made with the old one is flushed.
    case addressChanged = 20
    /// A reload removed or changed the port forward it belonged to.
    case reload = 21
    /// Made for a packet that was then refused (a cap on sessions, a helper's room): never used.
    case refused = 22

    public var description: String {
        switch self {
        case .outbound: "outbound"
        case .inbound: "inbound"
        case .expectation: "expectation"
        case .portForward: "forward"
        case .restored: "restored"
        case .expired: "expired"
        case .tcpClosed: "tcp-closed"
        case .tcpReset: "tcp-reset"
        case .evicted: "evicted"
        case .addressChanged: "address-changed"
        case .reload: "reload"
        case .refused: "refused"
        }
    }
}

/// One event, 32 bytes, no references: copied out of the ring as plain memory.
/// Addresses are host-order integers (as `IPv4Address.value`); a mapping event has no remote
/// (0.0.0.0, port 0). ICMP echo: the ports are the echo identifiers. A port block event has
/// the host as internal address (port 0), the block's first port as `externalPort` and its
/// last as `remotePort` (`blockPorts`), protocol 0.
public struct NATEvent: Sendable, BitwiseCopyable, Equatable {
    /// `now` of the call that made the event (the daemon's monotonic clock).
    public var timeNanoseconds: UInt64
    public var internalAddress: UInt32
    public var externalAddress: UInt32
    public var remoteAddress: UInt32
    public var internalPort: UInt16
    public var externalPort: UInt16
    public var remotePort: UInt16
    public var kind: NATEventKind
    public var reason: NATEventReason
    public var protocolNumber: UInt8

    public init(timeNanoseconds: UInt64, kind: NATEventKind, reason: NATEventReason, protocolNumber: UInt8,
                internalAddress: UInt32, internalPort: UInt16, externalAddress: UInt32, externalPort: UInt16,
                remoteAddress: UInt32 = 0, remotePort: UInt16 = 0) {
        self.timeNanoseconds = timeNanoseconds
        self.internalAddress = internalAddress
        self.externalAddress = externalAddress
        self.remoteAddress = remoteAddress
        self.internalPort = internalPort
        self.externalPort = externalPort
        self.remotePort = remotePort
        self.kind = kind
        self.reason = reason
        self.protocolNumber = protocolNumber
    }
}

extension NATEvent {
    /// A port block event's ports (first...last).
    public var blockPorts: ClosedRange<UInt16> { externalPort...max(externalPort, remotePort) }
}
