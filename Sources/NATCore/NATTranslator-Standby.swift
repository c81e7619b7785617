// A router that becomes the HA standby hands translation to its peer: its own flows are
// dropped whole (the peer translates them from the replicated state now), so that a later
// takeover restores into an empty translator. Not on the packet path.

extension NATTranslator {
    /// Removes every session, mapping, address-only row, redirected connection, PPTP call,
    /// helper connection and expectation (counted as flushed), each with its removal event
    /// (reason `standby`); port forwards are installed again. Returns how many flows (sessions,
    /// address-only rows, redirects) were removed.
    @discardableResult
    public func removeAllFlows(now: NATTime) -> Int {
        currentTime = now // the time the removal events carry
        let removed = sessions.count + addressOnly.count + redirectSessions.count
        counters[.sessionsFlushed] &+= UInt64(sessions.count + addressOnly.count)
        recordFlushOfAll(reason: .standby)
        if events.capacity != 0 {
            for i in 0..<redirectSessions.highWater where redirectSessions[Int32(i)].localPort != 0 {
                recordRedirect(.redirectRemoved, Int32(i), reason: .standby)
            }
        }
        releaseAllBlocks(reason: .standby)
        sessions.removeAll()
        mappings.removeAll()
        hosts.removeAll()
        externalPorts.removeAll()
        if hasPortBlocks { portBlocks!.removeAll() }
        // Left behind, a row would make a later takeover's restore refuse the whole copy
        // (it restores into an empty translator only).
        addressOnly.removeAll()
        redirectSessions.removeAll()
        redirectHosts.removeAll()
        greCalls.removeAll()
        helperConnections.removeAll()
        expectations.removeAll()
        installForwards()
        return removed
    }
}
