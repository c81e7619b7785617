// The active's increment batches not yet acknowledged by the standby, each with when it was
// last sent: sent once in order, again on a nack or when no ack covered it within the resend
// delay (FTFW's resend queue, by batch number; the timing is SyncResendQueue.swift's
// SyncResendTiming). Bounded: `capacity` batches. When it is full
// the oldest batch goes if the full resync under way already contains it; otherwise the
// standby is too far behind to be served from here, and the caller falls back to a full
// resync. No imports (compiled into the fuzz target).

struct SyncIncrementQueue {
    let capacity: Int
    private var batches: [SyncIncrementBatch] = []
    /// Per batch (same index): when it was last sent (SyncResendTiming).
    private var lastSent: [UInt64] = []
    /// The last batch number given out (batches are numbered from 1 in the sender's epoch).
    private(set) var lastNumber: UInt64 = 0

    init(capacity: Int) { self.capacity = max(1, capacity) }

    var outstanding: Int { batches.count }
    /// The oldest batch still held (nil: none).
    var firstHeld: UInt64? { batches.first?.number }

    enum Appended: Equatable {
        case queued
        /// The oldest batch was dropped to make room (a full resync holds it).
        case droppedCovered
        /// Full of batches no resync holds: everything held was dropped; a full resync must follow.
        case overflowed
    }

    /// Numbers `records` as the next batch and holds it. `coveredThrough`: the base of the
    /// full resync being delivered (its batches up to that are in it), or 0.
    mutating func append(_ records: [SyncIncrement], helperStates: [SyncHelperState] = [], wallClock: UInt64, coveredThrough: UInt64) -> Appended {
        lastNumber &+= 1
        var outcome = Appended.queued
        if batches.count >= capacity {
            if let first = batches.first, first.number <= coveredThrough {
                batches.removeFirst()
                lastSent.removeFirst()
                outcome = .droppedCovered
            } else {
                batches.removeAll()
                lastSent.removeAll()
                outcome = .overflowed
            }
        }
        batches.append(SyncIncrementBatch(number: lastNumber, wallClock: wallClock, records: records, helperStates: helperStates))
        lastSent.append(0)
        return outcome
    }

    /// The standby applied every batch up to `through`.
    mutating func acknowledge(through: UInt64) {
        let done = batches.prefix { $0.number <= through }.count
        batches.removeFirst(done)
        lastSent.removeFirst(done)
    }

    /// The standby misses batches `from...to`: those held go again next (but those sent within
    /// SyncResendTiming.nackHoldoff before `now`). Returns false when some of them are no
    /// longer held (only a full resync can bring the standby up to date).
    mutating func resendRequested(from: UInt64, to: UInt64, now: UInt64) -> Bool {
        guard from <= to else { return true }
        for i in batches.indices where batches[i].number >= from && batches[i].number <= to {
            lastSent[i] = SyncResendTiming.nacked(lastSent[i], now: now)
        }
        guard let first = batches.first?.number else { return to > lastNumber } // nothing held: only future numbers are fine
        return from >= first || from > lastNumber
    }

    /// Calls `send(batch, again)` for each batch never sent, asked for again, or last sent at
    /// least `after` ns before `now`, in order, at most `budget`; stops when `send` returns
    /// false. Returns how many went for the first time and again.
    mutating func sendDue(now: UInt64, after: UInt64, budget: Int, send: (SyncIncrementBatch, Bool) -> Bool) -> (fresh: Int, again: Int) {
        var fresh = 0, again = 0
        for i in batches.indices where fresh + again < budget {
            let last = lastSent[i]
            guard SyncResendTiming.isDue(last, now: now, after: after) else { continue }
            guard send(batches[i], last != SyncResendTiming.never) else { break }
            if last == SyncResendTiming.never { fresh += 1 } else { again += 1 }
            lastSent[i] = SyncResendTiming.sent(at: now)
        }
        return (fresh, again)
    }
}
