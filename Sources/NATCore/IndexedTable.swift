// The one table shape of the core: rows in a RowStore (free list, high-water mark) and up to
// two FlowHashIndexes over them, allocated once at the cap and owned here (not copyable: the
// deinit frees them; growing replaces them). Each kind of row says what a free row is and
// which hashes file it; its table's keys and lookups are an extension on
// `IndexedTable<ThatRow>` next to the row (MappingTable.swift, SessionTable.swift, …). Internal
// to NATCore and generic over a concrete row, so the optimiser specialises every use.

/// A row of an `IndexedTable`.
protocol TableRow: BitwiseCopyable {
    /// A free row: what `remove` leaves behind.
    static var empty: Self { get }
    /// The free-row sentinel (a zero address, a -1 owner, …): true for `empty`.
    var isFree: Bool { get }
    /// How many hash indexes the table keeps over these rows: 0, 1 or 2.
    static var indexCount: Int { get }
    /// The row's hash in the first index.
    var hash: UInt32 { get }
    /// The row's hash in the second index, or nil while it is not filed there.
    var secondHash: UInt32? { get }
}

extension TableRow {
    static var indexCount: Int { 1 }
    var secondHash: UInt32? { nil }
}

struct IndexedTable<Row: TableRow>: ~Copyable {
    private(set) var store: RowStore<Row>
    /// `Row.indexCount` indexes of `mask + 1` slots each, one after the other; nil without index.
    private var slots: UnsafeMutablePointer<UInt64>?
    /// Where the second index starts (kept, not computed: the outbound fast path looks here).
    private var secondSlots: UnsafeMutablePointer<UInt64>?
    private var mask: Int
    /// The per-process secret of the table's hashes (`flowHash`).
    let seed: UInt64

    init(capacity: Int, seed: UInt64 = 0) {
        store = RowStore(capacity: capacity, empty: Row.empty)
        mask = FlowHashIndex.slotCount(rows: capacity) - 1
        slots = Self.makeSlots(mask + 1)
        secondSlots = Row.indexCount > 1 ? slots.unsafelyUnwrapped + (mask + 1) : nil
        self.seed = seed
    }

    deinit { slots?.deallocate() }

    private static func makeSlots(_ slotCount: Int) -> UnsafeMutablePointer<UInt64>? {
        guard Row.indexCount > 0 else { return nil }
        let slots = UnsafeMutablePointer<UInt64>.allocate(capacity: Row.indexCount * slotCount)
        slots.initialize(repeating: 0, count: Row.indexCount * slotCount)
        return slots
    }

    var count: Int { store.count }
    var capacity: Int { store.capacity }
    var freeCount: Int { store.freeCount }
    /// Rows at or above this are free (see `RowStore.highWater`): loops over live rows stop here.
    var highWater: Int { store.highWater }
    /// Index bytes (the reassembler's `allocatedBytes`).
    var indexBytes: Int { Row.indexCount * (mask + 1) * MemoryLayout<UInt64>.stride }

    @inline(__always)
    var rows: UnsafeMutablePointer<Row> { store.rows }

    @inline(__always)
    subscript(row: Int32) -> Row {
        get { store.rows[Int(row)] }
        nonmutating set { store.rows[Int(row)] = newValue }
    }

    @inline(__always)
    func pointer(_ row: Int32) -> UnsafeMutablePointer<Row> { store.rows + Int(row) }

    @inline(__always)
    private var index: FlowHashIndex { FlowHashIndex(slots: slots.unsafelyUnwrapped, slotCount: mask + 1) }

    @inline(__always)
    private var secondIndex: FlowHashIndex { FlowHashIndex(slots: secondSlots.unsafelyUnwrapped, slotCount: mask + 1) }

    /// The row filed under `hash` in the first index for which `matches` holds, or -1.
    @inline(__always)
    func find(hash: UInt32, _ matches: (Row) -> Bool) -> Int32 {
        let rows = store.rows
        return index.find(hash: hash) { matches(rows[Int($0)]) }
    }

    /// The row filed under `hash` in the second index for which `matches` holds, or -1.
    @inline(__always)
    func findInSecondIndex(hash: UInt32, _ matches: (Row) -> Bool) -> Int32 {
        let rows = store.rows
        return secondIndex.find(hash: hash) { matches(rows[Int($0)]) }
    }

    /// Adds a row, filed under its hashes as they are; -1 when the table is full. A table whose
    /// row cannot know a hash itself has its own insert that fills it in first (sessions:
    /// `insertSession`, the tuple hash).
    @inline(__always)
    mutating func insert(_ value: Row) -> Int32 {
        let row = store.take()
        guard row >= 0 else { return -1 }
        store.rows[Int(row)] = value
        file(row, value)
        return row
    }

    /// Files a row whose `secondHash` became known after `insert` in the second index.
    mutating func fileInSecondIndex(_ row: Int32) {
        if let hash = store.rows[Int(row)].secondHash { secondIndex.insert(hash: hash, row: row) }
    }

    @inline(__always)
    private func file(_ row: Int32, _ value: Row) {
        if Row.indexCount > 0 { index.insert(hash: value.hash, row: row) }
        if Row.indexCount > 1, let hash = value.secondHash { secondIndex.insert(hash: hash, row: row) }
    }

    @inline(__always)
    mutating func remove(_ row: Int32) {
        let value = store.rows[Int(row)]
        if Row.indexCount > 0 { index.remove(hash: value.hash, row: row) }
        if Row.indexCount > 1, let hash = value.secondHash { secondIndex.remove(hash: hash, row: row) }
        store.give(row, empty: Row.empty)
    }

    mutating func removeAll() {
        if Row.indexCount > 0 { slots.unsafelyUnwrapped.update(repeating: 0, count: Row.indexCount * (mask + 1)) }
        store.reset(empty: Row.empty)
    }

    /// Makes room for `capacity` rows. Rows keep their numbers (other tables refer to them);
    /// the indexes are rebuilt for the new size.
    mutating func grow(to capacity: Int) {
        guard capacity > store.capacity else { return }
        store.grow(to: capacity, empty: Row.empty) { $0.isFree }
        slots?.deallocate()
        mask = FlowHashIndex.slotCount(rows: capacity) - 1
        slots = Self.makeSlots(mask + 1)
        secondSlots = Row.indexCount > 1 ? slots.unsafelyUnwrapped + (mask + 1) : nil
        for row in 0..<capacity where !store.rows[row].isFree { file(Int32(row), store.rows[row]) }
    }
}

extension IndexedTable where Row: ExpiringRow {
    /// The next row stale at `now` the sweep finds within `budget` more rows, or -1
    /// (RowStore.nextStaleRow; IndexedTable-Expiry.swift).
    @inline(__always)
    mutating func nextStaleRow(now: NATTime, budget: inout Int) -> Int32 {
        store.nextStaleRow(now: now.nanoseconds, budget: &budget)
    }
}
