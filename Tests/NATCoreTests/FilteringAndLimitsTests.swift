import NATTestKit
import Testing
@testable import NATCore

// Endpoint-independent filtering ("full cone") and the per-host session cap.

@Suite("Filtering and per-host limits")
struct FilteringAndLimitsTests {
    @Test("endpoint-independent filtering lets any remote reach a live mapping; the default does not")
    func endpointIndependentFiltering() {
        for filtering in NATFiltering.allCases {
            let nat = makeTranslator { $0.filtering = filtering }
            var out = PacketBuilder.udp(Net.hostA, 5000, Net.remote, 3478)
            #expect(nat.run(&out, .outbound) == .acceptRewritten)
            let mapped = sourcePort(out)
            var stranger = PacketBuilder.udp(Net.remote2, 999, Net.external, mapped)
            let before = stranger
            let verdict = nat.run(&stranger, .inbound)
            if filtering == .endpointIndependent {
                #expect(verdict == .acceptRewritten)
                #expect(destinationAddress(stranger) == Net.hostA)
                #expect(destinationPort(stranger) == 5000)
                #expect(Verify.transportChecksumValid(stranger))
                #expect(nat.sessionCount == 2)
            } else {
                #expect(verdict == .accept)
                #expect(stranger == before)
                #expect(nat.sessionCount == 1)
            }
        }
    }

    @Test("endpoint-independent filtering opens nothing for a port without a mapping")
    func endpointIndependentNeedsMapping() {
        let nat = makeTranslator { $0.filtering = .endpointIndependent }
        var stranger = PacketBuilder.udp(Net.remote2, 999, Net.external, 5000)
        #expect(nat.run(&stranger, .inbound) == .accept)
        #expect(nat.sessionCount == 0)
    }

    @Test("one host cannot exceed its session cap; others are unaffected; expiry gives room back")
    func perHostCap() {
        let nat = makeTranslator { $0.maxSessionsPerHost = 3 }
        for port in UInt16(1)...3 {
            var p = PacketBuilder.udp(Net.hostA, 5000, Net.remote, port)
            #expect(nat.run(&p, .outbound) == .acceptRewritten)
        }
        var fourth = PacketBuilder.udp(Net.hostA, 5001, Net.remote, 4)
        #expect(nat.run(&fourth, .outbound) == .drop(.hostSessionLimit))
        #expect(nat.counters.drops(.hostSessionLimit) == 1)
        #expect(nat.mappingCount == 1) // the refused flow's new mapping was not kept
        var other = PacketBuilder.udp(Net.hostB, 5000, Net.remote, 4)
        #expect(nat.run(&other, .outbound) == .acceptRewritten)
        let later = at(301)
        nat.expire(now: later, budget: 1024)
        var again = PacketBuilder.udp(Net.hostA, 5001, Net.remote, 4)
        #expect(nat.run(&again, .outbound, now: later) == .acceptRewritten)
    }
}
