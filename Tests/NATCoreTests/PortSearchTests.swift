import NATTestKit
import Testing
@testable import NATCore

/// The allocator's free-port search (issue #20): an exhausted range is refused after a few
/// word reads, and every choice is the one the old port-by-port scan from the hash point made.
@Suite struct PortSearchTests {
    /// The scan the bitmap replaced, kept here as the reference for what must be chosen.
    private func referenceScan(_ table: borrowing ExternalPortTable, _ local: borrowing LocalPortMap, _ allocator: PortAllocator,
                               slot: Int, internalPort: UInt16, startHash: UInt32) -> UInt16? {
        let range = allocator.range(for: internalPort, slot: slot)
        func free(_ p: Int) -> Bool { table.owner(slot: slot, port: UInt16(p)) < 0 && !local.contains(slot: slot, port: UInt16(p)) }
        if range.contains(internalPort), free(Int(internalPort)) { return internalPort }
        var ports = Array(Int(range.lowerBound)...Int(range.upperBound))
        if slot != 2, let reserved = local.reserved { ports.removeAll { reserved.contains(UInt16($0)) } }
        guard !ports.isEmpty else { return nil }
        let offset = Int(startHash) % ports.count
        for i in 0..<ports.count where free(ports[(offset + i) % ports.count]) { return UInt16(ports[(offset + i) % ports.count]) }
        return nil
    }

    private func claimAll(_ table: borrowing ExternalPortTable, slot: Int, _ ports: ClosedRange<Int>, except: Set<Int> = []) {
        for p in ports where !except.contains(p) { table.claim(slot: slot, port: UInt16(p), row: 7) }
    }

    @Test func exhaustedRangeIsRefusedWithoutAScan() {
        let table = ExternalPortTable()
        let allocator = PortAllocator()
        claimAll(table, slot: 1, 1024...65535)
        let before = table.probeCount
        #expect(allocator.allocate(in: table, local: LocalPortMap.none, slot: 1, internalPort: 40000, startHash: 123_456) == nil)
        // 16 summary words cover the range; a scan would have read 64512 rows.
        #expect(table.probeCount - before <= 20, "\(table.probeCount - before) words read")
        // The low range and the other protocols are untouched.
        #expect(allocator.allocate(in: table, local: LocalPortMap.none, slot: 1, internalPort: 80, startHash: 1) == 80)
        #expect(allocator.allocate(in: table, local: LocalPortMap.none, slot: 0, internalPort: 40000, startHash: 1) == 40000)
    }

    @Test func freedPortIsFoundAgain() {
        let table = ExternalPortTable()
        let allocator = PortAllocator()
        claimAll(table, slot: 1, 1024...65535)
        table.release(slot: 1, port: 50001)
        let before = table.probeCount
        #expect(allocator.allocate(in: table, local: LocalPortMap.none, slot: 1, internalPort: 40000, startHash: 9) == 50001)
        #expect(table.probeCount - before <= 24, "\(table.probeCount - before) words read")
        table.claim(slot: 1, port: 50001, row: 8)
        #expect(allocator.allocate(in: table, local: LocalPortMap.none, slot: 1, internalPort: 40000, startHash: 9) == nil)
    }

    @Test func searchWrapsToTheRangeStart() {
        let table = ExternalPortTable()
        let allocator = PortAllocator()
        claimAll(table, slot: 0, 1024...65535, except: [1030])
        // The hash point is past 1030: the search runs to 65535 and starts again at 1024.
        let hash = UInt32(60000 - 1024)
        #expect(allocator.allocate(in: table, local: LocalPortMap.none, slot: 0, internalPort: 40000, startHash: hash) == 1030)
        table.claim(slot: 0, port: 1030, row: 8)
        // Pairs wrap the same way.
        table.release(slot: 0, port: 2000)
        table.release(slot: 0, port: 2001)
        #expect(allocator.allocatePair(in: table, local: LocalPortMap.none, slot: 0, internalPort: 40001, startHash: hash) == 2000)
        table.release(slot: 0, port: 2003)
        #expect(allocator.allocatePair(in: table, local: LocalPortMap.none, slot: 0, internalPort: 40001, startHash: hash) == 2000)
    }

    @Test func choicesMatchTheScanTheyReplace() {
        var rng = SeededRNG(seed: 20)
        for round in 0..<12 { // every combination of range, density and reserved range once
            let table = ExternalPortTable()
            var local = LocalPortMap()
            let allocator = round % 3 == 0 ? PortAllocator(portRange: 20000...20700, lowPortRange: nil) : PortAllocator()
            // Dense or sparse owners, some held ports, sometimes a reserved range.
            let density = [0.5, 0.99, 0.9999, 1.0][round % 4]
            for p in 0...65535 where Double.random(in: 0..<1, using: &rng) < density {
                for slot in 0..<3 { table.claim(slot: slot, port: UInt16(p), row: 1) }
            }
            var held = LocalPortSet()
            for _ in 0..<50 { held.insert(protocolNumber: IPProtocolNumber.udp, port: UInt16.random(in: 0...65535, using: &rng)) }
            let reserved: ClosedRange<UInt16>? = round % 2 == 0 ? 32768...60999 : nil
            local.set(held, reserved: reserved)
            for _ in 0..<50 {
                let slot = Int.random(in: 0..<3, using: &rng)
                let port = UInt16.random(in: 0...65535, using: &rng), hash = UInt32.random(in: 0...UInt32.max, using: &rng)
                let expected = referenceScan(table, local, allocator, slot: slot, internalPort: port, startHash: hash)
                #expect(allocator.allocate(in: table, local: local, slot: slot, internalPort: port, startHash: hash) == expected,
                        "round \(round) slot \(slot) port \(port) hash \(hash)")
            }
        }
    }
}
