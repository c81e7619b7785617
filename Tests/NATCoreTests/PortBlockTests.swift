import NATTestKit
import Testing
@testable import NATCore

/// Port block allocation (issue #15 item 4, RFC 7422 style): a host's mappings take ports
/// from blocks it owns, one event per block, blocks released with their last mapping.
@Suite struct PortBlockTests {
    private func blocksTranslator(size: Int = 64, cap: Int = 2, _ configure: (inout NATConfiguration) -> Void = { _ in }) -> NATTranslator {
        makeTranslator {
            $0.portBlocks = PortBlockSettings(size: size, maxPerHost: cap)
            configure(&$0)
        }
    }

    /// The external port of a new UDP flow, or the drop.
    private func open(_ nat: NATTranslator, _ host: IPv4Bytes, _ sport: UInt16, now: NATTime = t0) -> (port: UInt16?, verdict: TranslationVerdict) {
        var p = PacketBuilder.udp(host, sport, Net.remote, 53)
        let verdict = nat.run(&p, .outbound, now: now)
        guard verdict == .acceptRewritten else { return (nil, verdict) }
        #expect(Verify.ipHeaderChecksumValid(p) && Verify.transportChecksumValid(p))
        #expect(sourceAddress(p) == Net.external)
        return (sourcePort(p), verdict)
    }

    /// The block (first port) a port is in, for blocks of `size` cut from 1024.
    private func blockStart(_ port: UInt16, size: Int = 64) -> Int { 1024 + (Int(port) - 1024) / size * size }

    @Test("an internal port in the host's block that the router holds is not kept: another port of the block, counted (ports_skipped_local)")
    func localPortSkipsCountedWithBlocks() throws {
        let nat = blocksTranslator()
        let first = try #require(open(nat, Net.hostA, 40000).port)
        let block = try #require(nat.portBlocks(of: Net.hostA.address).first)
        // Three more ports of A's block: one free, one the router holds, one outside the block held too.
        let candidates = block.filter { $0 != first }
        let free = candidates[0], held = candidates[1]
        let outside = block.upperBound < 65535 ? block.upperBound + 1 : block.lowerBound - 1
        nat.setLocalPorts(LocalPortTranslationTests.held(udp: [held, outside]), reserved: nil)
        // A free internal port of the block is kept: no skip.
        #expect(open(nat, Net.hostA, free).port == free)
        #expect(nat.counters[.localPortSkips] == 0)
        let moved = try #require(open(nat, Net.hostA, held).port)
        #expect(moved != held && block.contains(moved))
        #expect(nat.counters[.localPortSkips] == 1)
        // A router port outside the host's blocks could not have been kept anyway: no skip.
        let other = try #require(open(nat, Net.hostA, outside).port)
        #expect(other != outside && block.contains(other))
        #expect(nat.counters[.localPortSkips] == 1)
    }

    @Test func aHostsMappingsShareOneBlockAndHostsGetDisjointBlocks() {
        let nat = blocksTranslator()
        let aPorts = [40000, 40001, 80, 5353, 65535].compactMap { open(nat, Net.hostA, UInt16($0)).port }
        let bPorts = [40000, 40001, 80, 5353].compactMap { open(nat, Net.hostB, UInt16($0)).port }
        #expect(aPorts.count == 5 && bPorts.count == 4)
        // Every port inside one block of 64, the low port 80 too (blocks are cut from 1024 up).
        #expect(Set(aPorts.map { blockStart($0) }).count == 1)
        #expect(Set(bPorts.map { blockStart($0) }).count == 1)
        #expect(blockStart(aPorts[0]) != blockStart(bPorts[0]))
        #expect(aPorts.allSatisfy { $0 >= 1024 })
        #expect(Set(aPorts + bPorts).count == 9)
        let a = nat.portBlocks(of: IPv4Address(192, 0, 2, 10)), b = nat.portBlocks(of: IPv4Address(192, 0, 2, 11))
        #expect(a == [UInt16(blockStart(aPorts[0]))...UInt16(blockStart(aPorts[0]) + 63)])
        #expect(b == [UInt16(blockStart(bPorts[0]))...UInt16(blockStart(bPorts[0]) + 63)])
        #expect(nat.portBlockCount == 2 && nat.counters[.portBlocksAllocated] == 2)
    }

