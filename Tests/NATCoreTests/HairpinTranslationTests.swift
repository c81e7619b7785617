import NATTestKit
import Testing
@testable import NATCore

// Hairpinning: inside → external address:port → inside, translated both ways at once.

@Suite("Hairpin translation")
struct HairpinTranslationTests {
    @Test("a LAN client reaches a forwarded LAN server through the external address, and back")
    func hairpinThroughForward() {
        let nat = makeTranslator { $0.forwards = [PortForward("tcp:8080=192.0.2.10:80")!] }
        var syn = PacketBuilder.tcp(Net.hostB, 40000, Net.external, 8080, flags: TCPFlag.syn, checksum: .notReady)
        #expect(nat.run(&syn, .hairpin, notReady: true) == .acceptRewritten)
        #expect(sourceAddress(syn) == Net.external)
        #expect(sourcePort(syn) == 40000) // the client's port is kept in its mapping
        #expect(destinationAddress(syn) == Net.hostA)
        #expect(destinationPort(syn) == 80)
        #expect(Verify.ipHeaderChecksumValid(syn))
        #expect(Verify.transportChecksumValid(syn))

        var synAck = PacketBuilder.tcp(Net.hostA, 80, Net.external, 40000, flags: TCPFlag.syn | TCPFlag.ack)
        #expect(nat.run(&synAck, .hairpin) == .acceptRewritten)
        #expect(sourceAddress(synAck) == Net.external)
        #expect(sourcePort(synAck) == 8080)
        #expect(destinationAddress(synAck) == Net.hostB)
        #expect(destinationPort(synAck) == 40000)
        #expect(Verify.ipHeaderChecksumValid(synAck))
        #expect(Verify.transportChecksumValid(synAck))
        #expect(nat.counters[.hairpinTranslated] == 2)
    }

    @Test("two inside peers open a UDP path through their mappings; filtering applies as from outside")
    func udpHolePunching() {
        let nat = makeTranslator()
        // Both have mappings (they talked to a server); ports are preserved.
        for (host, port) in [(Net.hostA, UInt16(5000)), (Net.hostB, UInt16(6000))] {
            var p = PacketBuilder.udp(host, port, Net.remote, 3478)
            #expect(nat.run(&p, .outbound) == .acceptRewritten)
            #expect(sourcePort(p) == port)
        }
        // A first: B's mapping has never sent to A's endpoint, so this one is filtered...
        var first = PacketBuilder.udp(Net.hostA, 5000, Net.external, 6000)
        let untouched = first
        #expect(nat.run(&first, .hairpin) == .accept)
        #expect(first == untouched)
        // ...but it opened A's side, so B's packet gets through, and A's answer after it.
        var second = PacketBuilder.udp(Net.hostB, 6000, Net.external, 5000)
        #expect(nat.run(&second, .hairpin) == .acceptRewritten)
        #expect(sourceAddress(second) == Net.external && sourcePort(second) == 6000)
        #expect(destinationAddress(second) == Net.hostA && destinationPort(second) == 5000)
        #expect(Verify.transportChecksumValid(second))
        var answer = PacketBuilder.udp(Net.hostA, 5000, Net.external, 6000)
        #expect(nat.run(&answer, .hairpin) == .acceptRewritten)
        #expect(destinationAddress(answer) == Net.hostB && destinationPort(answer) == 6000)
        #expect(nat.counters[.hairpinPassed] == 1)
    }

    @Test("packets to the router's own services and ICMP pass unchanged")
    func routerServicesPass() {
        let nat = makeTranslator()
        var ssh = PacketBuilder.tcp(Net.hostA, 40000, Net.external, 22)
        let before = ssh
        #expect(nat.run(&ssh, .hairpin) == .accept)
        #expect(ssh == before)
        var ping = PacketBuilder.icmp(Net.hostA, Net.external, identifier: 9)
        #expect(nat.run(&ping, .hairpin) == .accept)
        var lanAddress = PacketBuilder.udp(Net.hostA, 5000, IPv4Bytes(192, 0, 2, 1), 53)
        #expect(nat.run(&lanAddress, .hairpin) == .accept)
        #expect(nat.mappingCount == 0)
    }
}
