import NATCore

// Which way a captured packet crosses the NAT. The daemon knows from the hook and the
// interface; a capture has only the packet (and, in pcapng, its interface's name). A capture
// taken on both sides of a router also holds every packet after its translation: those are
// told apart here and left out.

public struct ReplayDirectionRules: Sendable, Equatable {
    public var wanAddress: IPv4Address
    public var lanPrefixes: [IPv4Prefix]
    public var lanInterface: String?
    public var wanInterface: String?

    public enum Decision: Equatable, Sendable {
        case translate(PacketDirection)
        /// Left out of the replay; the text says why.
        case notTranslated(String)
    }

    /// Interface names decide when `--lan-interface` or `--wan-interface` is given.
    public var byInterface: Bool { lanInterface != nil || wanInterface != nil }

    public func decide(source: IPv4Address, destination: IPv4Address, interfaceName: String?) -> Decision {
        guard byInterface else {
            if isLAN(source) { return fromLAN(destination: destination) }
            if destination == wanAddress { return .translate(.inbound) }
            return .notTranslated("neither from a --lan prefix nor to --wan-address")
        }
        guard let interfaceName else { return .notTranslated("on an interface without a name") }
        if interfaceName == wanInterface {
            // Leaving the WAN with our address as source: already masqueraded (or the router's
            // own). Anything else arrives from the WAN, spoofed sources included (the
            // translator drops those, as the daemon does).
            if source == wanAddress { return .notTranslated("from --wan-address on --wan-interface \(interfaceName): already translated") }
            return .translate(.inbound)
        }
        if interfaceName == lanInterface {
            guard isLAN(source) else {
                return .notTranslated("to the LAN on --lan-interface \(interfaceName): already translated")
            }
            return fromLAN(destination: destination)
        }
        return .notTranslated("on interface \(interfaceName), neither --lan-interface nor --wan-interface")
    }

    /// A packet from a LAN host: hairpinned to the WAN address, masqueraded to the rest of the
    /// world, and not routed through the NAT at all to another LAN host.
    private func fromLAN(destination: IPv4Address) -> Decision {
        if destination == wanAddress { return .translate(.hairpin) }
        if isLAN(destination) { return .notTranslated("from a --lan prefix to a --lan prefix: does not cross the NAT") }
        return .translate(.outbound)
    }

    func isLAN(_ address: IPv4Address) -> Bool {
        lanPrefixes.contains { $0.contains(address) }
    }
}