    @Test("with the router's ephemeral range reserved (the default), every host still gets a block: the free blocks inside it are passed over, not handed out and refused")
    func blocksInTheReservedRangeArePassedOver() {
        let nat = blocksTranslator()
        nat.setLocalPorts(LocalPortSet(), reserved: 32768...60999)
        // 40 hosts: before, a host whose search landed in the reserved range (~43 % of the
        // blocks) was refused with the ports "exhausted".
        for host in 0..<40 {
            let address = IPv4Bytes(192, 0, 2, UInt8(20 + host))
            let opened = open(nat, address, 40000)
            #expect(opened.port != nil, "host .\(20 + host): \(opened.verdict)")
            if let port = opened.port { #expect(!(32768...60999).contains(port), "host .\(20 + host) got reserved port \(port)") }
        }
        #expect(nat.portBlockCount == 40 && nat.counters[.portBlocksAllocated] == 40)
        #expect(nat.counters.drops(.portsExhausted) == 0)
    }

    @Test func aFullBlockBringsANewOneUpToTheCapThenRefusals() {
        let nat = blocksTranslator(size: 16, cap: 2)
        var ports: [UInt16] = []
        for i in 0..<32 { if let p = open(nat, Net.hostA, UInt16(30000 + i)).port { ports.append(p) } }
        #expect(ports.count == 32 && Set(ports).count == 32)
        let blocks = nat.portBlocks(of: IPv4Address(192, 0, 2, 10))
        #expect(blocks.count == 2)
        #expect(ports.allSatisfy { p in blocks.contains { $0.contains(p) } })
        // The 33rd mapping needs a third block: refused and counted, nothing made.
        let refused = open(nat, Net.hostA, 31000)
        #expect(refused.verdict == .drop(.hostPortBlockLimit))
        #expect(nat.counters.drops(.hostPortBlockLimit) == 1)
        #expect(nat.mappingCount == 32 && nat.portBlockCount == 2)
        // Another host is not affected.
        #expect(open(nat, Net.hostB, 31000).port != nil)
        // A flow on an existing mapping still works.
        #expect(open(nat, Net.hostA, 30000).port == ports[0])
    }

    /// Asks, for every datagram from inside that reads "DATA <port>", for one expected flow to
    /// that internal port (an FTP PORT command's shape), and writes the external port it got.
    final class DataOfferHelper: ApplicationHelper {
        let name = "data-offer"
        func inspect(_ data: HelperData, _ context: inout HelperContext) -> HelperVerdict {
            let bytes = data.bytes
            guard context.senderIsInternal, bytes.count > 5, Array(bytes[0..<5]) == Array("DATA ".utf8),
                  let port = UInt16(String(decoding: bytes[5...], as: UTF8.self)),
                  let external = context.expectConnection(protocolNumber: IPProtocolNumber.udp, from: context.remoteAddress, port: nil,
                                                          to: context.internalAddress, port: port)
            else { return .pass }
            context.replace(5..<bytes.count) { $0.write(decimal: UInt32(external)) }
            return .pass
        }
    }

    @Test func anExpectedFlowsMappingTakesItsPortFromTheHostsBlocksLikeAPair() {
        let nat = blocksTranslator {
            $0.helpers = [HelperRegistration(helper: DataOfferHelper(), ports: [.udp(5000), .udp(5001)]),
                          HelperRegistration(helper: MediaOfferHelper(), ports: [.udp(5002)])]
        }
        var offers: [UInt16] = []
        for (dport, text) in [(5000, "DATA 7000"), (5001, "DATA 7001"), (5002, "MEDIA 7002")] {
            var p = PacketBuilder.udp(Net.hostA, 40000, Net.remote, UInt16(dport), payload: Array(text.utf8))
            let verdict = nat.run(&p, .outbound, now: t0)
            guard case .acceptReplaced(let bytes) = verdict else { Issue.record("\(text): \(verdict)"); return }
            let out = Array(bytes)
            #expect(Verify.ipHeaderChecksumValid(out) && Verify.transportChecksumValid(out))
            let payload = String(decoding: out[28...], as: UTF8.self).split(separator: " ")
            guard payload.count == 2, let port = UInt16(payload[1]) else { Issue.record("\(text) became \(payload)"); return }
            offers.append(port)
        }
        // The three flows' mapping and every expected one (7000, 7001, the pair 7002-7003) in
        // host A's one block: an auditor's block line covers the data connections too.
        let blocks = nat.portBlocks(of: IPv4Address(192, 0, 2, 10))
        #expect(blocks.count == 1 && nat.portBlockCount == 1)
        #expect((offers + [offers[2] + 1]).allSatisfy { port in blocks.contains { $0.contains(port) } }, "\(offers) outside \(blocks)")
        #expect(nat.mappingCount == 5 && nat.pendingExpectationCount == 4)
    }

    @Test func aBlockIsReleasedWithItsLastMappingAndEventsCarryItsRange() {
        let nat = blocksTranslator(size: 64)
        nat.enableEvents(capacity: 256, now: t0)
        let first = open(nat, Net.hostA, 40000).port!
        _ = open(nat, Net.hostA, 40001)
        _ = open(nat, Net.hostA, 40002, now: at(20))
        var events: [NATEvent] = []
        nat.drainEvents { events.append($0) }
        let blockEvents = events.filter { $0.kind.isPortBlock }
        let start = UInt16(blockStart(first))
        #expect(blockEvents == [NATEvent(timeNanoseconds: t0.nanoseconds, kind: .portBlockAllocated, reason: .outbound, protocolNumber: 0,
                                         internalAddress: IPv4Address(192, 0, 2, 10).value, internalPort: 0,
                                         externalAddress: IPv4Address(203, 0, 113, 1).value, externalPort: start,
                                         remotePort: start + 63)])
        #expect(blockEvents[0].blockPorts == start...start + 63)
        // The first two expire; the block stays for the third.
        let udp = nat.configuration.timeouts.udp.nanoseconds / 1_000_000_000
        _ = nat.expire(now: at(udp + 1), budget: 1000)
        #expect(nat.mappingCount == 1 && nat.portBlockCount == 1)
        events = []
        nat.drainEvents { events.append($0) }
        #expect(!events.contains { $0.kind.isPortBlock })
        // The last one expires: the block goes back, one event with the same range.
        _ = nat.expire(now: at(udp + 21), budget: 1000)
        #expect(nat.mappingCount == 0 && nat.portBlockCount == 0)
        #expect(nat.counters[.portBlocksReleased] == 1)
        nat.drainEvents { events.append($0) }
        let released = events.filter { $0.kind.isPortBlock }
        #expect(released.count == 1)
        #expect(released.first?.kind == .portBlockReleased && released.first?.reason == .expired)
        #expect(released.first?.blockPorts == start...start + 63)
        #expect(released.first?.internalAddress == IPv4Address(192, 0, 2, 10).value)
        // The host's next flow gets a block again.
        #expect(open(nat, Net.hostA, 40000, now: at(udp + 30)).port != nil)
        #expect(nat.portBlockCount == 1)
    }

    @Test func blocksAreDerivedFromRestoredMappings() throws {
        let old = blocksTranslator(size: 64)
        var aPorts: [UInt16] = [], bPorts: [UInt16] = []
        for i in 0..<3 {
            aPorts.append(open(old, Net.hostA, UInt16(40000 + i)).port!)
            bPorts.append(open(old, Net.hostB, UInt16(40000 + i)).port!)
        }
        let saved = old.exportState(now: at(1), savedAt: 1_000_000)
        // The same block size: the same blocks, and new flows of A stay in A's block.
        let same = blocksTranslator(size: 64)
        same.enableEvents(capacity: 64, now: at(2))
        _ = try same.importState(saved, downtime: .seconds(1), now: at(2))
        #expect(same.mappingCount == 6 && same.portBlockCount == 2)
        #expect(same.portBlocks(of: IPv4Address(192, 0, 2, 10)) == old.portBlocks(of: IPv4Address(192, 0, 2, 10)))
        var events: [NATEvent] = []
        same.drainEvents { events.append($0) }
        #expect(events.filter { $0.kind == .portBlockAllocated && $0.reason == .restored }.count == 2)
        let next = open(same, Net.hostA, 41000, now: at(3)).port!
        #expect(blockStart(next) == blockStart(aPorts[0]))
        // A larger block size: both hosts' ports now fall in one block of 1024 (both were
        // given blocks near each other only by chance; check what the rule says): the first
        // restored mapping's host takes it, the other host's mappings in it are left out.
        let larger = blocksTranslator(size: 1024)
        _ = try larger.importState(saved, downtime: .seconds(1), now: at(2))
        let shared = blockStart(aPorts[0], size: 1024) == blockStart(bPorts[0], size: 1024)
        #expect(larger.counters[.portBlockRestoreConflicts] == (shared ? 3 : 0))
        #expect(larger.mappingCount == (shared ? 3 : 6))
        #expect(larger.portBlockCount == (shared ? 1 : 2))
    }

    @Test func poolHostsGetBlocksOnTheirPairedAddress() {
        let nat = blocksTranslator(size: 64) {
            var pools = SourceAddressPools()
            pools.defaultPool = pools.addPool([IPv4Address(198, 18, 0, 1), IPv4Address(198, 18, 0, 2)])
            pools.placement = .roundRobin
            $0.sourcePools = pools
        }
        var pa = PacketBuilder.udp(Net.hostA, 40000, Net.remote, 53), pb = PacketBuilder.udp(Net.hostB, 40000, Net.remote, 53)
        #expect(nat.run(&pa, .outbound) == .acceptRewritten && nat.run(&pb, .outbound) == .acceptRewritten)
        let addressA = sourceAddress(pa), addressB = sourceAddress(pb)
        #expect(addressA != addressB)
        let indexA = addressA == IPv4Bytes(198, 18, 0, 1) ? 1 : 2
        #expect(nat.portBlocks(of: IPv4Address(192, 0, 2, 10), address: indexA).first?.contains(sourcePort(pa)) == true)
        #expect(nat.portBlocks(of: IPv4Address(192, 0, 2, 10), address: 0).isEmpty)
    }

    @Test func aReloadMayChangeTheCapButNotTheBlockSize() throws {
        let nat = blocksTranslator(size: 64, cap: 2)
        var changed = nat.configuration
        changed.portBlocks = PortBlockSettings(size: 128, maxPerHost: 2)
        #expect(throws: ReconfigureError.unchangeable(.portBlocks)) { try nat.reconfigure(changed, now: t0) }
        var off = nat.configuration
        off.portBlocks = nil
        #expect(throws: ReconfigureError.unchangeable(.portBlocks)) { try nat.reconfigure(off, now: t0) }
        var cap = nat.configuration
        cap.portBlocks = PortBlockSettings(size: 64, maxPerHost: 5)
        let summary = try nat.reconfigure(cap, now: t0)
        #expect(summary.limitsChanged && nat.configuration.portBlocks?.maxPerHost == 5)
    }

    @Test func blockTableHostEntriesSurviveChurn() {
        // Many hosts taking and releasing blocks: the host table's deletions keep every other host findable.
        var table = PortBlockTable(settings: PortBlockSettings(size: 64, maxPerHost: 4), portRange: 1024...65535, addresses: 1)
        var rng = SeededRNG(seed: 15)
        var owned: [UInt32: [Int]] = [:]
        for _ in 0..<5000 {
            let host = UInt32.random(in: 1...300, using: &rng)
            if let blocks = owned[host], !blocks.isEmpty, Bool.random(using: &rng) {
                let block = blocks.randomElement(using: &rng)!
                table.release(block)
                owned[host] = blocks.filter { $0 != block }
            } else if (owned[host]?.count ?? 0) < 4, let block = table.allocate(host: host, address: 0, hash: UInt32.random(in: 0...UInt32.max, using: &rng)) {
                #expect(table.owner(of: block) == nil || table.owner(of: block) == host)
                owned[host, default: []].append(block)
            }
            for (h, blocks) in owned {
                #expect(table.blockCount(host: h, address: 0) == blocks.count)
            }
        }
        var listed: Set<Int> = []
        for (h, blocks) in owned {
            var b = table.firstBlock(host: h, address: 0)
            var mine: Set<Int> = []
            while b >= 0 { mine.insert(b); b = table.nextBlock(b) }
            #expect(mine == Set(blocks))
            #expect(listed.isDisjoint(with: mine))
            listed.formUnion(mine)
        }
        #expect(table.ownedCount == listed.count)
    }
}
