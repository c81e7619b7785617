// An IPv4 address and a port: one side of a flow (internal, external, remote), a listener,
// a collector. Records that name endpoints (state file, sync, fast path) hold these rather
// than an address field and a port field each.

public struct IPv4Endpoint: Hashable, Sendable, CustomStringConvertible {
    public var address: IPv4Address
    public var port: UInt16

    /// "A.B.C.D:PORT".
    public var description: String { "\(address):\(port)" }

    @inlinable
    public init(address: IPv4Address, port: UInt16) {
        self.address = address
        self.port = port
    }

    /// From a host-order address (as NAT events carry it) and a port.
    @inlinable
    public init(_ address: UInt32, _ port: UInt16) {
        self.init(address: IPv4Address(address), port: port)
    }

    /// "A.B.C.D:PORT" with a port from 1 to 65535; nil for anything else.
    public init?(_ text: some StringProtocol) {
        let pieces = text.split(separator: ":", omittingEmptySubsequences: false)
        guard pieces.count == 2, let address = IPv4Address(pieces[0]), let port = PortForward.parsePort(Substring(pieces[1])) else { return nil }
        self.init(address: address, port: port)
    }
}
