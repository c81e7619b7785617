import NATTestKit
import Testing
@testable import NATCore

/// The expiry sweep walks only up to the session store's high-water mark. Every taken row must
/// stay below the mark whatever the order of takes, gives and sweep steps, or a live session
/// would never be swept (and listings and checkpoints would miss it).
@Suite struct SweepHighWaterTests {
    /// A row that is taken (`value >= 0`) and stale from `expires` on.
    struct Row: ExpiringRow {
        var value: Int32
        var expires: UInt64 = .max
        static var empty: Row { Row(value: -1) }
        var isFree: Bool { value < 0 }
        var hash: UInt32 { 0 }
    }

    @Test(arguments: [1, 2, 3, 4, 5, 6, 7, 8] as [UInt64])
    func everyTakenRowStaysBelowTheMark(seed: UInt64) {
        var random = SeededRNG(seed: seed) // seeded: a failure names a seed that reproduces it
        let capacity = 64
        var store = RowStore<Row>(capacity: capacity, empty: .empty)
        var taken = Set<Int32>()
        for step in 0..<20_000 {
            switch Int.random(in: 0..<10, using: &random) {
            case 0...3: // take
                let row = store.take()
                if taken.count == capacity {
                    #expect(row == -1)
                } else {
                    #expect(row >= 0 && !taken.contains(row))
                    taken.insert(row)
                    store.rows[Int(row)] = Row(value: row)
                }
            case 4...6: // give a random taken row back
                if !taken.isEmpty {
                    let row = taken.sorted()[Int.random(in: 0..<taken.count, using: &random)]
                    taken.remove(row)
                    store.give(row, empty: .empty)
                }
            default: // a sweep step of a few rows, as NATTranslator.expire walks them
                var budget = Int.random(in: 0..<8, using: &random)
                #expect(store.nextStaleRow(now: 0, budget: &budget) == -1) // nothing is stale: every taken row is kept
            }
            let highestTaken = taken.max().map(Int.init) ?? -1
            #expect(highestTaken < store.highWater, "seed \(seed) step \(step): row \(highestTaken) above the mark \(store.highWater)")
            if highestTaken >= store.highWater { return }
        }
    }

    @Test func aFullPassWithNoTakesLowersTheMarkToTheHighestLiveRow() {
        var store = RowStore<Row>(capacity: 16, empty: .empty)
        var rows: [Int32] = []
        for _ in 0..<10 { rows.append(store.take()) }
        #expect(rows == Array(0..<10)) // low rows first
        #expect(store.highWater == 10)
        for row in rows { store.rows[Int(row)] = Row(value: row) }
        for row in rows[4...] { store.give(row, empty: .empty) }
        var budget = 10
        #expect(store.nextStaleRow(now: 0, budget: &budget) == -1) // a pass over rows 0–9, keeping 0–3
        #expect(budget == 0 && store.highWater == 10)
        budget = 10 // ends that pass (rows were taken during it: the mark stays), walks the next
        #expect(store.nextStaleRow(now: 0, budget: &budget) == -1)
        #expect(store.highWater == 10)
        budget = 1 // ends a pass that kept rows 0–3 with nothing taken
        #expect(store.nextStaleRow(now: 0, budget: &budget) == -1)
        #expect(store.highWater == 4)
        #expect(store.take() == 9) // the free list is LIFO: the last row given comes back first
        #expect(store.highWater == 10)
    }

