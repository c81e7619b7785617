import NATTestKit
import Testing
@testable import NATCore

// Issue #15 item 5: `--max-new-flows-per-host RATE/s`, a token bucket per internal host (GCRA
// in HostTable) on the flows a host starts, on top of the per-host cap. Time is injected.

@Suite("New-flow rate per internal host")
struct NewFlowRateTests {
    static let ms: UInt64 = 1_000_000

    /// A translator allowing `rate` new flows per second per host (burst: the same number).
    static func limited(_ rate: UInt32, _ configure: (inout NATConfiguration) -> Void = { _ in }) -> NATTranslator {
        makeTranslator {
            $0.newFlowsPerHost = NewFlowRate(perSecond: rate)
            configure(&$0)
        }
    }

    /// One new UDP flow of `host` from `port`; checks the bytes of an accepted one exactly
    /// (source rewritten, checksums by the kit's reference) and that a refused one is untouched.
    static func open(_ nat: NATTranslator, _ host: IPv4Bytes, _ port: UInt16, now: NATTime) -> TranslationVerdict {
        let original = PacketBuilder.udp(host, port, Net.remote, 53, payload: [1, 2, 3])
        var packet = original
        let verdict = nat.run(&packet, .outbound, now: now)
        if verdict == .acceptRewritten {
            #expect(packet == PacketBuilder.udp(Net.external, sourcePort(packet), Net.remote, 53, payload: [1, 2, 3]))
        } else {
            #expect(packet == original, "a refused packet must not be rewritten")
        }
        return verdict
    }

    @Test("RATE/s parses; everything else is refused")
    func parsing() throws {
        let rate = try #require(NewFlowRate("20/s"))
        #expect(rate.perSecond == 20 && rate.burst == 20 && rate.interval == 50 * Self.ms && rate.tolerance == 19 * 50 * Self.ms)
        #expect(rate.description == "20/s")
        #expect(NewFlowRate("1/s")?.interval == 1_000_000_000 && NewFlowRate("1/s")?.tolerance == 0)
        #expect(NewFlowRate("1000000/s")?.interval == 1000)
        for bad in ["0/s", "20", "20/m", "20/S", "-1/s", "+5/s", "1000001/s", "99999999/s", "/s", " 5/s", "5 /s", "5/s ", "5.5/s", "", "５/s"] {
            #expect(NewFlowRate(bad) == nil, "\(bad) should be refused")
        }
    }

    @Test("a host gets its burst at once, then one flow per interval; refused flows are counted and left untouched")
    func burstThenRate() {
        let nat = Self.limited(4)  // burst 4, one every 250 ms
        for port: UInt16 in 40000..<40004 {
            #expect(Self.open(nat, Net.hostA, port, now: t0) == .acceptRewritten)
        }
        #expect(Self.open(nat, Net.hostA, 40004, now: t0) == .drop(.hostNewFlowRate))
        #expect(Self.open(nat, Net.hostA, 40005, now: at(0, plusNanoseconds: 249 * Self.ms)) == .drop(.hostNewFlowRate))
        #expect(nat.counters.drops(.hostNewFlowRate) == 2)
        #expect(nat.sessionCount == 4 && nat.mappingCount == 4, "a refused flow leaves no mapping behind")
        // One token back after 250 ms, and only one.
        #expect(Self.open(nat, Net.hostA, 40006, now: at(0, plusNanoseconds: 250 * Self.ms)) == .acceptRewritten)
        #expect(Self.open(nat, Net.hostA, 40007, now: at(0, plusNanoseconds: 251 * Self.ms)) == .drop(.hostNewFlowRate))
        // Idle for a second: the whole burst is back, no more.
        let later = at(2, plusNanoseconds: 250 * Self.ms)
        for port: UInt16 in 40010..<40014 {
            #expect(Self.open(nat, Net.hostA, port, now: later) == .acceptRewritten)
        }
        #expect(Self.open(nat, Net.hostA, 40014, now: later) == .drop(.hostNewFlowRate))
        #expect(nat.counters.drops(.hostNewFlowRate) == 4 && nat.counters[.sessionsCreated] == 9)
    }

    @Test("a steady flood is held to the rate: 1000 attempts over 10 s at 20/s admit the burst plus 20 a second")
    func floodHeldToRate() {
        let nat = Self.limited(20)
        var admitted = 0
        for i in 0..<1000 {
            let now = at(0, plusNanoseconds: UInt64(i) * 10 * Self.ms)  // one attempt every 10 ms
            if Self.open(nat, Net.hostA, 20000 + UInt16(i), now: now) == .acceptRewritten { admitted += 1 }
        }
        // 20 at once, then one per 50 ms over the 9.99 s that follow: 20 + 199.
        #expect(admitted == 219, "\(admitted)")
        #expect(nat.counters.drops(.hostNewFlowRate) == UInt64(1000 - admitted))
    }

