// `--to-source ADDR[-ADDR]` and per-prefix pools (issue #15 item 1): the external addresses
// mappings get instead of the WAN address. Pooling is paired (RFC 4787 REQ-2): an internal
// host keeps one external address for all its mappings while it has any (the per-host table
// holds it); a new host is placed by a hash of its internal address (the default: the same
// address after any restart, with or without a state file) or round-robin (an even spread,
// but an order that a restart without a state file does not remember).
//
// External address index 0 is the WAN address (NATConfiguration.externalAddress, which may
// come and go); index i > 0 is `addresses[i - 1]`. Port forwards stay on the WAN address.

public struct SourceAddressPools: Sendable, Equatable {
    public enum Placement: String, Sendable, CaseIterable {
        case hash
        case roundRobin = "round-robin"
    }

    /// Pool addresses in all pools: each has its own external port table (3 × 64 Ki rows, 768 KiB).
    public static let maximumAddresses = 32

    /// Every pool address, in order: external index i + 1.
    public private(set) var addresses: [IPv4Address] = []
    /// Each pool as a range of `addresses`.
    public private(set) var pools: [Range<Int>] = []
    /// The pool of each internal prefix, in NATConfiguration.internalPrefixes' order (missing
    /// or nil: `defaultPool`).
    public var prefixPools: [Int?] = []
    /// The pool of hosts whose prefix names none (`--to-source`); nil: the WAN address.
    public var defaultPool: Int? = nil
    public var placement: Placement = .hash

    public init() {}

    public var isEmpty: Bool { addresses.isEmpty }

    /// Adds a pool and returns its number; nil when one of its addresses is already in a pool
    /// or the pools would hold more than `maximumAddresses`.
    public mutating func addPool(_ members: [IPv4Address]) -> Int? {
        guard !members.isEmpty, addresses.count + members.count <= Self.maximumAddresses,
              !members.contains(where: addresses.contains), Set(members).count == members.count else { return nil }
        pools.append(addresses.count..<addresses.count + members.count)
        addresses += members
        return pools.count - 1
    }

    /// The pool for an internal address in prefix number `prefix` (-1: none matched), or nil (the WAN address).
    @inline(__always)
    func pool(forPrefix prefix: Int) -> Int? {
        if prefix >= 0, prefix < prefixPools.count, let own = prefixPools[prefix] { return own }
        return defaultPool
    }

    /// Identifies the pool addresses in the state file (FNV-1a of them, never 0): a saved
    /// mapping's address index is kept only under the same addresses in the same order.
    public var fingerprint: UInt32 {
        guard !addresses.isEmpty else { return 0 }
        var hash: UInt32 = 0x811c_9dc5
        for address in addresses {
            for shift in stride(from: 24, through: 0, by: -8) {
                hash = (hash ^ (address.value >> UInt32(shift) & 0xff)) &* 0x0100_0193
            }
        }
        return hash | 1
    }

    /// The placement hash: keyed with a constant, not the translator's random seed, so that a
    /// host lands on the same address after a restart. (Which LAN host is behind which pool
    /// address is no secret an outsider can use: each already sees the address itself.)
    @inline(__always)
    static func placementHash(_ internalAddress: UInt32) -> UInt32 {
        flowHash(UInt64(internalAddress), 0x706f_6f6c, seed: 0x6d61_7371_6470_6f6f)
    }
}
