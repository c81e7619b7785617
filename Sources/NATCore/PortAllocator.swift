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
    /// router holds or reserves (`local`) are never handed out: the scan steps over the
    /// reserved range in one jump, so a range mostly reserved costs no more than a small one.
    func allocate(in table: ExternalPortTable, local: LocalPortMap = LocalPortMap.none, slot: Int, internalPort: UInt16,
                  startHash: UInt32, address: Int = 0) -> UInt16? {
        let range = range(for: internalPort, slot: slot)
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
        var offset = Int(startHash) % size
        for _ in 0..<size {
            let port = UInt16(offset < lowSize ? low.lowerBound + offset : high!.lowerBound + offset - lowSize)
            if table.owner(slot: slot, port: port, address: address) < 0, !local.contains(slot: slot, port: port) { return port }
            offset += 1
            if offset == size { offset = 0 }
        }
        return nil
    }

    /// Two free consecutive external ports, the first even (RTP and RTCP), for the internal
    /// pair starting at `internalPort`: the same ports when they are free, else a pair from
    /// the range searched from the hash point. Nil when no pair is free.
    /// The router's ports are skipped as in `allocate` (pairs are rare: no jump over the reserved range).
    func allocatePair(in table: ExternalPortTable, local: LocalPortMap = LocalPortMap.none, slot: Int, internalPort: UInt16,
                      startHash: UInt32, address: Int = 0) -> UInt16? {
        let range = range(for: internalPort, slot: slot)
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
        var offset = Int(startHash) % pairs
        for _ in 0..<pairs {
            let port = UInt16(first + 2 * offset)
            if free(port) { return port }
            offset += 1
            if offset == pairs { offset = 0 }
        }
        return nil
    }
}
