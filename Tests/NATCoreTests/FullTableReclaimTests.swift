import NATTestKit
import Testing
@testable import NATCore

// A session table full of live flows from spoofed sources (issue #20 item 5): new flows are
// refused at the cost of a comparison each — one bounded reclaim step per quiet interval,
// never a scan of the table or the expectations per flow — while established flows keep
// translating, and a flow after the spoofed ones expired gets a row again.

@Suite("Full-table reclaim")
struct FullTableReclaimTests {
    static func spoofed(_ i: Int) -> IPv4Bytes { IPv4Bytes(10, 0, UInt8(i >> 8 & 0xff), UInt8(i & 0xff)) }

    @Test func newFlowsAgainstAFullTableAreRefusedCheaplyAndEstablishedOnesFlow() {
        let nat = makeTranslator(internalPrefixes: ["10.0.0.0/16"]) {
            $0.maxSessions = 1024
            $0.maxMappings = 16_384 // the sessions are what runs out
            $0.maxSessionsPerHost = 4
        }
        let host = IPv4Bytes(10, 0, 255, 1)
        var syn = PacketBuilder.tcp(host, 40000, Net.remote, 443, flags: TCPFlag.syn, seq: 1)
        #expect(nat.run(&syn, .outbound) == .acceptRewritten)
        var synAck = PacketBuilder.tcp(Net.remote, 443, Net.external, 40000, flags: TCPFlag.syn | TCPFlag.ack, seq: 9, ack: 2)
        #expect(nat.run(&synAck, .inbound) == .acceptRewritten)
        // Fill the rest with one UDP flow from each of 1023 spoofed sources.
        for i in 1...1023 {
            var p = PacketBuilder.udp(Self.spoofed(i), 5000, Net.remote, 53)
            #expect(nat.run(&p, .outbound) == .acceptRewritten)
        }
        #expect(nat.sessionCount == 1024)

        // 10000 new flows from other spoofed sources in 5 ms, the established flow in between.
        var refused = 0
        for i in 0..<10_000 {
            let now = at(1, plusNanoseconds: UInt64(i) * 500)
            var p = PacketBuilder.udp(Self.spoofed(1024 + i % 20_000), 6000, Net.remote, 53)
            if nat.run(&p, .outbound, now: now) == .drop(.sessionTableFull) { refused += 1 }
            if i % 1000 == 0 {
                var data = PacketBuilder.tcp(host, 40000, Net.remote, 443, flags: TCPFlag.ack, seq: 2, ack: 10)
                #expect(nat.run(&data, .outbound, now: now) == .acceptRewritten)
                #expect(sourceAddress(data) == Net.external && Verify.transportChecksumValid(data))
                var reply = PacketBuilder.tcp(Net.remote, 443, Net.external, 40000, flags: TCPFlag.ack, seq: 10, ack: 2)
                #expect(nat.run(&reply, .inbound, now: now) == .acceptRewritten)
                #expect(destinationAddress(reply) == host && Verify.transportChecksumValid(reply))
            }
        }
        #expect(refused == 10_000)
        #expect(nat.counters.drops(.sessionTableFull) == 10_000)
        // One step of at most 64 rows per millisecond of the flood (5 ms, and the first), the rest skipped.
        #expect(nat.counters[.reclaimSteps] <= 6, "reclaim steps: \(nat.counters[.reclaimSteps])")
        #expect(nat.counters[.reclaimSteps] + nat.counters[.reclaimStepsSkipped] == 10_000)
        #expect(nat.sessionCount == 1024)

        // The established flow stays alive; once the spoofed UDP flows have expired (300 s),
        // a new flow finds a row through one reclaim step.
        var keepAlive = PacketBuilder.tcp(host, 40000, Net.remote, 443, flags: TCPFlag.ack, seq: 2, ack: 10)
        #expect(nat.run(&keepAlive, .outbound, now: at(299)) == .acceptRewritten)
        let steps = nat.counters[.reclaimSteps]
        var fresh = PacketBuilder.udp(IPv4Bytes(10, 0, 254, 1), 7000, Net.remote, 53)
        #expect(nat.run(&fresh, .outbound, now: at(302)) == .acceptRewritten)
        #expect(nat.counters[.reclaimSteps] == steps + 1)
        #expect(nat.snapshots(now: at(302)).contains { $0.internalAddress == host.address && $0.tcpState == .established })
    }
}
