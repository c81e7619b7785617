// Fixed-capacity row storage with a free list: the backing of every indexed table
// (IndexedTable.swift). Allocated once; taking and returning rows never allocates. The
// store owns its buffers (FixedBuffer): not copyable, freed with it.

struct RowStore<Row: BitwiseCopyable>: ~Copyable {
    private let rowBuffer: FixedBuffer<Row>
    private let freeBuffer: FixedBuffer<Int32>
    let capacity: Int
    private(set) var freeCount: Int
    /// Every row at or above this one is free, so walks over the live rows (the expiry sweep,
    /// listings, checkpoints) stop here instead of at `capacity`. Raised by `take`, lowered
    /// only at the end of a pass of the sweep (`endSweepPass`).
    private(set) var highWater = 0
    /// The highest row taken since the last pass of the sweep ended, or -1.
    private var highestTakenThisPass: Int32 = -1
    /// The incremental expiry sweep's place (`nextStaleRow`), kept with the mark its passes lower.
    private var sweep = SweepCursor()

    init(capacity: Int, empty: Row) {
        self.capacity = capacity
        rowBuffer = FixedBuffer(count: capacity, repeating: empty)
        freeBuffer = FixedBuffer(count: capacity, repeating: 0)
        freeCount = capacity
        // Hand out low rows first: keeps the live set dense for the expiry sweep and caches.
        for i in 0..<capacity { freeRows[i] = Int32(capacity - 1 - i) }
    }

    @inline(__always)
    var rows: UnsafeMutablePointer<Row> { rowBuffer.base }
    @inline(__always)
    private var freeRows: UnsafeMutablePointer<Int32> { freeBuffer.base }

    var count: Int { capacity - freeCount }

    /// A free row, or -1 when every row is taken.
    @inline(__always)
    mutating func take() -> Int32 {
        guard freeCount > 0 else { return -1 }
        freeCount -= 1
        let row = freeRows[freeCount]
        if Int(row) >= highWater { highWater = Int(row) + 1 }
        if row > highestTakenThisPass { highestTakenThisPass = row }
        return row
    }

    /// The sweep looked at every row below `highWater`; the highest it kept is `highestKept`.
    /// A row taken now was either taken when the sweep passed it (so kept or freed by it) or
    /// taken after (so recorded by `take`): the mark can drop to just above both.
    private mutating func endSweepPass(highestKept: Int32) {
        highWater = Int(max(highestKept, highestTakenThisPass)) + 1
        highestTakenThisPass = -1
    }

    @inline(__always)
    mutating func give(_ row: Int32, empty: Row) {
        rows[Int(row)] = empty
        freeRows[freeCount] = row
        freeCount += 1
    }

    /// Makes room for `newCapacity` rows (at least `capacity`): every row keeps its number,
    /// the added rows are free; the old buffers are freed with the old store. For a reload
    /// that needs more rows than the table was made with (NATTranslator-Reconfigure.swift).
    mutating func grow(to newCapacity: Int, empty: Row, isFree: (Row) -> Bool) {
        var bigger = RowStore(capacity: newCapacity, empty: empty)
        bigger.rows.update(from: rows, count: capacity)
        var free = 0
        for i in stride(from: newCapacity - 1, through: 0, by: -1) where i >= capacity || isFree(rows[i]) {
            bigger.freeRows[free] = Int32(i) // low rows handed out first, as in init
            free += 1
        }
        bigger.freeCount = free
        bigger.highWater = highWater
        bigger.highestTakenThisPass = highestTakenThisPass
        bigger.sweep = sweep
        self = bigger
    }

    mutating func reset(empty: Row) {
        rows.update(repeating: empty, count: capacity)
        for i in 0..<capacity { freeRows[i] = Int32(capacity - 1 - i) }
        freeCount = capacity
        highWater = 0
        highestTakenThisPass = -1
        sweep = SweepCursor()
    }
}

/// Where the incremental sweep is in a pass over a RowStore: the next row it looks at, and
/// the highest row it kept so far (-1: none).
struct SweepCursor {
    var next = 0
    var highestKept: Int32 = -1
}

extension RowStore where Row: ExpiringRow {
    /// The next row stale at `now` (NATTime nanoseconds) the sweep finds within `budget` more
    /// rows (taken or free, counted down), from where the last call left it; -1 when the
    /// budget is spent or no row is taken. Reaching `highWater` ends a pass (`endSweepPass`)
    /// and starts the next at row 0. The walk runs on local copies, stored back once, and in
    /// stretches that end at the mark or the budget: one bound to test per row.
    @inline(__always)
    mutating func nextStaleRow(now: UInt64, budget: inout Int) -> Int32 {
        var place = sweep
        var left = budget
        defer {
            sweep = place
            budget = left
        }
        while left > 0 {
            if place.next >= highWater {
                endSweepPass(highestKept: place.highestKept)
                place = SweepCursor()
                if highWater == 0 { return -1 }
            }
            // Up to the mark or the end of the budget, whichever comes first.
            let from = place.next
            let end = min(highWater, from + left)
            var row = from
            while row < end {
                let value = rows[row]
                if !value.isFree {
                    if value.expires <= now {
                        place.next = row + 1
                        left -= row + 1 - from
                        return Int32(row)
                    }
                    place.highestKept = Int32(row)
                }
                row += 1
            }
            place.next = end
            left -= end - from
        }
        return -1
    }
}
