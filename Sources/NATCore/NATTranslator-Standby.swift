// A router that becomes the HA standby hands translation to its peer: its own flows are
// dropped whole (the peer translates them from the replicated state now), so that a later
// takeover restores into an empty translator. Not on the packet path.

extension NATTranslator {
    /// Removes every session, mapping, helper connection and expectation (counted as flushed);
    /// port forwards are installed again. Returns how many sessions were removed.
    @discardableResult
    public func removeAllFlows() -> Int {
        let removed = sessions.count
        counters[.sessionsFlushed] &+= UInt64(removed)
        sessions.removeAll()
        mappings.removeAll()
        hosts.removeAll()
        externalPorts.removeAll()
        if portBlocks != nil { portBlocks!.removeAll() }
        helperConnections.removeAll()
        expectations.removeAll()
        installForwards()
        return removed
    }
}
