// A full table and a new flow (issue #20 item 5): the new flow may take the row of a session
// that has expired but that the sweep has not reached yet. Looking costs the new flow at
// most `reclaimBudget` session rows, from the sweep's own cursor (so successive looks cover
// the table instead of the same stretch), and nothing else — the expectation table is the
// main loop's sweep's job. A look that finds nothing makes the next ones wait
// `reclaimQuietInterval`: a flood of new flows against a table full of live sessions (spoofed
// sources, say) is refused at the cost of a comparison each, while the main loop's sweep
// (4096 rows every 10 ms) goes on freeing what expires.

extension NATTranslator {
    static let reclaimBudget = 64
    static let reclaimQuietInterval = NATDuration(nanoseconds: 1_000_000)

    /// A table is full: look for expired sessions, within the budget and the rate. True if room was made.
    func reclaimExpired(now: NATTime) -> Bool {
        guard now.nanoseconds >= reclaimNotBefore else {
            counters.reclaimStepsSkipped &+= 1
            return false
        }
        counters.reclaimSteps &+= 1
        var removed = 0
        var examined = 0
        let limit = min(Self.reclaimBudget, sessions.highWater)
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
        counters.sessionsExpired &+= UInt64(removed)
        if removed == 0 { reclaimNotBefore = now.nanoseconds &+ Self.reclaimQuietInterval.nanoseconds }
        return removed > 0
    }
}
