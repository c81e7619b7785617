import NATTestKit
import Testing
@testable import NATCore

@Suite struct ExternalAddressTests {
    @Test func newAddressFlushesEverything() {
        let nat = makeTranslator()
        _ = InboundTranslationTests.open(nat, PacketBuilder.udp(Net.hostA, 40000, Net.remote, 53))
        _ = InboundTranslationTests.open(nat, PacketBuilder.tcp(Net.hostB, 40000, Net.remote, 80))
        _ = InboundTranslationTests.open(nat, PacketBuilder.tcp(Net.hostB, 40000, Net.remote2, 80))
        #expect(nat.sessionCount == 3 && nat.mappingCount == 2)

        let newAddress = IPv4Bytes(203, 0, 113, 99)
        nat.setExternalAddress(newAddress.address)
        #expect(nat.configuration.externalAddress == newAddress.address)
        #expect(nat.sessionCount == 0 && nat.mappingCount == 0)
        #expect(nat.counters[.externalAddressChanges] == 1)
        #expect(nat.counters[.sessionsFlushed] == 3)
        #expect(nat.snapshots(now: t0).isEmpty)

        // Replies to the old mapping, at either address, are not translated.
        for destination in [Net.external, newAddress] {
            let original = PacketBuilder.udp(Net.remote, 53, destination, 40000)
            expectUnchanged(nat, original, .inbound)
        }
        // New traffic uses the new address, with the port free again.
        var p = PacketBuilder.udp(Net.hostB, 40000, Net.remote, 53, checksum: .notReady)
        #expect(nat.run(&p, .outbound, notReady: true) == .acceptRewritten)
        #expect(p == PacketBuilder.udp(newAddress, 40000, Net.remote, 53))
        var reply = PacketBuilder.udp(Net.remote, 53, newAddress, 40000)
        #expect(nat.run(&reply, .inbound) == .acceptRewritten)
        #expect(reply == PacketBuilder.udp(Net.remote, 53, Net.hostB, 40000))
    }

    @Test func sameAddressFlushesNothing() {
        let nat = makeTranslator()
        _ = InboundTranslationTests.open(nat, PacketBuilder.udp(Net.hostA, 40000, Net.remote, 53))
        nat.setExternalAddress(Net.external.address)
        #expect(nat.sessionCount == 1 && nat.mappingCount == 1)
        #expect(nat.counters[.externalAddressChanges] == 0 && nat.counters[.sessionsFlushed] == 0)
    }

    @Test func losingAndRegainingTheAddress() {
        let nat = makeTranslator()
        _ = InboundTranslationTests.open(nat, PacketBuilder.udp(Net.hostA, 40000, Net.remote, 53))
        nat.setExternalAddress(nil)
        #expect(nat.sessionCount == 0)
        var p = PacketBuilder.udp(Net.hostA, 40000, Net.remote, 53)
        #expect(nat.run(&p, .outbound) == .drop(.noExternalAddress))
        #expect(nat.snapshots(now: t0).isEmpty)
        nat.setExternalAddress(Net.external.address)
        #expect(nat.counters[.externalAddressChanges] == 2)
        var q = PacketBuilder.udp(Net.hostA, 40000, Net.remote, 53)
        #expect(nat.run(&q, .outbound) == .acceptRewritten)
        #expect(q == PacketBuilder.udp(Net.external, 40000, Net.remote, 53))
    }

    @Test func forEachSessionListsLiveSessions() {
        let nat = makeTranslator()
        _ = InboundTranslationTests.open(nat, PacketBuilder.udp(Net.hostB, 40000, Net.remote, 9)) // takes 40000
        let udpPort = InboundTranslationTests.open(nat, PacketBuilder.udp(Net.hostA, 40000, Net.remote, 53), now: at(1))
        _ = InboundTranslationTests.open(nat, PacketBuilder.tcp(Net.hostA, 33333, Net.remote2, 443), now: at(2))
        _ = InboundTranslationTests.open(nat, PacketBuilder.icmp(Net.hostA, Net.remote, identifier: 77), now: at(3))
        var synAck = PacketBuilder.tcp(Net.remote2, 443, Net.external, 33333, flags: TCPFlag.syn | TCPFlag.ack)
        #expect(nat.run(&synAck, .inbound, now: at(4)) == .acceptRewritten)

        let now = at(10)
        let list = nat.snapshots(now: now)
        #expect(list.count == 4)
        let udp = list.first { $0.protocolNumber == 17 && $0.internalAddress == Net.hostA.address }
        #expect(udp?.internalPort == 40000)
        #expect(udp?.remoteAddress == Net.remote.address && udp?.remotePort == 53)
        #expect(udp?.externalAddress == Net.external.address && udp?.externalPort == udpPort && udpPort != 40000)
        #expect(udp?.tcpState == TCPSessionState.none)
        #expect(udp?.expiresIn == .seconds(291))
        #expect(udp?.protocolName == "udp")

        let tcp = list.first { $0.protocolNumber == 6 }
        #expect(tcp?.internalAddress == Net.hostA.address && tcp?.internalPort == 33333)
        #expect(tcp?.remoteAddress == Net.remote2.address && tcp?.remotePort == 443)
        #expect(tcp?.externalPort == 33333)
        #expect(tcp?.tcpState == .established)
        #expect(tcp?.expiresIn == .seconds(7434))
        #expect(tcp?.description == "tcp ESTABLISHED 192.0.2.10:33333 -> 203.0.113.3:443 via 203.0.113.1:33333 expires 7434s")

        let icmp = list.first { $0.protocolNumber == 1 }
        #expect(icmp?.internalPort == 77 && icmp?.externalPort == 77 && icmp?.remotePort == 0)
        #expect(icmp?.expiresIn == .seconds(53))
        #expect(icmp?.description == "icmp 192.0.2.10 id 77 -> 203.0.113.2 via 203.0.113.1 id 77 expires 53s")

        // Expired-but-unswept sessions are not listed.
        #expect(nat.snapshots(now: at(200)).count == 3)
        #expect(nat.snapshots(now: at(302)).count == 1) // only the TCP session is left
        #expect(nat.sessionCount == 4)
    }
}
