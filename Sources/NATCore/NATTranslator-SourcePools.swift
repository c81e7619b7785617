// External addresses beyond the WAN address (SourceAddressPools.swift): which one a mapping
// gets, and which one a packet is addressed to. Index 0 is the WAN address.

extension NATTranslator {
    /// The external address of `index`; the WAN address (nil while it has none) for 0.
    @inline(__always)
    func externalAddress(index: UInt8) -> IPv4Address? {
        index == 0 ? configuration.externalAddress : configuration.sourcePools.addresses[Int(index) &- 1]
    }

    /// The index of `address` among the external addresses, or -1.
    @inline(__always)
    func externalIndex(of address: IPv4Address) -> Int {
        if address == configuration.externalAddress { return 0 }
        let pool = configuration.sourcePools.addresses
        for i in 0..<pool.count where pool[i] == address { return i &+ 1 }
        return -1
    }

    /// The external address index for a new mapping of `host`: the one it is paired with while
    /// it has a live session (RFC 4787 REQ-2), else where its pool places it.
    @inline(__always)
    func pairedIndex(for host: UInt32) -> UInt8 {
        guard !configuration.sourcePools.isEmpty else { return 0 }
        let current = hosts.externalIndex(of: host)
        return current >= 0 ? UInt8(current) : placement(for: host)
    }

    /// Where a host without live sessions goes: its prefix's pool, else the default pool, else
    /// the WAN address.
    func placement(for host: UInt32) -> UInt8 {
        let pools = configuration.sourcePools
        var prefix = -1
        let prefixes = configuration.internalPrefixes
        for i in 0..<prefixes.count where prefixes[i].contains(IPv4Address(host)) {
            prefix = i
            break
        }
        guard let pool = pools.pool(forPrefix: prefix) else { return 0 }
        let range = pools.pools[pool]
        let offset: Int
        switch pools.placement {
        case .hash:
            offset = Int(SourceAddressPools.placementHash(host) % UInt32(range.count))
        case .roundRobin:
            offset = poolCursors[pool] % range.count
            poolCursors[pool] &+= 1
        }
        return UInt8(range.lowerBound + offset + 1)
    }
}
