import NATCore

// Capture time as the translator's clock: nanoseconds since the first packet, never going
// back (interfaces of one capture can interleave slightly out of order), with the daemon's
// expiry sweep (Engine: every 10 ms, 4096 rows) run at each 10 ms instant that passes.

struct ReplayClock {
    static let sweepBudget = 4096

    private var first: UInt64?
    private var lastAbsolute: UInt64 = 0
    private(set) var now = NATTime(nanoseconds: 0)
    private var lastSweep = NATTime(nanoseconds: 0)

    /// The capture timestamp to write for a packet: its own, or (a pcapng Simple Packet Block
    /// has none) the previous packet's.
    mutating func absolute(_ timestamp: UInt64?) -> UInt64 {
        if let timestamp { lastAbsolute = timestamp }
        return lastAbsolute
    }

    /// Moves the clock to a packet's capture time and runs the sweeps due by then.
    mutating func advance(to timestamp: UInt64?, translator: NATTranslator) {
        guard let timestamp else { return }
        let start = first ?? timestamp
        first = start
        let relative = NATTime(nanoseconds: timestamp >= start ? timestamp - start : 0)
        if relative > now { now = relative }
        sweep(translator)
    }

    private mutating func sweep(_ translator: NATTranslator) {
        let interval = Engine.sweepInterval.nanoseconds
        var due = now.duration(since: lastSweep).nanoseconds / interval
        // Within a long quiet stretch, the sweeps before its last few passes over the table
        // change nothing those do not (no packet arrives to see the difference), so a gap of
        // days does not cost millions of calls.
        let passes = UInt64(translator.configuration.maxSessions / Self.sweepBudget + 1) * 2
        if due > passes {
            lastSweep = NATTime(nanoseconds: lastSweep.nanoseconds + (due - passes) * interval)
            due = passes
        }
        for _ in 0..<due {
            lastSweep = NATTime(nanoseconds: lastSweep.nanoseconds + interval)
            translator.expire(now: lastSweep, budget: Self.sweepBudget)
        }
    }
}
