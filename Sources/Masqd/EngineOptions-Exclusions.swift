import NATCore

// `--no-nat-to CIDR` (repeatable): destinations reached untranslated, the seeds' perimeter net
// ("to the perimeter net without masquerading"). The rules leave that traffic out of the queue
// (FirewallPlan), so the engine never sees it and no state is spent on it.

extension EngineOptions {
    func checkedExclusions(lan: [IPv4Prefix]) throws(MasqdError) -> [IPv4Prefix] {
        var prefixes: [IPv4Prefix] = []
        for text in noNatTo {
            guard let prefix = IPv4Prefix(text) else {
                throw .option("--no-nat-to", text, "not an IPv4 prefix (A.B.C.D/N with host bits zero)")
            }
            // /0 would translate nothing at all: that is no NAT, not an exception to it.
            guard prefix.length > 0 else { throw .option("--no-nat-to", text, "excludes every destination") }
            if let other = prefixes.first(where: { $0.overlaps(prefix) }) {
                throw .option("--no-nat-to", text, "overlaps --no-nat-to \(other)")
            }
            // LAN-to-LAN traffic never leaves by the WAN; such an exclusion is a typo.
            if let inside = lan.first(where: { $0.overlaps(prefix) }) {
                throw .option("--no-nat-to", text, "overlaps --lan \(inside)")
            }
            prefixes.append(prefix)
        }
        return prefixes
    }
}
