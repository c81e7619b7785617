import NATCore

// `--to-source ADDR[-ADDR]` (repeatable), `--lan CIDR=ADDR[-ADDR][,…]` and `--pool-placement`
// (NATCore's SourceAddressPools): the external addresses mappings get instead of the WAN
// address, paired per internal host. Fixed while running (each address has a port table of
// its own): a reload refuses a change.

extension EngineOptions {
    /// The prefix part of a `--lan` value (`CIDR` or `CIDR=POOL`).
    static func lanPrefixText(_ text: String) -> Substring {
        text.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)[0]
    }

    /// The pools of `--to-source` and of the `--lan` values that name one; `prefixes` are the
    /// checked `--lan` prefixes in order.
    func checkedSourcePools(prefixes: [IPv4Prefix]) throws(MasqdError) -> SourceAddressPools {
        var pools = SourceAddressPools()
        if let poolPlacement {
            guard let placement = SourceAddressPools.Placement(rawValue: poolPlacement) else {
                throw .option("--pool-placement", poolPlacement, "expected hash or round-robin")
            }
            pools.placement = placement
        }
        func addresses(_ text: Substring, option: String, value: String) throws(MasqdError) -> [IPv4Address] {
            var list: [IPv4Address] = []
            for piece in text.split(separator: ",", omittingEmptySubsequences: false) {
                guard let range = Self.addressRange(piece) else {
                    throw .option(option, value, "expected ADDR or ADDR-ADDR (IPv4, first <= last)")
                }
                guard range.count <= SourceAddressPools.maximumAddresses - list.count else {
                    throw .option(option, value, "more than \(SourceAddressPools.maximumAddresses) addresses")
                }
                for value in range { list.append(IPv4Address(value)) }
            }
            for address in list {
                let top = address.value >> 24
                guard top != 0, top != 127, top & 0xf0 < 0xe0 else {
                    throw .option(option, value, "\(address) cannot be a source address")
                }
                if let inside = prefixes.first(where: { $0.contains(address) }) {
                    throw .option(option, value, "\(address) is inside --lan \(inside)")
                }
            }
            return list
        }
        func add(_ list: [IPv4Address], option: String, value: String) throws(MasqdError) -> Int {
            guard let pool = pools.addPool(list) else {
                if pools.addresses.count + list.count > SourceAddressPools.maximumAddresses {
                    throw .option(option, value, "more than \(SourceAddressPools.maximumAddresses) pool addresses in all")
                }
                throw .option(option, value, "an address is given twice")
            }
            return pool
        }
        if !toSource.isEmpty {
            var all: [IPv4Address] = []
            for text in toSource { all += try addresses(Substring(text), option: "--to-source", value: text) }
            pools.defaultPool = try add(all, option: "--to-source", value: toSource.joined(separator: ","))
        }
        for text in lan {
            let parts = text.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard parts.count == 2 else { pools.prefixPools.append(nil); continue }
            pools.prefixPools.append(try add(try addresses(parts[1], option: "--lan", value: text), option: "--lan", value: text))
        }
        if pools.isEmpty, poolPlacement != nil {
            throw .option("--pool-placement", poolPlacement ?? "", "needs --to-source or a --lan prefix with a pool")
        }
        return pools
    }

    /// `A.B.C.D` or `A.B.C.D-E.F.G.H` as a range of address values.
    static func addressRange(_ text: Substring) -> ClosedRange<UInt32>? {
        let ends = text.split(separator: "-", omittingEmptySubsequences: false)
        guard ends.count == 1 || ends.count == 2, let first = IPv4Address(ends[0]),
              let last = ends.count == 2 ? IPv4Address(ends[1]) : first, first.value <= last.value else { return nil }
        return first.value...last.value
    }
}

extension EngineSettings {
    /// The pools as the options name them, for `rules print` comments and reload messages.
    var sourcePoolsText: String {
        let pools = nat.sourcePools
        guard !pools.isEmpty else { return "none" }
        func list(_ pool: Int) -> String { pools.pools[pool].map { pools.addresses[$0].description }.joined(separator: ",") }
        var parts: [String] = []
        if let pool = pools.defaultPool { parts.append("to-source \(list(pool))") }
        for (prefix, pool) in zip(internalPrefixes, pools.prefixPools) {
            if let pool { parts.append("\(prefix)=\(list(pool))") }
        }
        return parts.joined(separator: " ") + " (\(pools.placement.rawValue))"
    }
}
