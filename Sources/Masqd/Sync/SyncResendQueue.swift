// The active's full resync being delivered: the encoded snapshot, cut into chunks, each
// with when it was last sent (0: not yet), and how many from the first the standby has
// acknowledged. Chunks are sent paced (a budget per main-loop round), sent again when a nack
// asks or when no ack covered them within the resend delay. Bounded: one resync at a time
// (a newer one replaces it: it carries the whole state), of at most `capacity` chunks,
// which the table caps bound; a larger snapshot is refused and counted.

/// When an item of a resend queue (resync chunks here, increment batches in
/// SyncIncrementQueue) was last sent, and when it goes again: the timing both share.
enum SyncResendTiming {
    /// Never sent.
    static let never: UInt64 = 0
    /// Asked for again by a nack: goes at the next send.
    static let dueNow = UInt64.max
    /// A nack within this long of an item's last send is taken to be about the send before
    /// (the standby nacks a gap at each later item of a burst): not sent yet again.
    static let nackHoldoff: UInt64 = 50_000_000

    /// Whether an item last sent at `last` goes now (`after`: the resend delay).
    static func isDue(_ last: UInt64, now: UInt64, after: UInt64) -> Bool { last == never || last == dueNow || now &- last >= after }
    /// The stamp of an item sent at `now` (never `never` or `dueNow`).
    static func sent(at now: UInt64) -> UInt64 { min(max(now, 1), dueNow - 1) }
    /// The stamp after a nack asked for an item last sent at `last`.
    static func nacked(_ last: UInt64, now: UInt64) -> UInt64 {
        last != never && (last == dueNow || now &- last >= nackHoldoff) ? dueNow : last
    }
}

struct SyncResendQueue {
    let capacity: Int
    private(set) var resync: UInt32 = 0
    private var snapshot: [UInt8] = []
    /// Per chunk: when it was last sent (SyncResendTiming).
    private var lastSent: [UInt64] = []
    /// Chunks 0..<acknowledged are known to have arrived.
    private(set) var acknowledged = 0

    init(capacity: Int) { self.capacity = max(1, capacity) }

    var chunkCount: Int { lastSent.count }
    /// Chunks not yet acknowledged.
    var outstanding: Int { chunkCount - acknowledged }

    /// Replaces what was queued with `encoded` as resync `resync`. False (nothing queued) if it
    /// needs more than `capacity` chunks.
    mutating func start(resync: UInt32, encoded: [UInt8]) -> Bool {
        let chunks = max(1, (encoded.count + SyncMessage.maxChunkData - 1) / SyncMessage.maxChunkData)
        guard chunks <= capacity else { return false }
        self.resync = resync
        snapshot = encoded
        lastSent = [UInt64](repeating: 0, count: chunks)
        acknowledged = 0
        return true
    }

    /// The standby has chunks 0..<received of `resync`.
    mutating func acknowledge(resync: UInt32, received: UInt32) {
        guard resync == self.resync else { return }
        acknowledged = max(acknowledged, min(Int(received), chunkCount))
    }

    /// The standby misses chunks from...to of `resync`: they are sent again next (those sent
    /// within SyncResendTiming.nackHoldoff before `now` excepted).
    mutating func resendRequested(resync: UInt32, from: UInt32, to: UInt32, now: UInt64) {
        let first = max(Int(from), acknowledged), last = min(Int(to), chunkCount - 1)
        guard resync == self.resync, first <= last else { return } // nothing asked that is still owed
        for i in first...last { lastSent[i] = SyncResendTiming.nacked(lastSent[i], now: now) }
    }

    func chunk(_ index: Int) -> [UInt8] {
        let start = index * SyncMessage.maxChunkData
        return Array(snapshot[start..<min(start + SyncMessage.maxChunkData, snapshot.count)])
    }

    /// Calls `send(index, data)` for each unacknowledged chunk never sent, or last sent at
    /// least `after` ns before `now`, in order, at most `budget` of them; stops when `send`
    /// returns false (the socket is full). Returns how many went for the first time and again.
    mutating func sendDue(now: UInt64, after: UInt64, budget: Int, send: (UInt32, [UInt8]) -> Bool) -> (fresh: Int, again: Int) {
        var fresh = 0, again = 0
        var i = acknowledged
        while i < chunkCount, fresh + again < budget {
            let last = lastSent[i]
            if SyncResendTiming.isDue(last, now: now, after: after) {
                guard send(UInt32(i), chunk(i)) else { break }
                if last == SyncResendTiming.never { fresh += 1 } else { again += 1 }
                lastSent[i] = SyncResendTiming.sent(at: now)
            }
            i += 1
        }
        return (fresh, again)
    }
}
