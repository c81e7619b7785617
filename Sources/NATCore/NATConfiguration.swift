// Everything the translator needs to know about its deployment. Built by the daemon from
// options; the core never looks anything up itself.

public struct NATConfiguration: Sendable {
    /// The address internal endpoints are masqueraded behind; nil while the WAN has none
    /// (outbound packets are then dropped and counted).
    public var externalAddress: IPv4Address?
    /// Sources that are translated. Empty: every source but the external address.
    public var internalPrefixes: [IPv4Prefix] = []
    public var ports = PortAllocator()
    /// Caps on live sessions (mapping × remote endpoint) and mappings (internal endpoints).
    public var maxSessions: Int = 262_144
    public var maxMappings: Int = 262_144
    public var timeouts = NATTimeouts()
    /// Secret seed for the flow hashes and port choice; the daemon draws it at random.
    public var hashSeed: UInt64 = 0x6d61_7371_6400_0001

    public init(externalAddress: IPv4Address? = nil, internalPrefixes: [IPv4Prefix] = []) {
        self.externalAddress = externalAddress
        self.internalPrefixes = internalPrefixes
    }
}

/// Which way a packet crosses the NAT, from the hook it was queued at.
public enum PacketDirection: Sendable {
    /// From the internal network towards the WAN, queued after routing (mangle POSTROUTING).
    case outbound
    /// From the WAN, queued before routing (raw PREROUTING), so a rewritten destination is routed.
    case inbound
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

public enum TranslationVerdict: Equatable, Sendable {
    /// Pass the packet on unchanged (no payload in the verdict).
    case accept
    /// Pass the packet on with its rewritten bytes.
    case acceptRewritten
    case drop(DropReason)
}
