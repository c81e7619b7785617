// A read-only description of one live translation, for `masqd flows` and tests.

public struct SessionSnapshot: Sendable, CustomStringConvertible {
    public var protocolNumber: UInt8
    public var internalAddress: IPv4Address
    public var internalPort: UInt16
    public var remoteAddress: IPv4Address
    public var remotePort: UInt16
    public var externalAddress: IPv4Address
    public var externalPort: UInt16
    public var tcpState: TCPSessionState
    public var expiresIn: NATDuration

    /// A protocol without ports, translated by address only.
    public var isAddressOnly: Bool { TransportProtocol(protocolNumber: protocolNumber) == nil }

    public var protocolName: String { IPProtocolNumber.name(protocolNumber) ?? "proto-\(protocolNumber)" }

    /// One line, conntrack-like: `tcp ESTABLISHED 192.0.2.10:40000 -> 203.0.113.2:80 via 203.0.113.1:40000 expires 7439s`.
    /// Address-only (a protocol without ports): `gre 192.168.1.2 -> 198.51.100.1 via 203.0.113.1 expires 599s`.
    public var description: String {
        if isAddressOnly {
            return "\(protocolName) \(internalAddress) -> \(remoteAddress) via \(externalAddress) expires \(expiresIn.wholeSeconds)s"
        }
        let state = protocolNumber == IPProtocolNumber.tcp ? " \(tcpState)" : ""
        let id = protocolNumber == IPProtocolNumber.icmp
        let remote = id ? "\(remoteAddress)" : "\(remoteAddress):\(remotePort)"
        let idLabel = id ? " id" : ":"
        return "\(protocolName)\(state) \(internalAddress)\(idLabel)\(id ? " \(internalPort)" : "\(internalPort)") -> \(remote) via \(externalAddress)\(idLabel)\(id ? " \(externalPort)" : "\(externalPort)") expires \(expiresIn.wholeSeconds)s"
    }
}

extension NATTranslator {
    /// Calls `body` for every live session (not on the packet path: for listings).
    public func forEachSession(now: NATTime, _ body: (SessionSnapshot) -> Void) {
        for i in 0..<sessions.highWater {
            let session = sessions[Int32(i)]
            guard session.mapping >= 0, session.expires > now.nanoseconds else { continue }
            let mapping = mappings[session.mapping]
            // Each mapping's own external address: the WAN address or its host's pool address.
            guard let external = externalAddress(index: mapping.externalIndex) else { continue }
            body(SessionSnapshot(
                protocolNumber: mapping.protocolNumber,
                internalAddress: IPv4Address(mapping.internalAddress), internalPort: mapping.internalPort,
                remoteAddress: IPv4Address(session.remoteAddress), remotePort: session.remotePort,
                externalAddress: external, externalPort: mapping.externalPort,
                tcpState: session.tcpState,
                expiresIn: NATDuration(nanoseconds: session.expires - now.nanoseconds)))
        }
        guard let wan = configuration.externalAddress else { return } // address-only rows are on the WAN address
        for i in 0..<addressOnly.highWater {
            let flow = addressOnly[Int32(i)]
            guard flow.internalAddress != 0, flow.expires > now.nanoseconds else { continue }
            body(SessionSnapshot(
                protocolNumber: flow.protocolNumber, internalAddress: IPv4Address(flow.internalAddress), internalPort: 0,
                remoteAddress: IPv4Address(flow.remoteAddress), remotePort: 0, externalAddress: wan, externalPort: 0,
                tcpState: .none, expiresIn: NATDuration(nanoseconds: flow.expires - now.nanoseconds)))
        }
    }
}
