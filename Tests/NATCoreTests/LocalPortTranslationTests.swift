import NATTestKit
import Testing
@testable import NATCore

// Issue #20 item 1: the router's own ports (held by its sockets, or its reserved ephemeral
// range) are never a LAN host's. Expected packets are built independently with PacketBuilder
// (reference checksums) and compared whole.

@Suite("The router's own ports")
struct LocalPortTranslationTests {
    static func held(udp: [UInt16] = [], tcp: [UInt16] = []) -> LocalPortSet {
        var set = LocalPortSet()
        for port in udp { set.insert(protocolNumber: IPProtocolNumber.udp, port: port) }
        for port in tcp { set.insert(protocolNumber: IPProtocolNumber.tcp, port: port) }
        return set
    }

    @Test("a held port is not preserved: the mapping gets another port of its class, counted")
    func heldPortNotPreserved() {
        let nat = makeTranslator()
        nat.setLocalPorts(Self.held(udp: [4500]), reserved: nil)
        var p = PacketBuilder.udp(Net.hostA, 4500, Net.remote, 4500, payload: Array("ike".utf8))
        #expect(nat.run(&p, .outbound) == .acceptRewritten)
        let port = sourcePort(p)
        #expect(port != 4500 && (1024...65535).contains(port))
        #expect(p == PacketBuilder.udp(Net.external, port, Net.remote, 4500, payload: Array("ike".utf8)))
        #expect(nat.counters[.localPortSkips] == 1)
        // TCP 4500 is not held: preserved.
        var t = PacketBuilder.tcp(Net.hostA, 4500, Net.remote, 443)
        #expect(nat.run(&t, .outbound) == .acceptRewritten)
        #expect(t == PacketBuilder.tcp(Net.external, 4500, Net.remote, 443))
        #expect(nat.counters[.localPortSkips] == 1)
    }

    @Test("the reserved range is skipped in one step: no mapping in it, preservation outside it intact")
    func reservedRangeSkipped() {
        let nat = makeTranslator { $0.maxSessions = 4096; $0.maxMappings = 4096 }
        nat.setLocalPorts(LocalPortSet(), reserved: 32768...60999)
        for i in 0..<1000 {
            var p = PacketBuilder.udp(IPv4Bytes(192, 0, 2, UInt8(10 + i % 200)), UInt16(40000 + i), Net.remote, 53)
            #expect(nat.run(&p, .outbound) == .acceptRewritten)
            let port = sourcePort(p)
            #expect(!(32768...60999).contains(port) && port >= 1024, "port \(port)")
        }
        #expect(nat.counters[.localPortSkips] == 1000)
        var kept = PacketBuilder.udp(Net.hostA, 61000, Net.remote, 53)
        #expect(nat.run(&kept, .outbound) == .acceptRewritten)
        #expect(kept == PacketBuilder.udp(Net.external, 61000, Net.remote, 53))
        #expect(nat.counters[.localPortSkips] == 1000)
        // Inbound to a reserved port no socket holds and no mapping has: unmatched, like any closed port.
        let original = PacketBuilder.udp(Net.remote, 53, Net.external, 45000)
        expectUnchanged(nat, original, .inbound)
        #expect(nat.counters[.inboundUnmatched] == 1 && nat.counters[.inboundLocalPort] == 0)
    }

    @Test("a --port-range inside the reserved range has no port to give: dropped, counted")
    func rangeInsideReservedIsExhausted() {
        let nat = makeTranslator { $0.ports = PortAllocator(portRange: 40000...40010, lowPortRange: nil) }
        nat.setLocalPorts(LocalPortSet(), reserved: 32768...60999)
        let original = PacketBuilder.udp(Net.hostA, 5000, Net.remote, 53)
        expectUnchanged(nat, original, .outbound, verdict: .drop(.portsExhausted))
        // Partly inside: only the part outside is used.
        let partial = makeTranslator { $0.ports = PortAllocator(portRange: 60990...61001, lowPortRange: nil) }
        partial.setLocalPorts(LocalPortSet(), reserved: 32768...60999)
        var seen: Set<UInt16> = []
        for i in 0..<2 {
            var q = PacketBuilder.udp(IPv4Bytes(192, 0, 2, UInt8(10 + i)), 5000, Net.remote, 53)
            #expect(partial.run(&q, .outbound) == .acceptRewritten)
            seen.insert(sourcePort(q))
        }
        #expect(seen == [61000, 61001])
        var third = PacketBuilder.udp(Net.hostC, 5000, Net.remote, 53)
        #expect(partial.run(&third, .outbound) == .drop(.portsExhausted))
    }

    @Test("inbound to a held port goes to the router unchanged, byte for byte, counted apart from unmatched")
    func inboundToHeldPortPasses() {
        let nat = makeTranslator()
        nat.setLocalPorts(Self.held(udp: [4500]), reserved: nil)
        let original = PacketBuilder.udp(Net.remote, 4500, Net.external, 4500)
        expectUnchanged(nat, original, .inbound)
        #expect(nat.counters[.inboundLocalPort] == 1 && nat.counters[.inboundUnmatched] == 0)
        // A port nobody holds: unmatched, as before.
        var other = PacketBuilder.udp(Net.remote, 4500, Net.external, 4501)
        #expect(nat.run(&other, .inbound) == .accept)
        #expect(nat.counters[.inboundLocalPort] == 1 && nat.counters[.inboundUnmatched] == 1)
    }

