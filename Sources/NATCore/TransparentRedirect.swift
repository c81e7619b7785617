// Transparent redirect (`--redirect tcp:PORT=LOCALPORT`, issue #15 item 3): TCP from inside to
// any remote address on PORT is delivered to the router's own LOCALPORT, and the local
// proxy's replies go back as if from the original destination — the kernel's REDIRECT
// target, done in masqd's own table because no conntrack entry exists.

public struct TransparentRedirect: Sendable, Equatable, CustomStringConvertible {
    /// The destination port redirected (any remote address).
    public var port: UInt16
    /// The router's port the proxy listens on.
    public var localPort: UInt16

    public init(port: UInt16, localPort: UInt16) {
        self.port = port
        self.localPort = localPort
    }

    public var description: String { "tcp:\(port)=\(localPort)" }
}

/// The original destination of a redirected connection, as the proxy asks for it.
public struct RedirectSnapshot: Sendable, Equatable, CustomStringConvertible {
    public var clientAddress: IPv4Address
    public var clientPort: UInt16
    public var originalAddress: IPv4Address
    public var originalPort: UInt16
    public var localAddress: IPv4Address
    public var localPort: UInt16
    public var tcpState: TCPSessionState
    public var expiresIn: NATDuration

    /// One line, as `masqd flows` shows sessions:
    /// `tcp ESTABLISHED 192.0.2.10:40000 -> 203.0.113.2:80 redirected 192.0.2.1:3128 expires 7439s`.
    public var description: String {
        "tcp \(tcpState) \(clientAddress):\(clientPort) -> \(originalAddress):\(originalPort) redirected \(localAddress):\(localPort) expires \(expiresIn.wholeSeconds)s"
    }
}
