import NATTestKit
import Testing
@testable import NATCore

@Suite struct TableInternalsTests {
    /// Random inserts and removals with heavily colliding hashes, checked against a model.
    @Test func flowHashIndexMatchesModel() {
        let rows = 64
        let slots = UnsafeMutablePointer<UInt64>.allocate(capacity: FlowHashIndex.slotCount(rows: rows))
        slots.initialize(repeating: 0, count: FlowHashIndex.slotCount(rows: rows))
        defer { slots.deallocate() }
        let index = FlowHashIndex(slots: slots, slotCount: FlowHashIndex.slotCount(rows: rows))
        #expect(index.slotCount == 128)
        var rng = SeededRNG(seed: 7)
        var model: [Int32: UInt32] = [:] // row → hash
        for step in 0..<20000 {
            let insert = model.count < rows && (model.isEmpty || Bool.random(using: &rng))
            if insert {
                let free = (0..<Int32(rows)).filter { model[$0] == nil }
                let row = free.randomElement(using: &rng)!
                // Few distinct hashes, clustered home slots (including wrap-around at the end).
                let hash = UInt32([0, 1, 2, 125, 126, 127].randomElement(using: &rng)!) &+ (Bool.random(using: &rng) ? 0 : 128 * UInt32.random(in: 1...3, using: &rng))
                index.insert(hash: hash, row: row)
                model[row] = hash
            } else {
                let row = model.keys.randomElement(using: &rng)!
                index.remove(hash: model[row]!, row: row)
                model[row] = nil
            }
            if step % 10 == 0 {
                for row in 0..<Int32(rows) {
                    if let hash = model[row] {
                        #expect(index.find(hash: hash) { $0 == row } == row, "step \(step) row \(row)")
                    } else {
                        for hash: UInt32 in [0, 1, 2, 125, 126, 127] {
                            #expect(index.find(hash: hash) { $0 == row } == -1)
                        }
                    }
                }
            }
        }
    }

    @Test func rowStoreHandsOutLowRowsAndReusesThem() {
        var store = RowStore<Int>(capacity: 3, empty: -1)
        #expect(store.take() == 0 && store.take() == 1 && store.take() == 2)
        #expect(store.take() == -1)
        #expect(store.count == 3)
        store.give(1, empty: -1)
        #expect(store.count == 2)
        #expect(store.take() == 1)
        store.reset(empty: -1)
        #expect(store.count == 0 && store.take() == 0)
    }

    @Test func addressAndPrefixParsing() {
        #expect(IPv4Address("192.0.2.1") == IPv4Address(192, 0, 2, 1))
        #expect(IPv4Address("0.0.0.0")?.value == 0)
        #expect(IPv4Address("255.255.255.255")?.value == 0xffff_ffff)
        for bad in ["", "1.2.3", "1.2.3.4.5", "256.1.1.1", "01.2.3.4", "1..2.3", "1.2.3.4.", " 1.2.3.4", "a.b.c.d", "1.2.3.1000"] {
            #expect(IPv4Address(bad) == nil, "\(bad)")
        }
        #expect(IPv4Address(203, 0, 113, 1).description == "203.0.113.1")
        let p = IPv4Prefix("192.0.2.0/24")
        #expect(p?.contains(IPv4Address(192, 0, 2, 255)) == true)
        #expect(p?.contains(IPv4Address(192, 0, 3, 0)) == false)
        #expect(IPv4Prefix("192.0.2.1/24") == nil) // host bits set
        #expect(IPv4Prefix("192.0.2.1")?.length == 32)
        #expect(IPv4Prefix("0.0.0.0/0")?.contains(IPv4Address(1, 2, 3, 4)) == true)
        #expect(IPv4Prefix("10.0.0.0/33") == nil && IPv4Prefix("10.0.0.0/") == nil && IPv4Prefix("10.0.0.0/+8") == nil)
        #expect(IPv4Prefix("10.0.0.0/8")!.overlaps(IPv4Prefix("10.1.0.0/16")!))
        #expect(!IPv4Prefix("10.0.0.0/8")!.overlaps(IPv4Prefix("11.0.0.0/8")!))
        #expect(IPv4Prefix("192.0.2.0/24")!.description == "192.0.2.0/24")
    }

    @Test func dropReasonNamesAreDistinct() {
        let names = DropReason.allCases.map(\.description)
        #expect(Set(names).count == names.count)
        #expect(DropReason.sessionTableFull.description == "session_table_full")
    }
}
