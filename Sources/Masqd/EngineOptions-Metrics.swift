import NATCore

// `--metrics ADDR:PORT`: where the Prometheus endpoint listens (MetricsServer.swift). IPv4
// only, like the rest of the daemon (the systemd unit allows no other address family).

/// An IPv4 address and TCP port to listen on.
public struct MetricsEndpoint: Sendable, Equatable, CustomStringConvertible {
    public var address: IPv4Address
    public var port: UInt16

    public init(address: IPv4Address, port: UInt16) {
        self.address = address
        self.port = port
    }

    /// "A.B.C.D:PORT" with a port from 1 to 65535.
    public init?(_ text: String) {
        let pieces = text.split(separator: ":", omittingEmptySubsequences: false)
        guard pieces.count == 2, let address = IPv4Address(pieces[0]), let port = PortForward.parsePort(pieces[1]) else { return nil }
        self.init(address: address, port: port)
    }

    public var description: String { "\(address):\(port)" }
}

extension EngineOptions {
    func checkedMetricsEndpoint() throws(MasqdError) -> MetricsEndpoint? {
        guard let metrics else { return nil }
        guard let endpoint = MetricsEndpoint(metrics) else {
            throw .option("--metrics", metrics, "expected ADDR:PORT with an IPv4 address and a port 1-65535, e.g. 127.0.0.1:9469")
        }
        return endpoint
    }
}