    @Test("established flows, replies and other hosts are not limited")
    func establishedAndOthersUnaffected() {
        let nat = Self.limited(2)
        var first = PacketBuilder.udp(Net.hostA, 40000, Net.remote, 53, payload: [9])
        #expect(nat.run(&first, .outbound) == .acceptRewritten)
        let external = sourcePort(first)
        #expect(Self.open(nat, Net.hostA, 40001, now: t0) == .acceptRewritten)
        #expect(Self.open(nat, Net.hostA, 40002, now: t0) == .drop(.hostNewFlowRate))
        for i in 0..<50 {
            let now = at(0, plusNanoseconds: UInt64(i) * Self.ms)
            var again = PacketBuilder.udp(Net.hostA, 40000, Net.remote, 53, payload: [9])
            #expect(nat.run(&again, .outbound, now: now) == .acceptRewritten)
            #expect(again == PacketBuilder.udp(Net.external, external, Net.remote, 53, payload: [9]))
            var reply = PacketBuilder.udp(Net.remote, 53, Net.external, external, payload: [7])
            #expect(nat.run(&reply, .inbound, now: now) == .acceptRewritten)
            #expect(reply == PacketBuilder.udp(Net.remote, 53, Net.hostA, 40000, payload: [7]))
        }
        #expect(Self.open(nat, Net.hostB, 40000, now: t0) == .acceptRewritten)
        #expect(Self.open(nat, Net.hostB, 40001, now: t0) == .acceptRewritten)
        #expect(nat.counters.drops(.hostNewFlowRate) == 1)
    }

    @Test("flows opened from outside at a port forward do not spend the inside host's rate")
    func inboundNotCharged() {
        let nat = Self.limited(1) {
            $0.forwards = [PortForward(protocolNumber: IPProtocolNumber.tcp, externalPorts: 8080...8080, internalAddress: Net.hostA.address, internalPort: 80)]
        }
        #expect(Self.open(nat, Net.hostA, 40000, now: t0) == .acceptRewritten)
        #expect(Self.open(nat, Net.hostA, 40001, now: t0) == .drop(.hostNewFlowRate))
        for port: UInt16 in 50000..<50005 {
            var syn = PacketBuilder.tcp(Net.remote, port, Net.external, 8080)
            #expect(nat.run(&syn, .inbound) == .acceptRewritten)
            #expect(syn == PacketBuilder.tcp(Net.remote, port, Net.hostA, 80))
        }
        #expect(nat.counters.drops(.hostNewFlowRate) == 1)
    }

    @Test("without the option there is no limit; the per-host cap still applies on top of the rate")
    func defaultAndCap() {
        let free = makeTranslator()
        #expect(free.configuration.newFlowsPerHost == nil)
        for port: UInt16 in 40000..<40200 {
            #expect(Self.open(free, Net.hostA, port, now: t0) == .acceptRewritten)
        }
        let capped = Self.limited(100) { $0.maxSessionsPerHost = 3 }
        for port: UInt16 in 40000..<40003 {
            #expect(Self.open(capped, Net.hostA, port, now: t0) == .acceptRewritten)
        }
        #expect(Self.open(capped, Net.hostA, 40003, now: t0) == .drop(.hostSessionLimit))
        #expect(capped.counters.drops(.hostNewFlowRate) == 0)
    }

    @Test("a reload sets, changes and removes the rate; restored sessions are not charged")
    func reloadAndRestore() throws {
        let nat = makeTranslator()
        var limited = nat.configuration
        limited.newFlowsPerHost = NewFlowRate(perSecond: 1)
        let summary = try nat.reconfigure(limited, now: t0)
        #expect(summary.limitsChanged)
        #expect(Self.open(nat, Net.hostA, 40000, now: t0) == .acceptRewritten)
        #expect(Self.open(nat, Net.hostA, 40001, now: t0) == .drop(.hostNewFlowRate))
        var open = nat.configuration
        open.newFlowsPerHost = nil
        #expect(try nat.reconfigure(open, now: t0).limitsChanged)
        #expect(Self.open(nat, Net.hostA, 40002, now: t0) == .acceptRewritten)

        // Two sessions saved, restored into a translator allowing one new flow at once: both come back.
        let saved = nat.exportState(now: t0, savedAt: 1)
        let restored = Self.limited(1)
        let outcome = try restored.importState(saved, downtime: NATDuration(nanoseconds: 0), now: t0)
        #expect(restored.sessionCount == 2 && outcome.sessionsNoRoom == 0, "\(outcome)")
    }
}
