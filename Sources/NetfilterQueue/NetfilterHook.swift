/// The netfilter hook a packet was queued from (`NF_INET_*`), typed so callers switch on
/// names rather than on numbers (the swift-system `AccessMode` pattern: a raw value kept,
/// unknown values representable, since a foreign rule can queue from anywhere).
public struct NetfilterHook: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    public static let preRouting = NetfilterHook(rawValue: 0)
    public static let localIn = NetfilterHook(rawValue: 1)
    public static let forward = NetfilterHook(rawValue: 2)
    public static let localOut = NetfilterHook(rawValue: 3)
    public static let postRouting = NetfilterHook(rawValue: 4)

    public var description: String {
        switch self {
        case .preRouting: "PREROUTING"
        case .localIn: "INPUT"
        case .forward: "FORWARD"
        case .localOut: "OUTPUT"
        case .postRouting: "POSTROUTING"
        default: "hook \(rawValue)"
        }
    }
}

/// A queued packet's hardware protocol (NFQA_PACKET_HDR's EtherType, host order).
public struct EtherType: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: UInt16
    public init(rawValue: UInt16) { self.rawValue = rawValue }

    public static let ipv4 = EtherType(rawValue: 0x0800)
    public static let ipv6 = EtherType(rawValue: 0x86dd)
    /// 802.1Q VLAN tag: frames queued through br_netfilter.
    public static let vlan = EtherType(rawValue: 0x8100)
    /// PPPoE session frames: also only through br_netfilter.
    public static let pppoeSession = EtherType(rawValue: 0x8864)

    public var description: String {
        switch self {
        case .ipv4: "IPv4"
        case .ipv6: "IPv6"
        case .vlan: "802.1Q"
        case .pppoeSession: "PPPoE"
        default: "0x" + String(rawValue, radix: 16)
        }
    }
}
