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
        return sweepSessions(now: now, examining: min(budget, sessions.highWater)) // a negative budget examines nothing
    }

    /// Advances the session sweep by up to `limit` rows from its cursor (wrapping at the high
    /// water mark), expiring the stale ones; returns how many it removed. The main loop's
    /// expiry and the full-table reclaim share it, so both move the one cursor the same way.
    func sweepSessions(now: NATTime, examining limit: Int) -> Int {
        sweep(budget: limit, next: { sessions.nextStaleRow(now: now, budget: &$0) }, expire: expireSession)
    }

    /// One table's share of the sweep: `next` is its `nextStaleRow` (IndexedTable-Expiry.swift),
    /// given what is left of `budget`; `expire` removes and counts each stale row it hands out.
    /// Returns how many were removed. Each step is a separate access to the table, so the
    /// removal in between may change it.
    @inline(__always)
    func sweep(budget: Int, next: (inout Int) -> Int32, expire: (Int32) -> Void) -> Int {
        var budget = budget
        var removed = 0
        while case let row = next(&budget), row >= 0 {
            expire(row)
            removed += 1
        }
        return removed
    }

    /// `row` (a lookup's answer), or -1 when it is `stale`: `expire` removes and counts it then.
    @inline(__always)
    func live(_ row: Int32, stale: Bool, expire: (Int32) -> Void) -> Int32 {
        guard stale else { return row }
        expire(row)
        return -1
    }

    /// Removes a stale session (the sweep's, or one a lookup found) and counts it.
    func expireSession(_ row: Int32) {
        removeSession(row, reason: .expired)
        counters[.sessionsExpired] &+= 1
    }
}
