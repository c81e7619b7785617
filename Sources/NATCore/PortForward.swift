// A port forward (DNAT) from the WAN address: `tcp:8080=192.0.2.10:80`,
// `udp:5000-5010=192.0.2.20`, as `--forward PROTO:PORT[-PORT]=ADDR[:PORT]`.

public struct PortForward: Sendable, Equatable, CustomStringConvertible {
    public var protocolNumber: UInt8
    public var externalPorts: ClosedRange<UInt16>
    public var internalAddress: IPv4Address
    /// First internal port; a range maps onto consecutive ports. Nil keeps the external port.
    public var internalPort: UInt16?

    public init(protocolNumber: UInt8, externalPorts: ClosedRange<UInt16>, internalAddress: IPv4Address, internalPort: UInt16? = nil) {
        self.protocolNumber = protocolNumber
        self.externalPorts = externalPorts
        self.internalAddress = internalAddress
        self.internalPort = internalPort
    }

    /// The internal port that external port `port` (inside `externalPorts`) forwards to.
    public func internalPort(for port: UInt16) -> UInt16 {
        guard let first = internalPort else { return port }
        return first + (port - externalPorts.lowerBound)
    }

    public init?(_ text: String) {
        guard let colon = text.firstIndex(of: ":"), let equals = text.firstIndex(of: "="), colon < equals else { return nil }
        switch text[..<colon] {
        case "tcp": protocolNumber = IPProtocolNumber.tcp
        case "udp": protocolNumber = IPProtocolNumber.udp
        default: return nil
        }
        guard let ports = PortForward.parsePortRange(text[text.index(after: colon)..<equals]) else { return nil }
        externalPorts = ports
        let target = text[text.index(after: equals)...]
        let pieces = target.split(separator: ":", omittingEmptySubsequences: false)
        guard pieces.count == 1 || pieces.count == 2, let address = IPv4Address(pieces[0]) else { return nil }
        internalAddress = address
        if pieces.count == 2 {
            guard let port = PortForward.parsePort(pieces[1]) else { return nil }
            guard Int(port) + Int(ports.upperBound - ports.lowerBound) <= 65535 else { return nil }
            internalPort = port
        }
    }

    public var description: String {
        let proto = protocolNumber == IPProtocolNumber.tcp ? "tcp" : "udp"
        let ports = externalPorts.count == 1 ? "\(externalPorts.lowerBound)" : "\(externalPorts.lowerBound)-\(externalPorts.upperBound)"
        return "\(proto):\(ports)=\(internalAddress)" + (internalPort.map { ":\($0)" } ?? "")
    }

    /// A port 1–65535 in plain decimal.
    public static func parsePort(_ text: Substring) -> UInt16? {
        guard !text.isEmpty, text.count <= 5, text.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }),
              let value = Int(text), (1...65535).contains(value) else { return nil }
        return UInt16(value)
    }

    /// "P" or "A-B" with A ≤ B.
    public static func parsePortRange(_ text: Substring) -> ClosedRange<UInt16>? {
        let pieces = text.split(separator: "-", omittingEmptySubsequences: false)
        guard pieces.count == 1 || pieces.count == 2, let low = parsePort(pieces[0]) else { return nil }
        guard pieces.count == 2 else { return low...low }
        guard let high = parsePort(pieces[1]), low <= high else { return nil }
        return low...high
    }
}
