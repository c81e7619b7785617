import NATCore

// The rules of `--redirect` and `--reverse-path-check`, for both backends.

extension FirewallPlan {
    /// Transparent redirect: the client's TCP to PORT, from the LAN side and not to one of the
    /// router's own addresses, is queued before routing (the engine points it at the router's
    /// address on the input interface, and routing then delivers it locally); the proxy's
    /// packets from LOCALPORT to the LAN side are queued in OUTPUT (the engine gives them the
    /// original destination back as source; the kernel routes them again on reinjection).
    static func redirectPoints(_ settings: EngineSettings) -> [SteeringPoint] {
        let wan = settings.wanInterface
        let prefixes: [IPv4Prefix?] = settings.internalPrefixes.isEmpty ? [nil] : settings.internalPrefixes
        var points: [SteeringPoint] = []
        for redirect in settings.nat.redirects {
            for prefix in prefixes {
                points.append(SteeringPoint(hook: .prerouting, input: .notNamed(wan), source: prefix,
                                            destinationType: .notLocal, tcpDestinationPort: redirect.port))
            }
            for prefix in prefixes {
                // Without --lan: every destination that is not the router itself (loopback stays out).
                points.append(SteeringPoint(hook: .output, output: nil, destination: prefix,
                                            destinationType: prefix == nil ? .notLocal : nil, tcpSourcePort: redirect.localPort))
            }
        }
        return points
    }

    /// The reverse-path check: a packet from the LAN side whose source the router would not
    /// route back out of the interface it came in on is spoofed (or misrouted); drop it
    /// before anything else sees it. The kernel follows the routing table as it changes, for
    /// every protocol, and costs the engine nothing. The router's own addresses are left to
    /// the spoofing rule and the engine (`drop_spoofed_source`).
    static func reversePathPoints(_ settings: EngineSettings) -> [SteeringPoint] {
        guard settings.reversePathCheck else { return [] }
        return [SteeringPoint(hook: .prerouting, input: .notNamed(settings.wanInterface), sourceType: .notLocal,
                              action: .drop, reversePathFails: true)]
    }
}
