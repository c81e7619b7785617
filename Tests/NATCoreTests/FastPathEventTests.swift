import NATTestKit
import Testing
@testable import NATCore

// The core's side of the kernel fast path (NATTranslator-FastPath.swift): `.sessionEstablished`
// events for plain sessions becoming two-way (only when asked for), and `fastPathCheck`, whose
// last-seen time keeps an offloaded session alive.

@Suite("Fast path events and checks")
struct FastPathEventTests {
    static func translator(_ configure: (inout NATConfiguration) -> Void = { _ in }) -> NATTranslator {
        let nat = NATEventTests.enabled(configure)
        nat.recordsEstablishedSessions = true
        return nat
    }

    static func established(_ nat: NATTranslator) -> [NATEvent] {
        NATEventTests.drain(nat).filter { $0.kind == .sessionEstablished }
    }

    @Test("UDP: the first packet of the second direction makes one event; not without recordsEstablishedSessions")
    func udpBothWays() {
        let nat = Self.translator()
        let port = InboundTranslationTests.open(nat, PacketBuilder.udp(Net.hostA, 40000, Net.remote, 53), now: at(1))
        _ = InboundTranslationTests.open(nat, PacketBuilder.udp(Net.hostA, 40000, Net.remote, 53), now: at(2))
        #expect(Self.established(nat).isEmpty)
        for second in [3, 4] {
            var reply = PacketBuilder.udp(Net.remote, 53, Net.external, port)
            #expect(nat.run(&reply, .inbound, now: at(UInt64(second))) == .acceptRewritten)
        }
        #expect(Self.established(nat) == [
            NATEventTests.event(.sessionEstablished, .outbound, 17, at: at(3), inside: Net.hostA, 40000, port, remote: Net.remote, 53),
        ])

        let quiet = NATEventTests.enabled()
        let quietPort = InboundTranslationTests.open(quiet, PacketBuilder.udp(Net.hostA, 40000, Net.remote, 53), now: at(1))
        var reply = PacketBuilder.udp(Net.remote, 53, Net.external, quietPort)
        #expect(quiet.run(&reply, .inbound, now: at(2)) == .acceptRewritten)
        #expect(Self.established(quiet).isEmpty)
    }

    @Test("TCP: the answer that makes the session ESTABLISHED makes the event, once; a helper's session never")
    func tcpEstablished() {
        let nat = Self.translator { $0.helpers = [HelperRegistration(helper: GrowAtSignsHelper(), ports: [5000])] }
        _ = InboundTranslationTests.open(nat, PacketBuilder.tcp(Net.hostA, 41000, Net.remote, 80, flags: TCPFlag.syn, seq: 100), now: at(1))
        var synAck = PacketBuilder.tcp(Net.remote, 80, Net.external, 41000, flags: TCPFlag.syn | TCPFlag.ack, seq: 500, ack: 101)
        #expect(nat.run(&synAck, .inbound, now: at(2)) == .acceptRewritten)
        var ack = PacketBuilder.tcp(Net.hostA, 41000, Net.remote, 80, flags: TCPFlag.ack, seq: 101, ack: 501)
        #expect(nat.run(&ack, .outbound, now: at(3)) == .acceptRewritten)
        // The helper's port: established too, but the helper must see every byte.
        _ = InboundTranslationTests.open(nat, PacketBuilder.tcp(Net.hostB, 42000, Net.remote, 5000, flags: TCPFlag.syn, seq: 7), now: at(4))
        var helperSynAck = PacketBuilder.tcp(Net.remote, 5000, Net.external, 42000, flags: TCPFlag.syn | TCPFlag.ack, seq: 900, ack: 8)
        #expect(nat.run(&helperSynAck, .inbound, now: at(5)) == .acceptRewritten)
        #expect(Self.established(nat) == [
            NATEventTests.event(.sessionEstablished, .outbound, 6, at: at(2), inside: Net.hostA, 41000, 41000, remote: Net.remote, 80),
        ])
    }

    @Test("fastPathCheck: live with the translation; the kernel's last-seen time renews the timer; ended after FIN; gone")
    func check() {
        let nat = Self.translator()
        let port = InboundTranslationTests.open(nat, PacketBuilder.udp(Net.hostA, 40000, Net.remote, 53), now: at(1))
        func check(lastSeen: UInt64?, now: UInt64) -> FastPathSessionCheck {
            nat.fastPathCheck(NATFlow(protocolNumber: 17, internalEndpoint: IPv4Endpoint(address: Net.hostA.address, port: 40000), remoteEndpoint: IPv4Endpoint(address: Net.remote.address, port: 53)),
                              lastSeen: lastSeen.map { at($0) }, now: at(now))
        }
        #expect(check(lastSeen: nil, now: 2) == .live(externalAddress: Net.external.address.value, externalPort: port))
        // Packets the engine never saw until second 250: the 300 s timeout runs from there.
        #expect(check(lastSeen: 250, now: 260) == .live(externalAddress: Net.external.address.value, externalPort: port))
        // An older time never shortens it.
        #expect(check(lastSeen: 10, now: 261) == .live(externalAddress: Net.external.address.value, externalPort: port))
        #expect(nat.expire(now: at(549), budget: 100) == 0)
        #expect(nat.expire(now: at(550), budget: 100) == 1)
        #expect(check(lastSeen: nil, now: 551) == .gone)
        #expect(nat.fastPathCheck(NATFlow(protocolNumber: 6, internalEndpoint: IPv4Endpoint(address: Net.hostA.address, port: 40000), remoteEndpoint: IPv4Endpoint(address: Net.remote.address, port: 53)),
                              lastSeen: nil, now: at(2)) == .gone)

        _ = InboundTranslationTests.open(nat, PacketBuilder.tcp(Net.hostA, 41000, Net.remote, 80, flags: TCPFlag.syn, seq: 100), now: at(600))
        var synAck = PacketBuilder.tcp(Net.remote, 80, Net.external, 41000, flags: TCPFlag.syn | TCPFlag.ack, seq: 500, ack: 101)
        #expect(nat.run(&synAck, .inbound, now: at(600)) == .acceptRewritten)
        func tcpCheck() -> FastPathSessionCheck {
            nat.fastPathCheck(NATFlow(protocolNumber: 6, internalEndpoint: IPv4Endpoint(address: Net.hostA.address, port: 41000), remoteEndpoint: IPv4Endpoint(address: Net.remote.address, port: 80)),
                              lastSeen: nil, now: at(601))
        }
        #expect(tcpCheck() == .live(externalAddress: Net.external.address.value, externalPort: 41000))
        var fin = PacketBuilder.tcp(Net.hostA, 41000, Net.remote, 80, flags: TCPFlag.fin | TCPFlag.ack, seq: 101, ack: 501)
        #expect(nat.run(&fin, .outbound, now: at(601)) == .acceptRewritten)
        #expect(tcpCheck() == .ended)
    }

    @Test("restored: an ESTABLISHED TCP session makes its event at the restore (reason restored); UDP ones at their next exchange")
    func restored() throws {
        let old = Self.translator()
        let udpPort = InboundTranslationTests.open(old, PacketBuilder.udp(Net.hostA, 40000, Net.remote, 53), now: at(1))
        var reply = PacketBuilder.udp(Net.remote, 53, Net.external, udpPort)
        #expect(old.run(&reply, .inbound, now: at(2)) == .acceptRewritten)
        _ = InboundTranslationTests.open(old, PacketBuilder.udp(Net.hostB, 40001, Net.remote, 53), now: at(2))
        _ = InboundTranslationTests.open(old, PacketBuilder.tcp(Net.hostA, 41000, Net.remote, 80, flags: TCPFlag.syn, seq: 100), now: at(3))
        var synAck = PacketBuilder.tcp(Net.remote, 80, Net.external, 41000, flags: TCPFlag.syn | TCPFlag.ack, seq: 500, ack: 101)
        #expect(old.run(&synAck, .inbound, now: at(3)) == .acceptRewritten)
        let saved = old.exportState(now: at(10), savedAt: 1_700_000_000)
        let new = Self.translator()
        _ = try new.importState(saved, downtime: .seconds(5), now: at(20))
        #expect(Self.established(new).map { "\($0.protocolNumber) \($0.internalPort) \($0.reason)" } == ["6 41000 restored"])
        // The UDP direction bits are not in the file (its checks refuse unknown flags on UDP).
        #expect(saved.sessions.allSatisfy { $0.lifetime.tcpFlagsSeen & ~TCPSessionState.openedInbound & ~TCPSessionState.finBoth == 0 })
        _ = InboundTranslationTests.open(new, PacketBuilder.udp(Net.hostA, 40000, Net.remote, 53), now: at(21))
        var again = PacketBuilder.udp(Net.remote, 53, Net.external, udpPort)
        #expect(new.run(&again, .inbound, now: at(22)) == .acceptRewritten)
        #expect(Self.established(new).map { "\($0.protocolNumber) \($0.internalPort) \($0.reason)" } == ["17 40000 outbound"])
    }

    @Test("hairpinned sessions are never offloaded")
    func hairpinNever() {
        let nat = Self.translator { $0.filtering = .endpointIndependent }
        let port = InboundTranslationTests.open(nat, PacketBuilder.udp(Net.hostB, 5000, Net.remote, 53), now: at(1))
        var toB = PacketBuilder.udp(Net.hostA, 6000, Net.external, port)
        #expect(nat.run(&toB, .hairpin, now: at(2)) == .acceptRewritten)
        var back = PacketBuilder.udp(Net.hostB, 5000, Net.external, 6000)
        #expect(nat.run(&back, .hairpin, now: at(3)) == .acceptRewritten)
        #expect(nat.counters[.hairpinTranslated] == 2)
        #expect(Self.established(nat).isEmpty)
    }
}
