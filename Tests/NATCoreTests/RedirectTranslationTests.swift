import NATTestKit
import Testing
@testable import NATCore

// Transparent redirect (--redirect tcp:80=3128): the client's packets go to the router's
// address on their input interface, the proxy's replies come back as from the original
// destination. Each rewritten packet is compared whole with one the kit built (checksums by
// the kit's reference implementation), so every byte that matters is checked.

@Suite("Redirect translation")
struct RedirectTranslationTests {
    static let routerLAN = IPv4Bytes(192, 0, 2, 1)
    static let lanInterface: UInt32 = 7

    func makeRedirecting(_ configure: (inout NATConfiguration) -> Void = { _ in }) -> NATTranslator {
        let nat = makeTranslator {
            $0.redirects = [TransparentRedirect(port: 80, localPort: 3128)]
            configure(&$0)
        }
        nat.setInterfaceAddresses([InterfaceAddress(interfaceIndex: 2, address: Net.external.address),
                                   InterfaceAddress(interfaceIndex: Self.lanInterface, address: Self.routerLAN.address)])
        return nat
    }

    func fromClient(_ nat: NATTranslator, _ packet: inout [UInt8], notReady: Bool = false, gso: Bool = false,
                    interface: UInt32 = lanInterface, now: NATTime = t0) -> TranslationVerdict {
        packet.withUnsafeMutableBytes {
            nat.translate($0, direction: .hairpin, checksum: PacketChecksumState(checksumNotReady: notReady, isGSO: gso), now: now,
                          inputInterface: interface)
        }
    }

    func fromProxy(_ nat: NATTranslator, _ packet: inout [UInt8], notReady: Bool = false, now: NATTime = t0) -> TranslationVerdict {
        packet.withUnsafeMutableBytes { nat.translateRedirectReply($0, checksum: PacketChecksumState(checksumNotReady: notReady), now: now) }
    }

