import NATTestKit
import Testing
@testable import NATCore

// Port forwards (DNAT): static mappings from the external address to an internal endpoint.

@Suite("Port forwards")
struct PortForwardTests {
    func forwardingTranslator(_ forwards: [String]) -> NATTranslator {
        makeTranslator { $0.forwards = forwards.map { PortForward($0)! } }
    }

    @Test("an inbound SYN to a forwarded port reaches the internal server; its reply leaves from that port")
    func tcpForwardBothWays() {
        let nat = forwardingTranslator(["tcp:8080=192.0.2.10:80"])
        var syn = PacketBuilder.tcp(Net.remote, 40000, Net.external, 8080, flags: TCPFlag.syn)
        let original = syn
        #expect(nat.run(&syn, .inbound) == .acceptRewritten)
        #expect(destinationAddress(syn) == Net.hostA)
        #expect(destinationPort(syn) == 80)
        #expect(sourceAddress(syn) == Net.remote)
        #expect(sourcePort(syn) == 40000)
        #expect(Verify.ipHeaderChecksumValid(syn))
        #expect(Verify.transportChecksumValid(syn))
        // Only the destination address, destination port and the two checksums changed.
        let changed = (0..<syn.count).filter { syn[$0] != original[$0] }
        #expect(Set(changed).isSubset(of: [10, 11, 16, 17, 18, 19, 22, 23, 36, 37]))

        var synAck = PacketBuilder.tcp(Net.hostA, 80, Net.remote, 40000, flags: TCPFlag.syn | TCPFlag.ack, checksum: .notReady)
        #expect(nat.run(&synAck, .outbound, notReady: true) == .acceptRewritten)
        #expect(sourceAddress(synAck) == Net.external)
        #expect(sourcePort(synAck) == 8080)
        #expect(Verify.ipHeaderChecksumValid(synAck))
        #expect(Verify.transportChecksumValid(synAck))
        #expect(nat.counters[.sessionsOpenedInbound] == 1)
    }

    @Test("a session opened from outside is transitory until the inside answers, then established")
    func inboundOpenedTCPState() {
        let nat = forwardingTranslator(["tcp:8080=192.0.2.10:80"])
        var syn = PacketBuilder.tcp(Net.remote, 40000, Net.external, 8080, flags: TCPFlag.syn)
        _ = nat.run(&syn, .inbound)
        #expect(nat.snapshots(now: t0).first?.tcpState == .opening)
        #expect(nat.snapshots(now: t0).first?.expiresIn == .seconds(120)) // tcp-opening, not 240 s: unanswered, it leaves soon
        // Another SYN from outside does not establish it.
        var again = PacketBuilder.tcp(Net.remote, 40000, Net.external, 8080, flags: TCPFlag.syn)
        _ = nat.run(&again, .inbound, now: at(1))
        #expect(nat.snapshots(now: at(1)).first?.tcpState == .opening)
        var synAck = PacketBuilder.tcp(Net.hostA, 80, Net.remote, 40000, flags: TCPFlag.syn | TCPFlag.ack)
        _ = nat.run(&synAck, .outbound, now: at(2))
        #expect(nat.snapshots(now: at(2)).first?.tcpState == .established)
        #expect(nat.snapshots(now: at(2)).first?.expiresIn == .seconds(7440))
    }

    @Test("a port range forwards onto consecutive internal ports")
    func udpRangeForward() {
        let nat = forwardingTranslator(["udp:5000-5002=192.0.2.11:6000"])
        var datagram = PacketBuilder.udp(Net.remote, 999, Net.external, 5001)
        #expect(nat.run(&datagram, .inbound) == .acceptRewritten)
        #expect(destinationAddress(datagram) == Net.hostB)
        #expect(destinationPort(datagram) == 6001)
        #expect(Verify.transportChecksumValid(datagram))
        var outside = PacketBuilder.udp(Net.remote, 999, Net.external, 5003)
        let before = outside
        #expect(nat.run(&outside, .inbound) == .accept)
        #expect(outside == before)
    }

    @Test("forwarded ports are never handed out to dynamic mappings")
    func forwardedPortsReserved() {
        let nat = forwardingTranslator(["udp:7000=192.0.2.10:7000"])
        var datagram = PacketBuilder.udp(Net.hostB, 7000, Net.remote, 53)
        #expect(nat.run(&datagram, .outbound) == .acceptRewritten)
        #expect(sourcePort(datagram) != 7000)
        #expect(sourcePort(datagram) >= 1024)
    }

    @Test("forwards survive a change of the external address and serve the new one")
    func forwardsAfterAddressChange() {
        let nat = forwardingTranslator(["tcp:2222=192.0.2.10:22"])
        let newAddress = IPv4Bytes(203, 0, 113, 99)
        nat.setExternalAddress(newAddress.address)
        var syn = PacketBuilder.tcp(Net.remote, 40000, newAddress, 2222, flags: TCPFlag.syn)
        #expect(nat.run(&syn, .inbound) == .acceptRewritten)
        #expect(destinationAddress(syn) == Net.hostA)
        #expect(destinationPort(syn) == 22)
        #expect(Verify.transportChecksumValid(syn))
    }

    @Test("two forwards to one internal endpoint are refused by validate()")
    func duplicateTargetsRefused() {
        var configuration = NATConfiguration()
        configuration.forwards = [PortForward("tcp:80=192.0.2.10:80")!, PortForward("tcp:8080=192.0.2.10:80")!]
        #expect(throws: NATConfigurationError.self) { try configuration.validate() }
        configuration.forwards = [PortForward("tcp:80=192.0.2.10:80")!, PortForward("udp:80=192.0.2.10:80")!]
        #expect(throws: Never.self) { try configuration.validate() }
    }

    @Test("forward syntax: good and bad forms")
    func forwardParsing() {
        let full = PortForward("tcp:8080=192.0.2.10:80")
        #expect(full?.protocolNumber == 6 && full?.externalPorts == 8080...8080 && full?.internalPort == 80)
        let range = PortForward("udp:5000-5010=192.0.2.20")
        #expect(range?.externalPorts == 5000...5010 && range?.internalPort == nil)
        #expect(range?.internalPort(for: 5005) == 5005)
        for bad in ["junk", "sctp:1=192.0.2.1", "tcp:0=192.0.2.1", "tcp:70000=192.0.2.1", "tcp:10-5=192.0.2.1",
                    "tcp:80=192.0.2", "tcp:80=192.0.2.1:0", "tcp:65000-65535=192.0.2.1:65001", "tcp:80", "tcp:=192.0.2.1"] {
            #expect(PortForward(bad) == nil, "accepted \(bad)")
        }
    }
}
