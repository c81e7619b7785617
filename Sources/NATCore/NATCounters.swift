import CounterSet

// What the translator did, packet by packet: every outcome and every drop reason has a
// counter, so `masqd stats` explains every packet.

/// Why a packet was dropped. Outbound packets that cannot be translated are always dropped,
/// never passed: an untranslated packet on the WAN leaks an internal address.
public enum DropReason: Int, CounterName, CustomStringConvertible {
    case malformedIPv4
    case malformedTransport
    case fragmentUnsupported
    /// No longer produced since every protocol without ports gets address-only NAT
    /// (NATTranslator-AddressOnly.swift); kept so `drop_protocol_unsupported` stays a name.
    case protocolUnsupported
    case icmpUnsupported
    case zeroPort
    case noExternalAddress
    case portsExhausted
    case mappingTableFull
    case sessionTableFull
    case hostSessionLimit
    case inboundToInternalAddress
    /// No room for one more connection with an application helper.
    case helperTableFull
    /// A helper connection's segment arrived ahead of a gap: dropped so the sender resends in order.
    case helperOutOfOrder
    /// A retransmission cuts through a rewritten range and cannot be rewritten identically.
    case helperRetransmissionMismatch
    /// From the WAN side with a source that can only be ours: the external address, or an
    /// address in the internal prefixes (see NATTranslator-Spoofing.swift).
    case spoofedSource
    /// From the WAN side with a source no host can have: 0.0.0.0/8, 127.0.0.0/8, multicast,
    /// 255.255.255.255.
    case martianSource
    /// The internal host already has its share of connections with an application helper
    /// (`HelperLimits.connectionsPerHost`).
    case hostHelperLimit
    /// A new flow beyond the internal host's new-flow rate (`NATConfiguration.newFlowsPerHost`).
    case hostNewFlowRate
    /// The source pool address an internal host is paired with has no free port (no spill-over).
    case poolAddressPortsExhausted
    /// A protocol without ports to a remote another internal host holds an address-only
    /// translation with: the remote's answers could not be told apart.
    case addressOnlyRemoteInUse
    /// No room for one more address-only translation (`maxAddressOnlyFlows`).
    case addressOnlyTableFull
    /// Transparent redirect: no room for one more redirected connection.
    case redirectTableFull
    /// Transparent redirect: the client endpoint already has a live redirected connection to
    /// another destination (both would be one socket pair at the proxy).
    case redirectClash
    /// Transparent redirect: the router has no known address on the interface the packet came in on.
    case redirectNoLocalAddress
    /// Transparent redirect: the client address already has its share of redirected connections.
    case redirectHostLimit
    /// Port blocks: the host's blocks are full and it holds its cap of them (`PortBlockSettings.maxPerHost`).
    case hostPortBlockLimit

    public var description: String {
        switch self {
        case .malformedIPv4: "malformed_ipv4"
        case .malformedTransport: "malformed_transport"
        case .fragmentUnsupported: "fragment_unsupported"
        case .protocolUnsupported: "protocol_unsupported"
        case .icmpUnsupported: "icmp_unsupported"
        case .zeroPort: "zero_port"
        case .noExternalAddress: "no_external_address"
        case .portsExhausted: "ports_exhausted"
        case .mappingTableFull: "mapping_table_full"
        case .sessionTableFull: "session_table_full"
        case .hostSessionLimit: "host_session_limit"
        case .inboundToInternalAddress: "inbound_to_internal_address"
        case .helperTableFull: "helper_table_full"
        case .helperOutOfOrder: "helper_out_of_order"
        case .helperRetransmissionMismatch: "helper_retransmission_mismatch"
        case .spoofedSource: "spoofed_source"
        case .martianSource: "martian_source"
        case .hostHelperLimit: "host_helper_limit"
        case .hostNewFlowRate: "host_new_flow_rate"
        case .poolAddressPortsExhausted: "pool_address_ports_exhausted"
        case .addressOnlyRemoteInUse: "address_only_remote_in_use"
        case .addressOnlyTableFull: "address_only_table_full"
        case .redirectTableFull: "redirect_table_full"
        case .redirectClash: "redirect_clash"
        case .redirectNoLocalAddress: "redirect_no_local_address"
        case .redirectHostLimit: "redirect_host_limit"
        case .hostPortBlockLimit: "host_port_block_limit"
        }
    }
}

