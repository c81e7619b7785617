// Idle expiry. Sessions expire lazily when a packet finds them stale, and an incremental
// sweep (a cursor over the rows, a bounded number per call) frees the ones nobody touches,
// so no pause grows with the table.

extension NATTranslator {
    /// Examines up to `budget` session rows and removes the expired ones. Returns how many were removed.
    @discardableResult
    public func expire(now: NATTime, budget: Int) -> Int {
        expireExpectations(now: now)
        let capacity = sessions.capacity
        var removed = 0
        for _ in 0..<max(0, min(budget, capacity)) { // a negative budget examines nothing
            let row = Int32(sweepCursor)
            sweepCursor += 1
            if sweepCursor == capacity { sweepCursor = 0 }
            let session = sessions[row]
            if session.mapping >= 0, session.expires <= now.nanoseconds {
                removeSession(row)
                removed += 1
            }
        }
        counters.sessionsExpired &+= UInt64(removed)
        return removed
    }

    /// A table is full: sweep a bounded stretch for expired rows. True if room was made.
    func reclaimExpired(now: NATTime) -> Bool {
        expire(now: now, budget: 4096) > 0
    }
}
