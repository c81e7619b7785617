// NAT events: one fixed-size record per mapping, session, address-only row, redirected
// connection or port block created or removed, the full tuple and the time as passed in. The
// one event mechanism of the core: the audit log and IPFIX export, the HA increments and the
// kernel fast path (Masqd) drain the same records (new kinds go at the end of NATEventKind,
// new reasons in their group).

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
    /// An address-only row (AddressOnlyTable.swift: ESP, AH, GRE without keys, SCTP, UDP-Lite,
    /// DCCP, any protocol without ports) made or removed: mapping and session in one. The IP
    /// protocol, the internal host, the WAN address it leaves from as external, the remote; every port 0.
    case addressOnlyCreated = 8
    case addressOnlyRemoved = 9
    /// A transparently redirected TCP connection (RedirectTable.swift, `--redirect`) made or
    /// removed: protocol 6, the LAN client's endpoint as internal, the original destination as
    /// remote, and the router's local address and LOCALPORT it was delivered to as external.
    case redirectCreated = 10
    case redirectRemoved = 11
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
        case .addressOnlyCreated: "address-only-created"
        case .addressOnlyRemoved: "address-only-removed"
        case .redirectCreated: "redirect-created"
        case .redirectRemoved: "redirect-removed"
        case .helperStateChanged: "helper-state-changed"
        }
    }

    public var isCreation: Bool {
        self == .mappingCreated || self == .sessionCreated || self == .portBlockAllocated || self == .addressOnlyCreated
            || self == .redirectCreated
    }
    public var isPortBlock: Bool { self == .portBlockAllocated || self == .portBlockReleased }
    /// Plain sessions (a mapping with a remote endpoint), not address-only rows or redirects.
    public var isSession: Bool { self == .sessionCreated || self == .sessionRemoved || self == .sessionEstablished }
    /// The event names a remote endpoint: sessions, address-only rows and redirects.
    public var hasRemote: Bool { isSession || self == .addressOnlyCreated || self == .addressOnlyRemoved || isRedirect }
    public var isAddressOnly: Bool { self == .addressOnlyCreated || self == .addressOnlyRemoved }
    public var isRedirect: Bool { self == .redirectCreated || self == .redirectRemoved }
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
    /// The router became the HA standby: its flows are the peer's to translate now.
    case standby = 23

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
        case .standby: "standby"
        }
    }
}

/// One event, 32 bytes, no references: copied out of the ring as plain memory.
/// Addresses are host-order integers (as `IPv4Address.value`); a mapping event has no remote
/// (0.0.0.0, port 0). ICMP echo: the ports are the echo identifiers. A port block event has
/// the host as internal address (port 0), the block's first port as `externalPort` and its
/// last as `remotePort` (`blockPorts`), protocol 0. An address-only event has all three
/// addresses and no port (all 0). A redirect event's external endpoint is the router's own
/// (where the proxy got the connection), its remote the destination the client dialled.
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
