// What the translator did, packet by packet: every outcome and every drop reason has a
// counter, so `masqd stats` explains every packet.

/// Why a packet was dropped. Outbound packets that cannot be translated are always dropped,
/// never passed: an untranslated packet on the WAN leaks an internal address.
public enum DropReason: Int, CaseIterable, Sendable, CustomStringConvertible {
    case malformedIPv4
    case malformedTransport
    case fragmentUnsupported
    case protocolUnsupported
    case icmpUnsupported
    case zeroPort
    case noExternalAddress
    case portsExhausted
    case mappingTableFull
    case sessionTableFull
    case hostSessionLimit
    case inboundToInternalAddress

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
        }
    }
}

public struct NATCounters: Sendable {
    public var outboundTranslated: UInt64 = 0
    public var inboundTranslated: UInt64 = 0
    /// Inbound packets that match no session: handed to the router's own stack unchanged.
    public var inboundUnmatched: UInt64 = 0
    /// Inbound packets not addressed to the external address (passed unchanged).
    public var inboundNotForUs: UInt64 = 0
    /// Outbound packets from outside the internal prefixes (passed unchanged).
    public var outboundNotInternal: UInt64 = 0
    public var mappingsCreated: UInt64 = 0
    public var sessionsCreated: UInt64 = 0
    public var sessionsExpired: UInt64 = 0
    public var externalAddressChanges: UInt64 = 0
    /// ICMP errors whose embedded packet was translated, per direction.
    public var icmpErrorsOutbound: UInt64 = 0
    public var icmpErrorsInbound: UInt64 = 0
    /// Sessions opened from outside: through a forward or endpoint-independent filtering.
    public var sessionsOpenedInbound: UInt64 = 0
    public var sessionsFlushed: UInt64 = 0
    public private(set) var drops = [UInt64](repeating: 0, count: DropReason.allCases.count)

    public init() {}

    @inline(__always)
    mutating func countDrop(_ reason: DropReason) { drops[reason.rawValue] &+= 1 }

    public func drops(_ reason: DropReason) -> UInt64 { drops[reason.rawValue] }

    public var totalDrops: UInt64 { drops.reduce(0, &+) }
}
