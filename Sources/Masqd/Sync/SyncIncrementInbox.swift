// The standby's side of the increments: batches handed on to be applied strictly in number
// order, on top of the full resync they follow. A full resync says which batch it includes
// (its base); batches after it are applied to it, including those already applied to the
// previous copy (kept here for that: the resync was exported before they were made, and it
// arrives after them). Batches after a gap wait for it (the gap is nacked). Before the first
// resync nothing is applied (there is nothing to apply to): batches wait.
//
// Bounded: `maxRecords` increments waiting and as many kept for replay (a helper state
// weighs its bytes in records: SyncIncrementBatch.weight). Past that, a batch
// that would wait is dropped (a gap, nacked: the active sends it again or resyncs), and kept
// ones are forgotten from the oldest; a resync older than one forgotten cannot be brought up
// to date, and `needsResync` says so (the standby asks for another). No imports (fuzz target).

struct SyncIncrementInbox {
    let maxRecords: Int
    /// The last batch applied (every one up to it is in the copy); nil before the first resync.
    private(set) var applied: UInt64?
    private var waiting: [UInt64: SyncIncrementBatch] = [:]
    private var waitingRecords = 0
    /// Batches applied since the oldest resync that may still arrive, in order, for replay.
    private var kept: [SyncIncrementBatch] = []
    private var keptRecords = 0
    /// The newest batch forgotten from `kept` (0: none).
    private var forgottenThrough: UInt64 = 0
    /// The last resync could not be brought up to date (it needed forgotten batches).
    private(set) var needsResync = false
    /// Batches dropped because too much was waiting.
    private(set) var droppedBatches: UInt64 = 0

    init(maxRecords: Int) { self.maxRecords = max(1, maxRecords) }

    var waitingCount: Int { waiting.count }

    /// A batch arrived: the batches that can be applied now, in order (none, it, or it and
    /// those that waited for it). Duplicates and batches already applied are ignored.
    mutating func add(_ batch: SyncIncrementBatch) -> [SyncIncrementBatch] {
        if let applied, batch.number <= applied { return [] }
        guard waiting[batch.number] == nil else { return [] }
        guard waitingRecords + batch.weight <= maxRecords else {
            droppedBatches &+= 1
            return []
        }
        waiting[batch.number] = batch
        waitingRecords += batch.weight
        return releaseInOrder()
    }

    /// A full resync that includes every batch up to `base` replaced the copy: the batches to
    /// apply to it, in order (kept ones after `base`, then waiting ones without a gap).
    mutating func rebase(_ base: UInt64) -> [SyncIncrementBatch] {
        kept.removeAll { $0.number <= base }
        needsResync = forgottenThrough > base // batches after the base were forgotten: this copy lacks them
        let replay = kept
        keptRecords = kept.reduce(0) { $0 + $1.weight }
        applied = kept.last?.number ?? base
        for number in Array(waiting.keys) where number <= applied! {
            waitingRecords -= waiting.removeValue(forKey: number)!.weight
        }
        return replay + releaseInOrder()
    }

    /// The batch numbers missing before the first waiting one (to nack), or nil.
    var gap: ClosedRange<UInt64>? {
        guard let applied, let first = waiting.keys.min(), first > applied &+ 1 else { return nil }
        return (applied &+ 1)...(first - 1)
    }

    /// The peer restarted: its batch numbers start again.
    mutating func reset() {
        self = SyncIncrementInbox(maxRecords: maxRecords)
    }

    private mutating func releaseInOrder() -> [SyncIncrementBatch] {
        guard var next = applied.map({ $0 &+ 1 }) else { return [] }
        var out: [SyncIncrementBatch] = []
        while let batch = waiting.removeValue(forKey: next) {
            waitingRecords -= batch.weight
            out.append(batch)
            kept.append(batch)
            keptRecords += batch.weight
            applied = next
            next &+= 1
        }
        while keptRecords > maxRecords, !kept.isEmpty {
            let forgotten = kept.removeFirst()
            keptRecords -= forgotten.weight
            forgottenThrough = forgotten.number
        }
        return out
    }
}
