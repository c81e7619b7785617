// Everything the translator needs to know about its deployment. Built by the daemon from
// options; the core never looks anything up itself.

public struct NATConfiguration: Sendable {
    /// The address internal endpoints are masqueraded behind; nil while the WAN has none
    /// (outbound packets are then dropped and counted).
    public var externalAddress: IPv4Address?
    /// Sources that are translated. Empty: every source but the external address.
    public var internalPrefixes: [IPv4Prefix] = []
    public var ports = PortAllocator()
    /// Port block allocation (PortBlocks.swift); nil: off, each mapping takes any free port.
    public var portBlocks: PortBlockSettings? = nil
    /// Caps on live sessions (mapping × remote endpoint) and mappings (internal endpoints).
    public var maxSessions: Int = 262_144
    public var maxMappings: Int = 262_144
    /// Cap on the sessions of one internal address, so one host cannot fill the table.
    public var maxSessionsPerHost: Int = 32_768
    /// Cap on address-only translations, one per (protocol, remote address), of the
    /// protocols without ports (ESP, GRE, SCTP...).
    public var maxAddressOnlyFlows: Int = 16_384
    public var timeouts = NATTimeouts()
    /// Port forwards (DNAT) from the external address, installed as static mappings.
    public var forwards: [PortForward] = []
    public var filtering: NATFiltering = .addressAndPortDependent
    /// Application helpers and the TCP ports they are attached to.
    public var helpers: [HelperRegistration] = []
    public var helperLimits = HelperLimits()
    /// Secret seed for the flow hashes and port choice; the daemon draws it at random.
    public var hashSeed: UInt64 = 0x6d61_7371_6400_0001
    /// How fast one internal host may open new flows (NewFlowRate.swift); nil: no limit.
    public var newFlowsPerHost: NewFlowRate? = nil
    /// Source address pools (`--to-source`, per-prefix pools; SourceAddressPools.swift).
    public var sourcePools = SourceAddressPools()
    /// Transparent redirects (TransparentRedirect.swift) and the cap on their live connections.
    public var redirects: [TransparentRedirect] = []
    public var maxRedirectSessions: Int = 16_384
    public var maxRedirectSessionsPerHost: Int = 256

    public init(externalAddress: IPv4Address? = nil, internalPrefixes: [IPv4Prefix] = []) {
        self.externalAddress = externalAddress
        self.internalPrefixes = internalPrefixes
    }
}

/// Which inbound packets a mapping accepts (RFC 4787 section 5).
public enum NATFiltering: String, Sendable, CaseIterable {
    /// Only from remote endpoints the internal endpoint has sent to (the default; REQ-8 recommends it for security).
    case addressAndPortDependent = "address-and-port-dependent"
    /// From any remote endpoint once the mapping exists ("full cone"; for games and peer-to-peer).
    case endpointIndependent = "endpoint-independent"
}

/// Which way a packet crosses the NAT, from the hook it was queued at.
public enum PacketDirection: Sendable {
    /// From the internal network towards the WAN, queued after routing (mangle POSTROUTING).
    case outbound
    /// From the WAN, queued before routing (raw PREROUTING), so a rewritten destination is routed.
    case inbound
    /// From the internal side to one of the router's own addresses, queued before routing:
    /// hairpinned when it is the external address and a mapped or forwarded port.
    case hairpin
}

/// Why a configuration cannot be used; the daemon turns these into one-line messages.
public enum NATConfigurationError: Error, Equatable, Sendable {
    case forwardTargetsSameEndpoint(PortForward, PortForward)
    case forwardsExceedMappings
}

/// What the kernel told us about the packet's checksum state (KERNEL-FACTS fact 3).
public struct PacketChecksumState: Sendable {
    /// NFQA_SKB_CSUMNOTREADY: the L4 checksum field holds only the pseudo-header sum.
    public var checksumNotReady: Bool
    /// NFQA_SKB_GSO: a TCP super-packet that the kernel segments (and checksums) itself on output.
    public var isGSO: Bool

    @inlinable
    public init(checksumNotReady: Bool = false, isGSO: Bool = false) {
        self.checksumNotReady = checksumNotReady
        self.isGSO = isGSO
    }
}

public enum TranslationVerdict: Equatable {
    /// Pass the packet on unchanged (no payload in the verdict).
    case accept
    /// Pass the packet on with its rewritten bytes.
    case acceptRewritten
    /// Pass these bytes on instead of the packet (a helper changed its length). They belong
    /// to the translator and stay valid until its next call.
    case acceptReplaced(UnsafeMutableRawBufferPointer)
    case drop(DropReason)

    public static func == (lhs: TranslationVerdict, rhs: TranslationVerdict) -> Bool {
        switch (lhs, rhs) {
        case (.accept, .accept), (.acceptRewritten, .acceptRewritten): true
        case (.acceptReplaced(let a), .acceptReplaced(let b)): a.baseAddress == b.baseAddress && a.count == b.count
        case (.drop(let a), .drop(let b)): a == b
        default: false
        }
    }
}