    /// `nextStaleRow`: the budget counts every row walked (free ones too), a stale row is handed
    /// out and the walk resumes after it, and the cursor wraps at the mark into the next pass.
    @Test func theTableSweepHandsOutStaleRowsWithinItsBudget() {
        var table = AddressOnlyTable(capacity: 8, seed: 1)
        for (i, expires) in [100, 5, 0, 7, 100].enumerated() { // row 2 is freed below
            #expect(table.insert(AddressOnlyFlow(expires: UInt64(expires), remoteAddress: UInt32(i + 1), internalAddress: 1,
                                                 hash: UInt32(i), protocolNumber: 50)) == Int32(i))
        }
        table.remove(2)
        let now = NATTime(nanoseconds: 10)
        #expect(table.isStale(1, now: now) && !table.isStale(0, now: now) && !table.isStale(-1, now: now))
        var budget = 3
        #expect(table.nextStaleRow(now: now, budget: &budget) == 1)
        #expect(budget == 1)
        table.remove(1)
        #expect(table.nextStaleRow(now: now, budget: &budget) == -1) // row 2: free, and the budget is spent
        #expect(budget == 0)
        budget = 10
        #expect(table.nextStaleRow(now: now, budget: &budget) == 3)
        #expect(budget == 9)
        table.remove(3)
        #expect(table.nextStaleRow(now: now, budget: &budget) == -1) // nothing else stale: it walks on, wrapping, until the budget is spent
        #expect(budget == 0)
    }

    @Test func anEmptiedTableCostsTheSweepNothingAndANewFlowIsSweptAgain() {
        let nat = makeTranslator { $0.maxSessions = 4096; $0.maxMappings = 4096 }
        for i in 0..<1000 {
            _ = InboundTranslationTests.open(nat, PacketBuilder.udp(Net.hostA, UInt16(20000 + i), Net.remote, 53))
        }
        #expect(nat.sessionCount == 1000 && nat.sessions.highWater == 1000)
        let later = at(1000)
        #expect(nat.expire(now: later, budget: 4096) == 1000) // one walk of 1000 rows, not 4096
        #expect(nat.sessionCount == 0 && nat.mappingCount == 0)
        // Ends the first pass, during which rows 0–999 were taken, so the mark stays; walks them again.
        #expect(nat.expire(now: later, budget: 4096) == 0)
        #expect(nat.sessions.highWater == 1000)
        #expect(nat.expire(now: later, budget: 4096) == 0) // ends a pass that saw nothing live and nothing taken
        #expect(nat.sessions.highWater == 0)
        #expect(nat.expire(now: later, budget: 4096) == 0)
        #expect(nat.sessions.highWater == 0)

        _ = InboundTranslationTests.open(nat, PacketBuilder.udp(Net.hostA, 30000, Net.remote, 53), now: later)
        #expect(nat.sessions.highWater >= 1 && nat.sessionCount == 1)
        #expect(nat.expire(now: at(1299), budget: 4096) == 0)
        #expect(nat.expire(now: at(1300), budget: 4096) == 1) // 300 s later the sweep finds it
        #expect(nat.counters[.sessionsExpired] == 1001)
    }

    @Test func listingsAndCheckpointsSeeEveryLiveSessionAfterChurn() {
        let nat = makeTranslator { $0.maxSessions = 256; $0.maxMappings = 256 }
        var random = SeededRNG(seed: 42)
        var clock: UInt64 = 0
        for round in 0..<40 {
            for _ in 0..<Int.random(in: 0..<60, using: &random) {
                let port = UInt16(10000 + Int.random(in: 0..<200, using: &random)) // never more than 200 live: the table never fills
                _ = InboundTranslationTests.open(nat, PacketBuilder.udp(Net.hostA, port, Net.remote, 53),
                                                 now: at(clock))
            }
            clock += UInt64(Int.random(in: 0..<200, using: &random))
            nat.expire(now: at(clock), budget: Int.random(in: 0..<300, using: &random))
            var listed = 0
            nat.forEachSession(now: at(clock)) { _ in listed += 1 }
            var live = 0
            for i in 0..<nat.sessions.capacity where nat.sessions[Int32(i)].mapping >= 0
                && nat.sessions[Int32(i)].expires > at(clock).nanoseconds { live += 1 }
            #expect(listed == live, "round \(round): listed \(listed) of \(live) live sessions")
        }
    }
}
