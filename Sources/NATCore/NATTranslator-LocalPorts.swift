// The router's own ports (LocalPorts.swift) in the translator: the daemon reports them, the
// allocator skips them, inbound packets to them go to the router. A dynamic mapping whose
// port a router socket takes later is removed with its sessions when the daemon next
// reports the ports: the router's socket wins (its inbound packets were the router's all
// along), and the LAN host's next packet gets a new mapping on a free port.

/// What `setLocalPorts` did.
public struct LocalPortsUpdate: Sendable, Equatable {
    /// Dynamic mappings removed because the router now holds or reserves their port.
    public var mappingsEvicted = 0
    /// Their sessions, cut with them.
    public var sessionsCut = 0
    /// Forwarded ports the router holds or reserves: kept (the admin asked for them).
    public var forwardsOnLocalPorts = 0
}

extension NATTranslator {
    /// Sets the ports the router's own sockets hold on the WAN side (`held`) and the range it
    /// reserves for its ephemeral ports (`reserved`, nil for none). Replaces the previous set.
    /// Call from housekeeping, not per packet: it walks the local ports to evict mappings.
    @discardableResult
    public func setLocalPorts(_ held: LocalPortSet, reserved: ClosedRange<UInt16>?) -> LocalPortsUpdate {
        localPorts.set(held, reserved: reserved)
        var update = LocalPortsUpdate()
        // Dynamic owners of local ports: usually none (the allocator skips them), so look first.
        var victims = 0
        // On every external address: a wildcard socket holds its port on the pool addresses
        // the router holds too, and inbound packets to it go to the router (isRoutersPort).
        for address in 0...configuration.sourcePools.addresses.count {
            for slot in 0..<2 {
                localPorts.forEachPort(slot: slot) { port in
                    let row = externalPorts.owner(slot: slot, port: port, address: address)
                    guard row >= 0 else { return }
                    if mappings[row].isStatic { update.forwardsOnLocalPorts += 1 } else { victims += 1 }
                }
            }
        }
        guard victims > 0 else { return update }
        // One pass over the sessions (not one per mapping): the last session takes its mapping.
        for i in 0..<sessions.highWater {
            let session = sessions[Int32(i)]
            guard session.mapping >= 0, let slot = ExternalPortTable.slot(session.protocolNumber),
                  localPorts.contains(slot: slot, port: session.externalPort), !mappings[session.mapping].isStatic else { continue }
            removeSession(Int32(i), reason: .evicted)
            update.sessionsCut += 1
        }
        update.mappingsEvicted = victims
        // What is left holds only expectations.
        for slot in 0..<2 {
            localPorts.forEachPort(slot: slot) { port in
                let row = externalPorts.owner(slot: slot, port: port)
                if row >= 0, !mappings[row].isStatic { _ = flushMapping(row, reason: .evicted) }
            }
        }
        counters[.mappingsEvictedLocalPort] &+= UInt64(victims)
        counters[.sessionsFlushed] &+= UInt64(update.sessionsCut)
        return update
    }

    /// The external port of a new dynamic mapping of `host`'s endpoint on external address
    /// `address` (the first of two consecutive ones when `pair`), or why there is none: from
    /// the host's port blocks when they are on (NATTranslator-PortBlocks.swift), else from the
    /// configured range. Never one of the router's ports (counted when the internal port itself
    /// was the router's, so preservation had to give way). Every new mapping's port comes from here.
    @inline(__always)
    func allocatePort(slot: Int, internalPort: UInt16, hash: UInt32, address: Int, host: UInt32, pair: Bool = false,
                      reason: NATEventReason) -> (port: UInt16, reason: DropReason?) {
        if hasPortBlocks {
            return allocateBlockPort(slot: slot, internalPort: internalPort, hash: hash, address: address, host: host, pair: pair,
                                     reason: reason)
        }
        // Paired pooling: no spill-over to another address of the pool (the host would show
        // two addresses), so a pool address out of ports is a drop of its own.
        let exhausted: DropReason = address == 0 ? .portsExhausted : .poolAddressPortsExhausted
        let port = freePort(slot: slot, range: nil, internalPort: internalPort, hash: hash, address: address, pair: pair)
        if !pair, port != internalPort, localPorts.contains(slot: slot, port: internalPort),
           configuration.ports.range(for: internalPort, slot: slot).contains(internalPort) {
            counters[.localPortSkips] &+= 1
        }
        return port.map { ($0, nil) } ?? (0, exhausted)
    }

    /// A free port (the first of two consecutive ones when `pair`) in `range` (a port block's;
    /// nil: the configured range for `internalPort`), never one of the router's.
    @inline(__always)
    func freePort(slot: Int, range: ClosedRange<UInt16>?, internalPort: UInt16, hash: UInt32, address: Int, pair: Bool) -> UInt16? {
        pair
            ? configuration.ports.allocatePair(in: externalPorts, local: localPorts, slot: slot, range: range, internalPort: internalPort,
                                               startHash: hash, address: address)
            : configuration.ports.allocate(in: externalPorts, local: localPorts, slot: slot, range: range, internalPort: internalPort,
                                           startHash: hash, address: address)
    }

    /// True (and counted) when an inbound or hairpinned packet to `port` belongs to the router:
    /// a port its sockets hold, or a reserved one a dynamic mapping still has (until the next
    /// report evicts it); never a port forward's. A reserved port nobody holds and no mapping
    /// has is left to the unmatched path, as any closed port.
    @inline(__always)
    func isRoutersPort(slot: Int, port: UInt16, owner: Int32) -> Bool {
        guard localPorts.contains(slot: slot, port: port) else { return false } // the packet path's one load
        if owner >= 0 {
            guard !mappings[owner].isStatic else { return false }
        } else if !localPorts.containsHeld(slot: slot, port: port) {
            return false
        }
        counters[.inboundLocalPort] &+= 1
        return true
    }
}
