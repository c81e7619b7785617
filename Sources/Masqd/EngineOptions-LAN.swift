import NATCore

// `--lan CIDR[=POOL]`: the internal prefixes whose traffic is translated (their own source
// pools are checked in EngineOptions-SourcePools.swift). Can change on reload.

extension EngineOptions {
    func checkedLANPrefixes() throws(MasqdError) -> [IPv4Prefix] {
        var prefixes: [IPv4Prefix] = []
        for text in lan {
            guard let prefix = IPv4Prefix(Self.lanPrefixText(text)) else {
                throw .option("--lan", text, "not an IPv4 prefix (A.B.C.D/N with host bits zero)")
            }
            if let other = prefixes.first(where: { $0.overlaps(prefix) }) {
                throw .option("--lan", text, "overlaps --lan \(other)")
            }
            prefixes.append(prefix)
        }
        return prefixes
    }
}
