import NATCore

// `--metrics ADDR:PORT`: where the Prometheus endpoint listens (MetricsServer.swift). IPv4
// only, like the rest of the daemon (the systemd unit allows no other address family).

/// An IPv4 address and TCP port to listen on ("A.B.C.D:PORT").
public typealias MetricsEndpoint = IPv4Endpoint

extension EngineOptions {
    func checkedMetricsEndpoint() throws(MasqdError) -> MetricsEndpoint? {
        guard let metrics else { return nil }
        guard let endpoint = MetricsEndpoint(metrics) else {
            throw .option("--metrics", metrics, "expected ADDR:PORT with an IPv4 address and a port 1-65535, e.g. 127.0.0.1:9469")
        }
        return endpoint
    }
}