    @Test("a mapping whose port a router socket takes later is evicted; the reply goes to the router; the host gets a new port")
    func laterSocketEvictsMapping() {
        let nat = makeTranslator()
        var out = PacketBuilder.udp(Net.hostA, 51820, Net.remote, 51820)
        #expect(nat.run(&out, .outbound) == .acceptRewritten)
        #expect(out == PacketBuilder.udp(Net.external, 51820, Net.remote, 51820))
        var reply = PacketBuilder.udp(Net.remote, 51820, Net.external, 51820)
        #expect(nat.run(&reply, .inbound) == .acceptRewritten)
        #expect(reply == PacketBuilder.udp(Net.remote, 51820, Net.hostA, 51820))

        let update = nat.setLocalPorts(Self.held(udp: [51820]), reserved: nil)
        #expect(update == LocalPortsUpdate(mappingsEvicted: 1, sessionsCut: 1, forwardsOnLocalPorts: 0))
        #expect(nat.mappingCount == 0 && nat.sessionCount == 0)
        #expect(nat.counters[.mappingsEvictedLocalPort] == 1)
        let original = PacketBuilder.udp(Net.remote, 51820, Net.external, 51820)
        expectUnchanged(nat, original, .inbound)
        #expect(nat.counters[.inboundLocalPort] == 1)
        var next = PacketBuilder.udp(Net.hostA, 51820, Net.remote, 51820)
        #expect(nat.run(&next, .outbound) == .acceptRewritten)
        #expect(sourcePort(next) != 51820)
        #expect(next == PacketBuilder.udp(Net.external, sourcePort(next), Net.remote, 51820))
        // Setting the same ports again finds nothing to evict.
        #expect(nat.setLocalPorts(Self.held(udp: [51820]), reserved: nil) == LocalPortsUpdate())
    }

    @Test("a mapping that holds only expectations is evicted too, its expectations with it")
    func expectedMappingEvicted() {
        let nat = makeTranslator { $0.helpers = [HelperRegistration(helper: MediaOfferHelper(), ports: [.udp(5060)])] }
        var offer = PacketBuilder.udp(Net.hostA, 5060, Net.remote, 5060, payload: Array("MEDIA 6000".utf8))
        _ = nat.run(&offer, .outbound)
        #expect(nat.pendingExpectationCount == 2 && nat.mappingCount == 3) // 5060, and 6000/6001 waiting for media
        let update = nat.setLocalPorts(Self.held(udp: [6000]), reserved: nil)
        #expect(update == LocalPortsUpdate(mappingsEvicted: 1, sessionsCut: 0, forwardsOnLocalPorts: 0))
        #expect(nat.pendingExpectationCount == 1 && nat.mappingCount == 2)
        let original = PacketBuilder.udp(Net.remote, 7000, Net.external, 6000, payload: [0x80, 0, 0, 1])
        expectUnchanged(nat, original, .inbound)
        // The RTCP port's expectation still lets its flow in.
        var rtcp = PacketBuilder.udp(Net.remote, 7001, Net.external, 6001, payload: [0x80, 0xc8, 0, 1])
        #expect(nat.run(&rtcp, .inbound) == .acceptRewritten)
        #expect(rtcp == PacketBuilder.udp(Net.remote, 7001, Net.hostA, 6001, payload: [0x80, 0xc8, 0, 1]))
    }

    @Test("a port forward on a held port is kept: the admin asked for it")
    func forwardOnHeldPortKept() {
        let nat = makeTranslator { $0.forwards = [PortForward("udp:500=192.0.2.10:500")!] }
        let update = nat.setLocalPorts(Self.held(udp: [500]), reserved: nil)
        #expect(update == LocalPortsUpdate(mappingsEvicted: 0, sessionsCut: 0, forwardsOnLocalPorts: 1))
        var p = PacketBuilder.udp(Net.remote, 500, Net.external, 500)
        #expect(nat.run(&p, .inbound) == .acceptRewritten)
        #expect(p == PacketBuilder.udp(Net.remote, 500, Net.hostA, 500))
        #expect(nat.counters[.inboundLocalPort] == 0)
    }

    @Test("a hairpinned packet to a held port goes to the router's stack unchanged")
    func hairpinToHeldPortPasses() {
        let nat = makeTranslator()
        nat.setLocalPorts(Self.held(tcp: [22]), reserved: nil)
        let original = PacketBuilder.tcp(Net.hostB, 40000, Net.external, 22)
        expectUnchanged(nat, original, .hairpin)
        #expect(nat.counters[.inboundLocalPort] == 1 && nat.counters[.hairpinPassed] == 1)
        #expect(nat.mappingCount == 0)
    }

    @Test("ICMP identifiers are not ports: a held port number does not touch echo")
    func icmpUnaffected() {
        let nat = makeTranslator()
        nat.setLocalPorts(Self.held(udp: [4660], tcp: [4660]), reserved: 1...65535)
        var echo = PacketBuilder.icmp(Net.hostA, Net.remote, identifier: 4660)
        #expect(nat.run(&echo, .outbound) == .acceptRewritten)
        #expect(echo == PacketBuilder.icmp(Net.external, Net.remote, identifier: 4660))
    }
}
