import MasqdLab

/// The lab's addresses under the short names the suites use (`LabTopology`'s, as text): a
/// suite that talks about them conforms instead of repeating the same five constants.
protocol LabAddresses {}

extension LabAddresses {
    /// 203.0.113.1, the router's WAN address (what the NAT translates to).
    var wan: String { LabTopology.routerWANAddress }
    /// 192.0.2.10, the first LAN host.
    var h1: String { LabTopology.host1Address }
    /// 192.0.2.11, the second LAN host.
    var h2: String { LabTopology.host2Address }
    /// 203.0.113.2, the server on the "internet" side.
    var server: String { LabTopology.serverAddress }
    /// 198.51.100.2, the far host behind the server (topologies with `farHost: true`).
    var far: String { LabTopology.farAddress }
}
