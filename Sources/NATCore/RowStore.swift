// Fixed-capacity row storage with a free list: the backing of the mapping and session
// tables. Allocated once; taking and returning rows never allocates.

struct RowStore<Row: BitwiseCopyable> {
    let rows: UnsafeMutablePointer<Row>
    private let freeRows: UnsafeMutablePointer<Int32>
    let capacity: Int
    private(set) var freeCount: Int

    init(capacity: Int, empty: Row) {
        self.capacity = capacity
        rows = .allocate(capacity: capacity)
        rows.initialize(repeating: empty, count: capacity)
        freeRows = .allocate(capacity: capacity)
        // Hand out low rows first: keeps the live set dense for the expiry sweep and caches.
        for i in 0..<capacity { freeRows[i] = Int32(capacity - 1 - i) }
        freeCount = capacity
    }

    func deallocate() {
        rows.deallocate()
        freeRows.deallocate()
    }

    var count: Int { capacity - freeCount }

    /// A free row, or -1 when every row is taken.
    @inline(__always)
    mutating func take() -> Int32 {
        guard freeCount > 0 else { return -1 }
        freeCount -= 1
        return freeRows[freeCount]
    }

    @inline(__always)
    mutating func give(_ row: Int32, empty: Row) {
        rows[Int(row)] = empty
        freeRows[freeCount] = row
        freeCount += 1
    }

    /// These rows in a store of `newCapacity` rows (at least this one's): every row keeps its
    /// number, the added rows are free. This store is deallocated. For a reload that needs
    /// more rows than the table was made with (NATTranslator-Reconfigure.swift).
    func grown(to newCapacity: Int, empty: Row, isFree: (Row) -> Bool) -> RowStore<Row> {
        var bigger = RowStore(capacity: newCapacity, empty: empty)
        bigger.rows.update(from: rows, count: capacity)
        var free = 0
        for i in stride(from: newCapacity - 1, through: 0, by: -1) where i >= capacity || isFree(rows[i]) {
            bigger.freeRows[free] = Int32(i) // low rows handed out first, as in init
            free += 1
        }
        bigger.freeCount = free
        deallocate()
        return bigger
    }

    mutating func reset(empty: Row) {
        rows.update(repeating: empty, count: capacity)
        for i in 0..<capacity { freeRows[i] = Int32(capacity - 1 - i) }
        freeCount = capacity
    }
}
