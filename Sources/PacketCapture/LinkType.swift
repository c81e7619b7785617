// Link-layer header types (https://www.tcpdump.org/linktypes.html): the ones masqd can find an
// IPv4 packet in, by number.

public struct LinkType: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: UInt16

    public init(rawValue: UInt16) { self.rawValue = rawValue }

    public static let ethernet = LinkType(rawValue: 1)
    /// Raw IP, version 4 or 6 from the first nibble.
    public static let raw = LinkType(rawValue: 101)
    /// Linux cooked capture v1 (`tcpdump -i any` before libpcap 1.10).
    public static let linuxSLL = LinkType(rawValue: 113)
    /// Raw IPv4 only.
    public static let ipv4 = LinkType(rawValue: 228)
    /// Linux cooked capture v2 (`tcpdump -i any` with libpcap 1.10 and later).
    public static let linuxSLL2 = LinkType(rawValue: 276)

    /// The types `LinkLayer.locateIPv4` understands.
    public static let supported: [LinkType] = [.ethernet, .raw, .linuxSLL, .ipv4, .linuxSLL2]

    public var isSupported: Bool { Self.supported.contains(self) }

    public var description: String {
        switch self {
        case .ethernet: "1 (Ethernet)"
        case .raw: "101 (raw IP)"
        case .linuxSLL: "113 (Linux cooked)"
        case .ipv4: "228 (raw IPv4)"
        case .linuxSLL2: "276 (Linux cooked v2)"
        default: "\(rawValue)"
        }
    }
}
