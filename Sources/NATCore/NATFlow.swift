// A flow by what its translation does not change: the protocol, the internal endpoint and the
// remote endpoint (the external one is the translation's choice). The key a session is known
// by outside the translator: the HA standby's copy and its increments, the kernel fast path.
// ICMP echo: the ports are the echo identifiers.

public struct NATFlow: Hashable, Sendable, CustomStringConvertible {
    public var protocolNumber: UInt8
    public var internalEndpoint: IPv4Endpoint
    public var remoteEndpoint: IPv4Endpoint

    /// "6 192.0.2.10:40000 -> 198.51.100.1:80" (the IP protocol number, then the endpoints).
    public var description: String { "\(protocolNumber) \(internalEndpoint) -> \(remoteEndpoint)" }

    @inlinable
    public init(protocolNumber: UInt8, internalEndpoint: IPv4Endpoint, remoteEndpoint: IPv4Endpoint) {
        self.protocolNumber = protocolNumber
        self.internalEndpoint = internalEndpoint
        self.remoteEndpoint = remoteEndpoint
    }
}

extension NATEvent {
    /// The flow the event names (a mapping event's remote is 0.0.0.0:0).
    @inlinable
    public var flow: NATFlow {
        NATFlow(protocolNumber: protocolNumber, internalEndpoint: internalEndpoint, remoteEndpoint: remoteEndpoint)
    }

    @inlinable
    public var internalEndpoint: IPv4Endpoint { IPv4Endpoint(internalAddress, internalPort) }
    @inlinable
    public var externalEndpoint: IPv4Endpoint { IPv4Endpoint(externalAddress, externalPort) }
    @inlinable
    public var remoteEndpoint: IPv4Endpoint { IPv4Endpoint(remoteAddress, remotePort) }

    /// An event of `kind` for `flow` through `external`.
    public init(timeNanoseconds: UInt64, kind: NATEventKind, reason: NATEventReason, flow: NATFlow, external: IPv4Endpoint) {
        self.init(timeNanoseconds: timeNanoseconds, kind: kind, reason: reason, protocolNumber: flow.protocolNumber,
                  internalAddress: flow.internalEndpoint.address.value, internalPort: flow.internalEndpoint.port,
                  externalAddress: external.address.value, externalPort: external.port,
                  remoteAddress: flow.remoteEndpoint.address.value, remotePort: flow.remoteEndpoint.port)
    }
}

extension SessionSnapshot {
    public var flow: NATFlow {
        NATFlow(protocolNumber: protocolNumber, internalEndpoint: IPv4Endpoint(address: internalAddress, port: internalPort),
                remoteEndpoint: IPv4Endpoint(address: remoteAddress, port: remotePort))
    }
}
