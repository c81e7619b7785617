import NATCore

// `--forward PROTO:PORT[-PORT]=ADDR[:PORT]`: port forwards, each checked alone and against the
// others and the --lan prefixes; then, with the whole configuration, against each other's
// internal endpoints and the mapping table. Can change on reload.

extension EngineOptions {
    func checkedForwards(prefixes: [IPv4Prefix]) throws(MasqdError) -> [PortForward] {
        var forwards: [PortForward] = []
        for text in forward {
            guard let parsed = PortForward(text) else {
                throw .option("--forward", text, "expected PROTO:PORT[-PORT]=ADDR[:PORT] with PROTO tcp or udp")
            }
            if let other = forwards.first(where: {
                $0.protocolNumber == parsed.protocolNumber && $0.externalPorts.overlaps(parsed.externalPorts)
            }) {
                throw .option("--forward", text, "overlaps --forward \(other)")
            }
            if !prefixes.isEmpty, !prefixes.contains(where: { $0.contains(parsed.internalAddress) }) {
                throw .option("--forward", text, "\(parsed.internalAddress) is not inside any --lan prefix")
            }
            forwards.append(parsed)
        }
        return forwards
    }

    /// The translator's own check of the finished configuration, which only forwards can fail.
    func checkForwardsTogether(_ nat: NATConfiguration) throws(MasqdError) {
        do {
            try nat.validate()
        } catch {
            switch error {
            case .forwardTargetsSameEndpoint(let a, let b):
                throw .option("--forward", b.description, "forwards to the same internal endpoint as --forward \(a)")
            case .forwardsExceedMappings:
                throw MasqdError("--forward: too many forwarded ports")
            }
        }
    }
}