/// The translator's counters other than drops (`DropReason`) and helper events (`HelperEvent`).
public enum NATCounter: Int, CounterName {
    case outboundTranslated
    case inboundTranslated
    /// Inbound packets that match no session: handed to the router's own stack unchanged.
    case inboundUnmatched
    /// Inbound packets not addressed to the external address (passed unchanged).
    case inboundNotForUs
    /// Outbound packets from outside the internal prefixes (passed unchanged).
    case outboundNotInternal
    case mappingsCreated
    case sessionsCreated
    case sessionsExpired
    case externalAddressChanges
    /// ICMP errors whose embedded packet was translated, per direction.
    case icmpErrorsOutbound
    case icmpErrorsInbound
    /// Packets from inside to the external address translated back inside, and ones passed
    /// to the router's stack (its own services, or a filter that did not admit them).
    case hairpinTranslated
    case hairpinPassed
    /// Sessions opened from outside: through a forward or endpoint-independent filtering.
    case sessionsOpenedInbound
    case sessionsFlushed
    /// TCP packets from the remote endpoint that did not touch their session (state, timer):
    /// an RST or FIN outside the internal host's window, an RST inside it but not at the
    /// expected sequence number (left to the host's challenge ACK), and a SYN, FIN or RST
    /// whose final checksum is wrong (either side). All are still forwarded.
    case ignoredRSTOutOfWindow
    case ignoredFINOutOfWindow
    case ignoredRSTInWindow
    case ignoredBadChecksum
    /// Expected connections that arrived, and that timed out unused.
    case expectationsFulfilled
    case expectationsExpired
    /// Parts of a line held back until the rest arrived, and held bytes released unfinished.
    case helperLinesHeld
    case helperHeldReleased
    /// Inbound (and hairpinned) packets to a port the router's own sockets hold (or a reserved
    /// one a dynamic mapping still had), with no port forward on it: passed to the router's
    /// stack untranslated.
    case inboundLocalPort
    /// New mappings that could not keep their internal port because the router holds or
    /// reserves it: another port was chosen.
    case localPortSkips
    /// Dynamic mappings removed (with their sessions) because a router socket took their port.
    case mappingsEvictedLocalPort
    /// Helper expectations refused because the internal host already has its share pending.
    case expectationsRefusedHostShare
    /// NAT events stored for the daemon, and ones lost because its ring was full (NATEventRing.swift).
    case natEventsRecorded
    case natEventsLost
    /// Address-only translations (protocols without ports) made, and ended by their timeout.
    case addressOnlyFlowsCreated
    case addressOnlyFlowsExpired
    /// Transparent redirect: client packets sent to the local proxy, proxy replies sent back
    /// as from the original destination, router packets from a redirect's local port that
    /// belong to no redirected connection (passed unchanged), connections made and expired.
    case redirectedToProxy
    case redirectedFromProxy
    case redirectRepliesUnmatched
    case redirectSessionsCreated
    case redirectSessionsExpired
    /// A new flow found the session or mapping table full: reclaim steps run (each examines
    /// at most `NATTranslator.reclaimBudget` session rows) and ones skipped because the last
    /// step within `reclaimQuietInterval` found nothing (NATTranslator-Reclaim.swift).
    case reclaimSteps
    case reclaimStepsSkipped
    /// Port blocks (PortBlocks.swift) given to hosts (restored ones included) and given back;
    /// restored mappings left out because another host already had their block (a changed block
    /// size) or their port is in no block (a state saved without port blocks).
    case portBlocksAllocated
    case portBlocksReleased
    case portBlockRestoreConflicts
}

/// Read as `counters[.outboundTranslated]`, `counters.drops(.zeroPort)`.
public struct NATCounters: Sendable {
    public var events = CounterSet<NATCounter>()
    public internal(set) var drops = CounterSet<DropReason>()
    /// Helper events, per registered helper (index as in `NATConfiguration.helpers`).
    public internal(set) var helperEvents: [CounterSet<HelperEvent>] = []

    public init() {}

    @inline(__always)
    public subscript(counter: NATCounter) -> UInt64 {
        get { events[counter] }
        set { events[counter] = newValue }
    }

    @inline(__always)
    mutating func countDrop(_ reason: DropReason) { drops.count(reason) }

    public func drops(_ reason: DropReason) -> UInt64 { drops[reason] }

    public func helperEvents(helper index: Int, _ event: HelperEvent) -> UInt64 {
        index < helperEvents.count ? helperEvents[index][event] : 0
    }

    public var totalDrops: UInt64 { drops.total }
}