    @Test("the client's SYN goes to the router's LAN address and the proxy port; the proxy's SYN-ACK comes back from the original destination",
          arguments: [false, true])
    func bothDirections(notReady: Bool) {
        let nat = makeRedirecting()
        var syn = PacketBuilder.tcp(Net.hostA, 40000, Net.remote, 80, flags: TCPFlag.syn, seq: 1000,
                                    checksum: notReady ? .notReady : .valid)
        #expect(fromClient(nat, &syn, notReady: notReady) == .acceptRewritten)
        #expect(syn == PacketBuilder.tcp(Net.hostA, 40000, Self.routerLAN, 3128, flags: TCPFlag.syn, seq: 1000))
        #expect(Verify.ipHeaderChecksumValid(syn) && Verify.transportChecksumValid(syn))

        // The proxy's reply is the router's own packet (OUTPUT): its checksum is not ready.
        var synAck = PacketBuilder.tcp(Self.routerLAN, 3128, Net.hostA, 40000, flags: TCPFlag.syn | TCPFlag.ack, seq: 5000, ack: 1001,
                                       checksum: notReady ? .notReady : .valid)
        #expect(fromProxy(nat, &synAck, notReady: notReady) == .acceptRewritten)
        #expect(synAck == PacketBuilder.tcp(Net.remote, 80, Net.hostA, 40000, flags: TCPFlag.syn | TCPFlag.ack, seq: 5000, ack: 1001))
        #expect(Verify.ipHeaderChecksumValid(synAck) && Verify.transportChecksumValid(synAck))

        var ack = PacketBuilder.tcp(Net.hostA, 40000, Net.remote, 80, flags: TCPFlag.ack, seq: 1001, ack: 5001, payload: Array("GET / HTTP/1.0\r\n\r\n".utf8))
        #expect(fromClient(nat, &ack) == .acceptRewritten)
        #expect(ack == PacketBuilder.tcp(Net.hostA, 40000, Self.routerLAN, 3128, flags: TCPFlag.ack, seq: 1001, ack: 5001,
                                         payload: Array("GET / HTTP/1.0\r\n\r\n".utf8)))
        #expect(nat.counters[.redirectedToProxy] == 2 && nat.counters[.redirectedFromProxy] == 1)
        #expect(nat.counters[.redirectSessionsCreated] == 1 && nat.redirectSessionCount == 1)
        // Nothing was masqueraded: no mapping, no session of the NAT tables.
        #expect(nat.mappingCount == 0 && nat.sessionCount == 0)

        let found = nat.originalDestination(clientAddress: Net.hostA.address, clientPort: 40000, now: t0)
        #expect(found?.originalAddress == Net.remote.address && found?.originalPort == 80)
        #expect(found?.localAddress == Self.routerLAN.address && found?.localPort == 3128)
        #expect(found?.tcpState == .established)
        var lines: [String] = []
        nat.forEachRedirect(now: at(1)) { lines.append($0.description) }
        #expect(lines == ["tcp ESTABLISHED 192.0.2.10:40000 -> 203.0.113.2:80 redirected 192.0.2.1:3128 expires 7439s"])
    }

    @Test("a GSO segment from the client with its checksum not ready gets the full checksum: delivered locally, nothing else finishes it")
    func clientGSOGetsTheFullChecksum() {
        let nat = makeRedirecting()
        let payload = [UInt8](repeating: 0x5a, count: 8000)
        var bulk = PacketBuilder.tcp(Net.hostA, 40000, Net.remote, 80, flags: TCPFlag.ack, seq: 1001, ack: 1, payload: payload, checksum: .notReady)
        #expect(fromClient(nat, &bulk, notReady: true, gso: true) == .acceptRewritten)
        #expect(bulk == PacketBuilder.tcp(Net.hostA, 40000, Self.routerLAN, 3128, flags: TCPFlag.ack, seq: 1001, ack: 1, payload: payload))
        #expect(Verify.transportChecksumValid(bulk))
    }

    @Test("other ports, the router's own addresses and connections made to the proxy directly are not touched")
    func untouched() {
        let nat = makeRedirecting()
        var https = PacketBuilder.tcp(Net.hostA, 40000, Net.remote, 443)
        #expect(fromClient(nat, &https) == .accept) // the hairpin path passes a packet not to the WAN address
        var toRouter = PacketBuilder.tcp(Net.hostA, 40001, Self.routerLAN, 80)
        let toRouterBefore = toRouter
        #expect(fromClient(nat, &toRouter) == .accept)
        #expect(toRouter == toRouterBefore)
        var direct = PacketBuilder.tcp(Self.routerLAN, 3128, Net.hostA, 40002, flags: TCPFlag.syn | TCPFlag.ack)
        let directBefore = direct
        #expect(fromProxy(nat, &direct) == .accept)
        #expect(direct == directBefore)
        #expect(nat.counters[.redirectRepliesUnmatched] == 1 && nat.redirectSessionCount == 0)
        #expect(nat.originalDestination(clientAddress: Net.hostA.address, clientPort: 40000, now: t0) == nil)
    }

    @Test("refusals: one client endpoint to two destinations, a full table, an interface without an address")
    func refusals() {
        let nat = makeRedirecting { $0.maxRedirectSessions = 1 }
        var first = PacketBuilder.tcp(Net.hostA, 40000, Net.remote, 80)
        #expect(fromClient(nat, &first) == .acceptRewritten)
        var clash = PacketBuilder.tcp(Net.hostA, 40000, Net.remote2, 80)
        #expect(fromClient(nat, &clash) == .drop(.redirectClash))
        var second = PacketBuilder.tcp(Net.hostB, 40000, Net.remote, 80)
        #expect(fromClient(nat, &second) == .drop(.redirectTableFull))
        var unknown = PacketBuilder.tcp(Net.hostB, 40001, Net.remote, 80)
        #expect(fromClient(nat, &unknown, interface: 99) == .drop(.redirectNoLocalAddress))
        #expect(nat.counters.drops(.redirectClash) == 1 && nat.counters.drops(.redirectTableFull) == 1)
        #expect(nat.counters.drops(.redirectNoLocalAddress) == 1)
    }

    @Test("one client address holds at most its share; an expired connection gives its share back")
    func perHostShare() {
        let nat = makeRedirecting { $0.maxRedirectSessionsPerHost = 2 }
        for port: UInt16 in [40000, 40001] {
            var syn = PacketBuilder.tcp(Net.hostA, port, Net.remote, 80)
            #expect(fromClient(nat, &syn) == .acceptRewritten)
        }
        var third = PacketBuilder.tcp(Net.hostA, 40002, Net.remote, 80)
        #expect(fromClient(nat, &third) == .drop(.redirectHostLimit))
        var other = PacketBuilder.tcp(Net.hostB, 40002, Net.remote, 80)
        #expect(fromClient(nat, &other) == .acceptRewritten)
        // The first two end unanswered (tcp-opening, 120 s); the share is free again.
        nat.expire(now: at(121), budget: 16)
        #expect(nat.redirectSessionCount == 0 && nat.redirectHosts.sessions(of: Net.hostA.address.value) == 0)
        var again = PacketBuilder.tcp(Net.hostA, 40002, Net.remote, 80)
        #expect(fromClient(nat, &again, now: at(122)) == .acceptRewritten)
        #expect(nat.counters.drops(.redirectHostLimit) == 1)
    }

    @Test("an unanswered redirected SYN expires with tcp-opening; the sweep frees its row and the table takes a new one")
    func expiry() {
        let nat = makeRedirecting { $0.maxRedirectSessions = 1 }
        var syn = PacketBuilder.tcp(Net.hostA, 40000, Net.remote, 80)
        #expect(fromClient(nat, &syn) == .acceptRewritten)
        nat.expire(now: at(119), budget: 16)
        #expect(nat.redirectSessionCount == 1)
        nat.expire(now: at(121), budget: 16)
        #expect(nat.redirectSessionCount == 0 && nat.counters[.redirectSessionsExpired] == 1)
        var next = PacketBuilder.tcp(Net.hostB, 40000, Net.remote, 80)
        #expect(fromClient(nat, &next, now: at(122)) == .acceptRewritten)
        // A late reply to the expired connection is no longer rewritten.
        var late = PacketBuilder.tcp(Self.routerLAN, 3128, Net.hostA, 40000, flags: TCPFlag.ack)
        #expect(fromProxy(nat, &late, now: at(122)) == .accept)
    }
}
