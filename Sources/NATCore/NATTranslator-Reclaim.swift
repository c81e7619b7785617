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
            counters[.reclaimStepsSkipped] &+= 1
            return false
        }
        counters[.reclaimSteps] &+= 1
        let removed = sweepSessions(now: now, examining: min(Self.reclaimBudget, sessions.highWater))
        if removed == 0 { reclaimNotBefore = now.nanoseconds &+ Self.reclaimQuietInterval.nanoseconds }
        return removed > 0
    }
}
