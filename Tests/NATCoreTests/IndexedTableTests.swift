import Testing
@testable import NATCore

/// A row filed in two indexes, the second only once `confirmed` (as GRE calls are).
private struct PairRow: TableRow {
    var key: UInt32
    var other: UInt32
    var confirmed: Bool

    static let empty = PairRow(key: 0, other: 0, confirmed: false)
    var isFree: Bool { key == 0 }
    static var indexCount: Int { 2 }
    var hash: UInt32 { key & 7 } // few distinct hashes: probe chains collide
    var secondHash: UInt32? { confirmed ? other & 3 : nil }
}

@Suite struct IndexedTableTests {
    private func find(_ table: borrowing IndexedTable<PairRow>, key: UInt32) -> Int32 {
        table.find(hash: key & 7) { $0.key == key }
    }

    private func find(_ table: borrowing IndexedTable<PairRow>, other: UInt32) -> Int32 {
        table.findInSecondIndex(hash: other & 3) { $0.confirmed && $0.other == other }
    }

    @Test func rowsAreFiledInBothIndexesAndLeaveBothWhenRemoved() {
        var table = IndexedTable<PairRow>(capacity: 8)
        let a = table.insert(PairRow(key: 1, other: 100, confirmed: true))
        let b = table.insert(PairRow(key: 9, other: 200, confirmed: false)) // same first hash as key 1
        #expect(a == 0 && b == 1 && table.count == 2)
        #expect(find(table, key: 1) == a && find(table, key: 9) == b)
        #expect(find(table, other: 100) == a)
        #expect(find(table, other: 200) == -1) // not confirmed: not in the second index
        table.pointer(b).pointee.confirmed = true
        table.fileInSecondIndex(b)
        #expect(find(table, other: 200) == b)
        table.remove(a)
        #expect(find(table, key: 1) == -1 && find(table, other: 100) == -1)
        #expect(find(table, key: 9) == b && find(table, other: 200) == b) // the chain past the hole still found
        #expect(table[a].isFree && table.count == 1)
        table.removeAll()
        #expect(table.count == 0 && find(table, key: 9) == -1 && find(table, other: 200) == -1)
    }

    @Test func aFullTableRefusesAndAFreedRowIsReused() {
        var table = IndexedTable<PairRow>(capacity: 2)
        #expect(table.insert(PairRow(key: 1, other: 0, confirmed: false)) == 0)
        #expect(table.insert(PairRow(key: 2, other: 0, confirmed: false)) == 1)
        #expect(table.insert(PairRow(key: 3, other: 0, confirmed: false)) == -1)
        #expect(find(table, key: 3) == -1)
        table.remove(0)
        #expect(table.insert(PairRow(key: 3, other: 0, confirmed: false)) == 0 && find(table, key: 3) == 0)
    }

    /// A reload grows the mapping table: rows keep their numbers (other tables hold them), both
    /// indexes find every live row at the new size, and the added rows are handed out low first.
    @Test func growingKeepsRowNumbersAndRebuildsTheIndexes() {
        var table = IndexedTable<PairRow>(capacity: 4)
        for key: UInt32 in 1...4 { _ = table.insert(PairRow(key: key, other: key * 10, confirmed: key % 2 == 0)) }
        table.remove(1) // key 2: a free row in the middle
        let before = table.indexBytes
        table.grow(to: 40)
        #expect(table.capacity == 40 && table.count == 3 && table.indexBytes > before)
        #expect(find(table, key: 1) == 0 && find(table, key: 3) == 2 && find(table, key: 4) == 3 && find(table, key: 2) == -1)
        #expect(find(table, other: 40) == 3 && find(table, other: 20) == -1 && find(table, other: 30) == -1)
        #expect(table.insert(PairRow(key: 5, other: 0, confirmed: false)) == 1) // the free row below the old cap
        #expect(table.insert(PairRow(key: 6, other: 0, confirmed: false)) == 4) // then the added rows, low first
        for key: UInt32 in 7...41 { #expect(table.insert(PairRow(key: key, other: 0, confirmed: false)) >= 0) }
        #expect(table.insert(PairRow(key: 42, other: 0, confirmed: false)) == -1) // 40 rows live
        for key: UInt32 in [1, 3, 4, 5, 6, 7, 41] { #expect(find(table, key: key) >= 0, "key \(key)") }
        table.grow(to: 10) // smaller: nothing changes
        #expect(table.capacity == 40 && table.count == 40)
    }

    /// No index, no index memory (the expectation table is scanned).
    @Test func aTableWithoutIndexHasNoIndexBytes() {
        var expectations = ExpectationTable(capacity: 0)
        #expect(expectations.capacity == 1 && expectations.indexBytes == 0)
        let row = expectations.insert(Expectation(expires: 5, mapping: 3, master: 1, remoteAddress: 7, remotePort: 0))
        #expect(row == 0 && expectations.match(mapping: 3, remoteAddress: 9, remotePort: 1, now: 4) == -1)
        #expect(expectations.match(mapping: 3, remoteAddress: 7, remotePort: 1, now: 4) == 0)
        expectations.remove(row)
        #expect(expectations.count == 0 && expectations[0].isFree)
    }
}
