// Chooses the external port for a new mapping: the internal port itself when it is free
// (port preservation, RFC 4787 REQ-1 spirit), else a free port from the same class —
// below 1024 stays below 1024, like the kernel — searched from a keyed-hash start point so
// choices are not predictable from outside.

public struct PortAllocator: Sendable {
    /// Ports for internal ports ≥ 1024 (and for all when `lowPortRange` is nil).
    public var portRange: ClosedRange<UInt16>
    /// Ports for internal ports < 1024; nil when one explicit range applies to all.
    public var lowPortRange: ClosedRange<UInt16>?

    public init(portRange: ClosedRange<UInt16> = 1024...65535, lowPortRange: ClosedRange<UInt16>? = 1...1023) {
        self.portRange = portRange
        self.lowPortRange = lowPortRange
    }

    /// The range a given internal port draws from. ICMP identifiers use the whole space.
    @inline(__always)
    func range(for internalPort: UInt16, slot: Int) -> ClosedRange<UInt16> {
        if slot == TransportProtocol.icmpEcho.slot { return 0...65535 }
        if internalPort < 1024, let low = lowPortRange { return low }
        return portRange
    }

    /// A free external port for `internalPort`, or nil when its range is exhausted. Ports the
    /// router holds or reserves (`local`) are never handed out: the search steps over the
    /// reserved range in one jump, so a range mostly reserved costs no more than a small one.
    /// The port is the one a scan from the hash point would find, found in the table's
    /// free-port bitmap in a few word reads, so an exhausted range is refused at once.
    /// `range`: a port block's (PortBlocks.swift) in place of the configured one.
    func allocate(in table: borrowing ExternalPortTable, local: borrowing LocalPortMap, slot: Int,
                  range: ClosedRange<UInt16>? = nil, internalPort: UInt16, startHash: UInt32, address: Int = 0) -> UInt16? {
        let range = range ?? self.range(for: internalPort, slot: slot)
        if range.contains(internalPort), table.owner(slot: slot, port: internalPort, address: address) < 0, !local.contains(slot: slot, port: internalPort) {
            return internalPort
        }
        // The range without the reserved part: at most two pieces, below and above it.
        var low = Int(range.lowerBound)...Int(range.upperBound)
        var high: ClosedRange<Int>? = nil
        if slot != TransportProtocol.icmpEcho.slot, let reserved = local.reserved, reserved.overlaps(range) {
            let below = Int(range.lowerBound) < Int(reserved.lowerBound) ? Int(range.lowerBound)...Int(reserved.lowerBound) - 1 : nil
            let above = Int(reserved.upperBound) < Int(range.upperBound) ? Int(reserved.upperBound) + 1...Int(range.upperBound) : nil
            guard let first = below ?? above else { return nil }
            low = first
            high = below == nil ? nil : above
        }
        let lowSize = low.count
        let size = lowSize + (high?.count ?? 0)
        let offset = Int(startHash) % size
        let start = offset < lowSize ? low.lowerBound + offset : high!.lowerBound + offset - lowSize
        // The order of a scan from the hash point: the rest of its piece, the other piece,
        // then its piece's start — each piece searched in the free-port bitmap, not port by port.
        let (first, second) = offset < lowSize ? (low, high) : (high!, Optional(low))
        func search(_ from: Int, _ through: Int) -> Int? {
            firstAllocatable(in: table, local: local, slot: slot, address: address, from: from, through: through)
        }
        let found = search(start, first.upperBound) ?? second.flatMap { search($0.lowerBound, $0.upperBound) }
            ?? search(first.lowerBound, start - 1)
        return found.map { UInt16($0) }
    }

    /// The lowest port of `from...through` (empty when `from > through`) free in the table and
    /// not the router's (its held ports are few and stepped over; its reserved range is never inside).
    func firstAllocatable(in table: borrowing ExternalPortTable, local: borrowing LocalPortMap, slot: Int, address: Int, from: Int, through: Int) -> Int? {
        var from = from
        while let port = table.firstFree(slot: slot, address: address, from: from, through: through) {
            if !local.contains(slot: slot, port: UInt16(port)) { return port }
            from = port + 1
        }
        return nil
    }

    /// Two free consecutive external ports, the first even (RTP and RTCP), for the internal
    /// pair starting at `internalPort`: the same ports when they are free, else a pair from
    /// the range searched from the hash point. Nil when no pair is free.
    /// The router's ports are skipped as in `allocate`.
    func allocatePair(in table: borrowing ExternalPortTable, local: borrowing LocalPortMap, slot: Int,
                      range: ClosedRange<UInt16>? = nil, internalPort: UInt16, startHash: UInt32, address: Int = 0) -> UInt16? {
        let range = range ?? self.range(for: internalPort, slot: slot)
        func free(_ port: UInt16) -> Bool {
            table.owner(slot: slot, port: port, address: address) < 0 && table.owner(slot: slot, port: port + 1, address: address) < 0
                && !local.contains(slot: slot, port: port) && !local.contains(slot: slot, port: port + 1)
        }
        if internalPort & 1 == 0, internalPort < range.upperBound, range.contains(internalPort), free(internalPort) {
            return internalPort
        }
        let first = Int(range.lowerBound) + Int(range.lowerBound & 1) // even (in Int: 65535 + 1 must not trap)
        let pairs = (Int(range.upperBound) - first + 1) / 2
        guard pairs > 0 else { return nil }
        let start = first + 2 * (Int(startHash) % pairs)
        // From the hash point to the last pair, then from the first pair: a word of the bitmap at a time.
        func firstPair(_ from: Int, _ through: Int) -> Int? {
            var from = from
            while let port = table.firstFreePair(slot: slot, address: address, from: from, through: through) {
                if !local.contains(slot: slot, port: UInt16(port)) && !local.contains(slot: slot, port: UInt16(port + 1)) { return port }
                from = port + 2
                if let reserved = local.reserved, reserved.contains(UInt16(port)) || reserved.contains(UInt16(port + 1)) {
                    from = max(from, (Int(reserved.upperBound) + 2) & ~1)
                }
            }
            return nil
        }
        return (firstPair(start, first + 2 * pairs - 1) ?? firstPair(first, start - 1)).map { UInt16($0) }
    }
}
