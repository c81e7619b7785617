// Idle expiry. Sessions expire lazily when a packet finds them stale, and an incremental
// sweep (a cursor over the rows, a bounded number per call) frees the ones nobody touches,
// so no pause grows with the table.

extension NATTranslator {
    /// Examines up to `budget` session rows and removes the expired ones. Returns how many were removed.
    /// The sweep walks only up to the table's high-water mark, so a nearly empty table costs
    /// little; one call never walks a row twice.
    @discardableResult
    public func expire(now: NATTime, budget: Int) -> Int {
        currentTime = now
        expireExpectations(now: now)
        expireAddressOnly(now: now, budget: budget)
        if !configuration.redirects.isEmpty { expireRedirects(now: now, budget: budget) }
        let removed = sweepSessions(now: now, examining: min(budget, sessions.highWater)) // a negative budget examines nothing
        counters[.sessionsExpired] &+= UInt64(removed)
        return removed
    }

    /// Advances the session sweep by up to `limit` rows from its cursor (wrapping at the high
    /// water mark), removing the expired ones; returns how many it removed. The main loop's
    /// expiry and the full-table reclaim share it, so both move the one cursor the same way.
    func sweepSessions(now: NATTime, examining limit: Int) -> Int {
        var removed = 0
        var examined = 0
        while examined < limit {
            if sweepCursor >= sessions.highWater {
                sessions.endSweepPass(highestLiveSeen: sweepHighestLive)
                sweepCursor = 0
                sweepHighestLive = -1
                if sessions.highWater == 0 { break }
                continue
            }
            let row = Int32(sweepCursor)
            sweepCursor += 1
            examined += 1
            let session = sessions[row]
            guard session.mapping >= 0 else { continue }
            if session.expires <= now.nanoseconds {
                removeSession(row, reason: .expired)
                removed += 1
            } else {
                sweepHighestLive = row
            }
        }
        return removed
    }
}
