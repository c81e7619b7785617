// Port blocks in the translator (PortBlocks.swift): with `configuration.portBlocks` set, a
// new mapping's port comes from its host's blocks on the host's external address, a new
// block when they are full (up to the host's cap), and a block goes back when its last
// mapping is removed. Each allocation and release is one NAT event. Without port blocks
// none of this runs: `allocatePort` tests `!hasPortBlocks` once for every new mapping.

extension NATTranslator {
    /// A port for a new mapping (or the first of a pair) of `host` from its blocks, or why none.
    func allocateBlockPort(slot: Int, internalPort: UInt16, hash: UInt32, address: Int, host: UInt32, pair: Bool,
                           reason: NATEventReason) -> (port: UInt16, reason: DropReason?) {
        var block = portBlocks!.firstBlock(host: host, address: address)
        while block >= 0 {
            if let port = port(inBlock: block, slot: slot, internalPort: internalPort, hash: hash, pair: pair) {
                countLocalPortSkip(port, internalPort: internalPort, slot: slot, block: block)
                return (port, nil)
            }
            block = portBlocks!.nextBlock(block)
        }
        let exhausted: DropReason = address == 0 ? .portsExhausted : .poolAddressPortsExhausted
        if portBlocks!.blockCount(host: host, address: address) >= configuration.portBlocks!.maxPerHost { return (0, .hostPortBlockLimit) }
        // A free block may have no port to give: all of it in the router's reserved ephemeral
        // range (by default 32768-60999, about 43 % of the blocks) or held by forwards and the
        // router's sockets. The search passes such blocks over and takes the first that has one.
        var found: (block: Int, port: UInt16)? = nil
        _ = portBlocks!.freeBlock(address: address, hash: hash) { block in
            found = port(inBlock: block, slot: slot, internalPort: internalPort, hash: hash, pair: pair).map { (block, $0) }
            return found != nil
        }
        guard let found else { return (0, exhausted) }
        portBlocks!.take(found.block, host: host)
        counters[.portBlocksAllocated] &+= 1
        recordBlock(.portBlockAllocated, found.block, reason: reason)
        countLocalPortSkip(found.port, internalPort: internalPort, slot: slot, block: found.block)
        return (found.port, nil)
    }

    /// `localPortSkips` as without blocks (allocatePort): the internal port lay in the block
    /// the port came from, so it would have been kept, but the router holds or reserves it.
    @inline(__always)
    private func countLocalPortSkip(_ port: UInt16, internalPort: UInt16, slot: Int, block: Int) {
        if port != internalPort, portBlocks!.ports(of: block).contains(Int(internalPort)), localPorts.contains(slot: slot, port: internalPort) {
            counters[.localPortSkips] &+= 1
        }
    }

    private func port(inBlock block: Int, slot: Int, internalPort: UInt16, hash: UInt32, pair: Bool) -> UInt16? {
        let ports = portBlocks!.ports(of: block)
        let range = UInt16(ports.lowerBound)...UInt16(ports.upperBound)
        return freePort(slot: slot, range: range, internalPort: internalPort, hash: hash, address: portBlocks!.address(of: block), pair: pair)
    }

    /// A new dynamic mapping of `host` on `port` (allocated from its host's block). Counted
    /// only in a block `host` owns: counting one into a free block would make it look owned
    /// (its count no longer -1) with no allocation behind it, and the next flush would release
    /// it again — a release event without its allocation.
    func addBlockMapping(port: UInt16, address: Int, host: UInt32) {
        let block = portBlocks!.block(of: port, address: address)
        if block >= 0, portBlocks!.owner(of: block) == host { portBlocks!.addMapping(block) }
    }

    /// A dynamic mapping removed: its block goes back when it was the last.
    func removeBlockMapping(_ mapping: Mapping, reason: NATEventReason) {
        let block = portBlocks!.block(of: mapping.externalPort, address: Int(mapping.externalIndex))
        guard block >= 0, portBlocks!.owner(of: block) == mapping.internalAddress, portBlocks!.removeMapping(block) else { return }
        recordBlock(.portBlockReleased, block, reason: reason)
        portBlocks!.release(block)
        counters[.portBlocksReleased] &+= 1
    }

    /// A restored mapping's block: free (now its host's) or its host's already. False when
    /// another host holds it (the block size changed since the state was saved).
    func adoptBlock(port: UInt16, address: Int, host: UInt32) -> Bool {
        let block = portBlocks!.block(of: port, address: address)
        guard block >= 0 else { return false }
        if let owner = portBlocks!.owner(of: block) {
            guard owner == host else { return false }
        } else {
            portBlocks!.take(block, host: host)
            counters[.portBlocksAllocated] &+= 1
            recordBlock(.portBlockAllocated, block, reason: .restored)
        }
        portBlocks!.addMapping(block)
        return true
    }

    /// Every block released (the tables are emptied at once), each with its event.
    func releaseAllBlocks(reason: NATEventReason) {
        guard hasPortBlocks else { return }
        let blocks = (portBlocks?.blocksPerAddress ?? 0) * (1 + configuration.sourcePools.addresses.count)
        for block in 0..<blocks where portBlocks!.owner(of: block) != nil {
            recordBlock(.portBlockReleased, block, reason: reason)
            counters[.portBlocksReleased] &+= 1
        }
        portBlocks!.removeAll()
    }

    func recordBlock(_ kind: NATEventKind, _ block: Int, reason: NATEventReason) {
        guard events.capacity != 0, let host = portBlocks!.owner(of: block) else { return }
        let ports = portBlocks!.ports(of: block)
        record(NATEvent(timeNanoseconds: currentTime.nanoseconds, kind: kind, reason: reason, protocolNumber: 0,
                        internalAddress: host, internalPort: 0,
                        externalAddress: externalAddress(index: UInt8(portBlocks!.address(of: block)))?.value ?? 0,
                        externalPort: UInt16(ports.lowerBound), remotePort: UInt16(ports.upperBound)))
    }

    /// Port blocks owned now (0 without port blocks).
    public var portBlockCount: Int { portBlocks?.ownedCount ?? 0 }

    /// The blocks `host` holds on external address `address` (0 the WAN address), as port
    /// ranges, for `flows`-style reports and tests.
    public func portBlocks(of host: IPv4Address, address: Int = 0) -> [ClosedRange<UInt16>] {
        guard hasPortBlocks else { return [] }
        var result: [ClosedRange<UInt16>] = []
        var block = portBlocks!.firstBlock(host: host.value, address: address)
        while block >= 0 {
            let ports = portBlocks!.ports(of: block)
            result.append(UInt16(ports.lowerBound)...UInt16(ports.upperBound))
            block = portBlocks!.nextBlock(block)
        }
        return result.sorted { $0.lowerBound < $1.lowerBound }
    }
}
