import NATCore

// A UDP flow through a translator: datagrams from the inside endpoint to the outside one and
// back, crafted by `PacketBuilder` with reference checksums. A datagram helper sees each
// payload whole, so a test sends one, reads the translated bytes and compares them with the
// packet a correct translation produces (`expected(_:to:)`).

/// A UDP flow between an inside and an outside endpoint through `translator`.
public struct UDPDatagramDriver {
    public let translator: NATTranslator
    public let inside: Endpoint
    public let outside: Endpoint
    /// The translator's external address (what the outside endpoint sends to).
    public let externalAddress: IPv4Bytes
    /// The port the inside endpoint appears as outside: learned from the first datagram from
    /// the inside that is translated, or given (a port forward).
    public private(set) var externalPort: UInt16?
    /// The time datagrams are sent at; move it forward to test timeouts.
    public var now: NATTime

    public init(through translator: NATTranslator, inside: Endpoint, outside: Endpoint,
                externalAddress: IPv4Bytes = TestNet.external, externalPort: UInt16? = nil, now: NATTime = TestNet.start) {
        self.translator = translator
        self.inside = inside
        self.outside = outside
        self.externalAddress = externalAddress
        self.externalPort = externalPort
        self.now = now
    }

    /// Sends a datagram with `payload` from `side`. From the inside it goes to the outside
    /// endpoint; from the outside it comes from the outside endpoint's address and
    /// `sourcePort` (default: its own port; another one is a server answering from a new
    /// port) to the external address and port. Throws only when sending from the outside
    /// before the external port is known.
    @discardableResult
    public mutating func send(_ payload: [UInt8], from side: NATSide, sourcePort: UInt16? = nil,
                              checksum: L4Checksum = .valid) throws(DriverFailure) -> TranslatedPacket {
        switch side {
        case .inside:
            let sent = translator.translate(
                PacketBuilder.udp(inside.address, sourcePort ?? inside.port, outside.address, outside.port, payload: payload, checksum: checksum),
                direction: .outbound, now: now)
            if sent.isDelivered, externalPort == nil, sourcePort == nil { externalPort = PacketReader.sourcePort(sent.packet) }
            return sent
        case .outside:
            let port = try knownExternalPort()
            return translator.translate(
                PacketBuilder.udp(outside.address, sourcePort ?? outside.port, externalAddress, port, payload: payload, checksum: checksum),
                direction: .inbound, now: now)
        }
    }

    /// `text` as UTF-8, as `send(_:from:sourcePort:checksum:)`.
    @discardableResult
    public mutating func send(_ text: String, from side: NATSide, sourcePort: UInt16? = nil) throws(DriverFailure) -> TranslatedPacket {
        try send(Array(text.utf8), from: side, sourcePort: sourcePort)
    }

    /// The datagram `side` should receive with `payload`: to the outside endpoint from the
    /// external address and port, or to the inside endpoint from the outside address and
    /// `sourcePort` (default: the outside endpoint's port). Compare a delivered packet with it
    /// byte for byte: lengths and checksums are computed independently.
    public func expected(_ payload: [UInt8], to side: NATSide, sourcePort: UInt16? = nil) throws(DriverFailure) -> [UInt8] {
        switch side {
        case .outside:
            PacketBuilder.udp(externalAddress, try knownExternalPort(), outside.address, outside.port, payload: payload)
        case .inside:
            PacketBuilder.udp(outside.address, sourcePort ?? outside.port, inside.address, inside.port, payload: payload)
        }
    }

    /// `expected(_:to:sourcePort:)` with `text` as UTF-8.
    public func expected(_ text: String, to side: NATSide, sourcePort: UInt16? = nil) throws(DriverFailure) -> [UInt8] {
        try expected(Array(text.utf8), to: side, sourcePort: sourcePort)
    }

    private func knownExternalPort() throws(DriverFailure) -> UInt16 {
        guard let externalPort else {
            throw DriverFailure("no external port for \(inside) yet: send from the inside first, or give externalPort (a forward)")
        }
        return externalPort
    }
}
