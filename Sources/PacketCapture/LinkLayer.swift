// Finding the IPv4 packet behind a frame's link-layer header.

/// Where a frame's IPv4 packet starts, or why it has none.
public enum IPv4Location: Equatable, Sendable {
    /// The IPv4 packet starts `headerLength` bytes into the frame.
    case ipv4(headerLength: Int)
    /// A frame of another protocol (ARP, IPv6, a second VLAN tag, …).
    case notIPv4
    /// The frame is shorter than its own link-layer header.
    case truncated
    /// A link type `LinkLayer` does not read.
    case unsupportedLinkType
}

public enum LinkLayer {
    static let etherTypeIPv4: UInt16 = 0x0800
    static let etherTypeVLAN: UInt16 = 0x8100

    public static func locateIPv4(in frame: ArraySlice<UInt8>, linkType: LinkType) -> IPv4Location {
        let start = frame.startIndex
        func be16(_ offset: Int) -> UInt16 { UInt16(frame[start + offset]) << 8 | UInt16(frame[start + offset + 1]) }
        switch linkType {
        case .ethernet:
            // destination, source, EtherType; one 802.1Q tag (TPID, TCI) may sit before the EtherType.
            guard frame.count >= 14 else { return .truncated }
            var etherType = be16(12)
            var headerLength = 14
            if etherType == etherTypeVLAN {
                guard frame.count >= 18 else { return .truncated }
                etherType = be16(16)
                headerLength = 18
            }
            return etherType == etherTypeIPv4 ? .ipv4(headerLength: headerLength) : .notIPv4
        case .linuxSLL:
            // packet type, ARPHRD type, address length, 8 address bytes, protocol.
            guard frame.count >= 16 else { return .truncated }
            return be16(14) == etherTypeIPv4 ? .ipv4(headerLength: 16) : .notIPv4
        case .linuxSLL2:
            // protocol, reserved, interface index, ARPHRD type, packet type, address length, 8 address bytes.
            guard frame.count >= 20 else { return .truncated }
            return be16(0) == etherTypeIPv4 ? .ipv4(headerLength: 20) : .notIPv4
        case .raw:
            guard let first = frame.first else { return .truncated }
            return first >> 4 == 4 ? .ipv4(headerLength: 0) : .notIPv4
        case .ipv4:
            return .ipv4(headerLength: 0)
        default:
            return .unsupportedLinkType
        }
    }
}
