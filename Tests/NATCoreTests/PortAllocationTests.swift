import NATTestKit
import Testing
@testable import NATCore

@Suite struct PortAllocationTests {
    private func outboundPort(_ nat: NATTranslator, _ host: IPv4Bytes, _ sport: UInt16) -> UInt16? {
        var p = PacketBuilder.udp(host, sport, Net.remote, 53)
        guard nat.run(&p, .outbound) == .acceptRewritten else { return nil }
        #expect(Verify.transportChecksumValid(p))
        return sourcePort(p)
    }

    @Test func freePortIsPreserved() {
        let nat = makeTranslator()
        for sport: UInt16 in [1, 80, 1023, 1024, 40000, 65535] {
            #expect(outboundPort(nat, Net.hostA, sport) == sport)
        }
    }

    @Test func lowPortsStayLow() {
        let nat = makeTranslator()
        var seen: Set<UInt16> = []
        for i in 0..<20 {
            let host = IPv4Bytes(192, 0, 2, UInt8(10 + i))
            let port = outboundPort(nat, host, 500)
            #expect(port.map { (1...1023).contains($0) } == true, "\(String(describing: port))")
            if let port { #expect(seen.insert(port).inserted) }
        }
        #expect(seen.contains(500))
    }

    @Test func highPortsStayHigh() {
        let nat = makeTranslator()
        var seen: Set<UInt16> = []
        for i in 0..<20 {
            let host = IPv4Bytes(192, 0, 2, UInt8(10 + i))
            for sport: UInt16 in [1024, 65535] {
                let port = outboundPort(nat, host, sport)
                #expect(port.map { (1024...65535).contains($0) } == true)
                if let port { #expect(seen.insert(port).inserted) }
            }
        }
    }

    @Test func explicitRangeIsExhausted() {
        let nat = makeTranslator { $0.ports = PortAllocator(portRange: 20000...20001, lowPortRange: nil) }
        let first = outboundPort(nat, Net.hostA, 40000)
        let second = outboundPort(nat, Net.hostB, 40000)
        #expect(Set([first, second]) == Set([UInt16(20000), 20001]))
        let original = PacketBuilder.udp(Net.hostC, 40000, Net.remote, 53)
        expectUnchanged(nat, original, .outbound, verdict: .drop(.portsExhausted))
        #expect(nat.counters.drops(.portsExhausted) == 1)
        #expect(nat.mappingCount == 2 && nat.sessionCount == 2)
        // A low port uses the same (only) range when lowPortRange is nil.
        var low = PacketBuilder.udp(Net.hostC, 80, Net.remote, 53)
        #expect(nat.run(&low, .outbound) == .drop(.portsExhausted))
        #expect(nat.counters.drops(.portsExhausted) == 2)
        // The existing mappings still work.
        #expect(outboundPort(nat, Net.hostA, 40000) == first)
    }

    @Test func explicitRangePreservesAPortInside() {
        let nat = makeTranslator { $0.ports = PortAllocator(portRange: 20000...20009, lowPortRange: nil) }
        #expect(outboundPort(nat, Net.hostA, 20005) == 20005)
        let other = outboundPort(nat, Net.hostB, 20005)
        #expect(other != 20005 && other.map { (20000...20009).contains($0) } == true)
        let low = outboundPort(nat, Net.hostA, 80)
        #expect(low.map { (20000...20009).contains($0) } == true)
    }

    @Test func lowRangeIsExhaustedSeparately() {
        let nat = makeTranslator { $0.ports = PortAllocator(portRange: 1024...65535, lowPortRange: 100...101) }
        let a = outboundPort(nat, Net.hostA, 80), b = outboundPort(nat, Net.hostB, 80)
        #expect(Set([a, b]) == Set([UInt16(100), 101]))
        #expect(outboundPort(nat, Net.hostC, 80) == nil)
        #expect(nat.counters.drops(.portsExhausted) == 1)
        // High ports are unaffected.
        #expect(outboundPort(nat, Net.hostC, 5000) == 5000)
    }

    @Test func allocatorUnit() {
        let table = ExternalPortTable()
        let allocator = PortAllocator(portRange: 20000...20002, lowPortRange: 600...601)
        #expect(allocator.range(for: 80, slot: 0) == 600...601)
        #expect(allocator.range(for: 1024, slot: 1) == 20000...20002)
        #expect(allocator.range(for: 80, slot: 2) == 0...65535)
        // Free and in range: preserved.
        #expect(allocator.allocate(in: table, local: LocalPortMap.none, slot: 0, internalPort: 20001, startHash: 0) == 20001)
        // Out of range: from the hash start, wrapping.
        #expect(allocator.allocate(in: table, local: LocalPortMap.none, slot: 0, internalPort: 40000, startHash: 2) == 20002)
        table.claim(slot: 0, port: 20002, row: 0)
        #expect(allocator.allocate(in: table, local: LocalPortMap.none, slot: 0, internalPort: 40000, startHash: 2) == 20000)
        #expect(allocator.allocate(in: table, local: LocalPortMap.none, slot: 1, internalPort: 40000, startHash: 2) == 20002) // other protocol
        table.claim(slot: 0, port: 20000, row: 1)
        table.claim(slot: 0, port: 20001, row: 2)
        #expect(allocator.allocate(in: table, local: LocalPortMap.none, slot: 0, internalPort: 40000, startHash: 7) == nil)
        table.release(slot: 0, port: 20001)
        #expect(allocator.allocate(in: table, local: LocalPortMap.none, slot: 0, internalPort: 40000, startHash: 7) == 20001)
        #expect(table.owner(slot: 0, port: 20000) == 1)
        table.removeAll()
        #expect(table.owner(slot: 0, port: 20000) == -1)
    }
}
