import NATTestKit
import Testing
@testable import NATCore

// NAT events (NATEvent.swift): each kind and reason with its exact fields, recorded where
// mappings and sessions are made and removed; nothing when off; a full ring counts its losses.

@Suite("NAT events")
struct NATEventTests {
    static func drain(_ nat: NATTranslator) -> [NATEvent] {
        var all: [NATEvent] = []
        nat.drainEvents { all.append($0) }
        return all
    }

    static func event(_ kind: NATEventKind, _ reason: NATEventReason, _ proto: UInt8, at time: NATTime,
                      inside: IPv4Bytes, _ insidePort: UInt16, outside: IPv4Bytes = Net.external, _ outsidePort: UInt16,
                      remote: IPv4Bytes? = nil, _ remotePort: UInt16 = 0) -> NATEvent {
        NATEvent(timeNanoseconds: time.nanoseconds, kind: kind, reason: reason, protocolNumber: proto,
                 internalAddress: inside.address.value, internalPort: insidePort,
                 externalAddress: outside.address.value, externalPort: outsidePort,
                 remoteAddress: remote?.address.value ?? 0, remotePort: remotePort)
    }

    static func enabled(capacity: Int = 64, _ configure: (inout NATConfiguration) -> Void = { _ in }) -> NATTranslator {
        let nat = makeTranslator(configure)
        nat.enableEvents(capacity: capacity, now: t0)
        return nat
    }

    @Test("off by default: nothing is recorded, nothing counted")
    func offByDefault() {
        let nat = makeTranslator()
        _ = InboundTranslationTests.open(nat, PacketBuilder.udp(Net.hostA, 40000, Net.remote, 53))
        nat.expire(now: at(400), budget: 100)
        #expect(!nat.eventsEnabled && nat.eventsWaiting == 0 && Self.drain(nat).isEmpty)
        #expect(nat.counters[.natEventsRecorded] == 0 && nat.counters[.natEventsLost] == 0)
    }

    @Test("a UDP flow: mapping and session created by its first packet, removed by the sweep when idle")
    func udpCreatedAndExpired() {
        let nat = Self.enabled()
        #expect(nat.eventCapacity == 64)
        _ = InboundTranslationTests.open(nat, PacketBuilder.udp(Net.hostA, 40000, Net.remote, 53), now: at(1))
        // A second packet of the same flow, and its reply, make no event.
        _ = InboundTranslationTests.open(nat, PacketBuilder.udp(Net.hostA, 40000, Net.remote, 53), now: at(2))
        var reply = PacketBuilder.udp(Net.remote, 53, Net.external, 40000)
        #expect(nat.run(&reply, .inbound, now: at(3)) == .acceptRewritten)
        #expect(Self.drain(nat) == [
            Self.event(.mappingCreated, .outbound, 17, at: at(1), inside: Net.hostA, 40000, 40000),
            Self.event(.sessionCreated, .outbound, 17, at: at(1), inside: Net.hostA, 40000, 40000, remote: Net.remote, 53),
        ])
        #expect(nat.expire(now: at(3 + 299), budget: 100) == 0)
        #expect(Self.drain(nat).isEmpty)
        #expect(nat.expire(now: at(3 + 300), budget: 100) == 1)
        #expect(Self.drain(nat) == [
            Self.event(.sessionRemoved, .expired, 17, at: at(303), inside: Net.hostA, 40000, 40000, remote: Net.remote, 53),
            Self.event(.mappingRemoved, .expired, 17, at: at(303), inside: Net.hostA, 40000, 40000),
        ])
        #expect(nat.counters[.natEventsRecorded] == 4 && nat.counters[.natEventsLost] == 0 && nat.eventsWaiting == 0)
    }

    @Test("a second remote of one mapping: one more session, the mapping stays until the last session goes")
    func secondSessionOfAMapping() {
        let nat = Self.enabled()
        let port = InboundTranslationTests.open(nat, PacketBuilder.udp(Net.hostA, 40000, Net.remote, 53))
        _ = Self.drain(nat)
        _ = InboundTranslationTests.open(nat, PacketBuilder.udp(Net.hostA, 40000, Net.remote2, 123), now: at(100))
        #expect(Self.drain(nat) == [
            Self.event(.sessionCreated, .outbound, 17, at: at(100), inside: Net.hostA, 40000, port, remote: Net.remote2, 123),
        ])
        nat.expire(now: at(301), budget: 100)
        #expect(Self.drain(nat) == [
            Self.event(.sessionRemoved, .expired, 17, at: at(301), inside: Net.hostA, 40000, port, remote: Net.remote, 53),
        ])
    }

    @Test("TCP: a FIN each way ends as tcp-closed, a RST as tcp-reset; a lazily found stale session too")
    func tcpClosedAndReset() {
        let nat = Self.enabled()
        _ = InboundTranslationTests.open(nat, PacketBuilder.tcp(Net.hostA, 41000, Net.remote, 80, flags: TCPFlag.syn, seq: 100))
        var synAck = PacketBuilder.tcp(Net.remote, 80, Net.external, 41000, flags: TCPFlag.syn | TCPFlag.ack, seq: 500, ack: 101)
        #expect(nat.run(&synAck, .inbound) == .acceptRewritten)
        var fin = PacketBuilder.tcp(Net.hostA, 41000, Net.remote, 80, flags: TCPFlag.fin | TCPFlag.ack, seq: 101, ack: 501)
        #expect(nat.run(&fin, .outbound, now: at(1)) == .acceptRewritten)
        var finBack = PacketBuilder.tcp(Net.remote, 80, Net.external, 41000, flags: TCPFlag.fin | TCPFlag.ack, seq: 501, ack: 102)
        #expect(nat.run(&finBack, .inbound, now: at(1)) == .acceptRewritten)

        _ = InboundTranslationTests.open(nat, PacketBuilder.tcp(Net.hostB, 42000, Net.remote, 443, flags: TCPFlag.syn, seq: 7))
        var rst = PacketBuilder.tcp(Net.hostB, 42000, Net.remote, 443, flags: TCPFlag.rst, seq: 8)
        #expect(nat.run(&rst, .outbound, now: at(1)) == .acceptRewritten)
        #expect(Self.drain(nat).map(\.kind) == [.mappingCreated, .sessionCreated, .mappingCreated, .sessionCreated])

        // Past every TCP timeout but the established one: the sweep takes both.
        nat.expire(now: at(300), budget: 100)
        #expect(Self.drain(nat) == [
            Self.event(.sessionRemoved, .tcpClosed, 6, at: at(300), inside: Net.hostA, 41000, 41000, remote: Net.remote, 80),
            Self.event(.mappingRemoved, .tcpClosed, 6, at: at(300), inside: Net.hostA, 41000, 41000),
            Self.event(.sessionRemoved, .tcpReset, 6, at: at(300), inside: Net.hostB, 42000, 42000, remote: Net.remote, 443),
            Self.event(.mappingRemoved, .tcpReset, 6, at: at(300), inside: Net.hostB, 42000, 42000),
        ])

        // A stale session found by a packet (not the sweep) is removed with the same reason.
        _ = InboundTranslationTests.open(nat, PacketBuilder.udp(Net.hostA, 43000, Net.remote, 53), now: at(20))
        _ = InboundTranslationTests.open(nat, PacketBuilder.udp(Net.hostA, 43000, Net.remote, 53), now: at(400))
        #expect(Self.drain(nat) == [
            Self.event(.mappingCreated, .outbound, 17, at: at(20), inside: Net.hostA, 43000, 43000),
            Self.event(.sessionCreated, .outbound, 17, at: at(20), inside: Net.hostA, 43000, 43000, remote: Net.remote, 53),
            // The first session is stale: removed with its mapping, then the packet makes both anew.
            Self.event(.sessionRemoved, .expired, 17, at: at(400), inside: Net.hostA, 43000, 43000, remote: Net.remote, 53),
            Self.event(.mappingRemoved, .expired, 17, at: at(400), inside: Net.hostA, 43000, 43000),
            Self.event(.mappingCreated, .outbound, 17, at: at(400), inside: Net.hostA, 43000, 43000),
            Self.event(.sessionCreated, .outbound, 17, at: at(400), inside: Net.hostA, 43000, 43000, remote: Net.remote, 53),
        ])
    }

    @Test("ICMP echo: the identifiers are the ports, the remote has none")
    func icmpEcho() {
        let nat = Self.enabled()
        _ = InboundTranslationTests.open(nat, PacketBuilder.icmp(Net.hostA, Net.remote, identifier: 77), now: at(5))
        #expect(Self.drain(nat) == [
            Self.event(.mappingCreated, .outbound, 1, at: at(5), inside: Net.hostA, 77, 77),
            Self.event(.sessionCreated, .outbound, 1, at: at(5), inside: Net.hostA, 77, 77, remote: Net.remote, 0),
        ])
    }

    @Test("port forwards: their static mappings when events are enabled, inbound sessions through them")
    func portForward() {
        let nat = Self.enabled { $0.forwards = [PortForward("tcp:8080=192.0.2.11:80")!] }
        #expect(Self.drain(nat) == [Self.event(.mappingCreated, .portForward, 6, at: t0, inside: Net.hostB, 80, 8080)])
        let syn = ReconfigureTests.inboundSYN(nat, from: Net.outsider, sourcePort: 50000, to: 8080, now: at(2))
        #expect(syn.verdict == .acceptRewritten)
        #expect(Self.drain(nat) == [
            Self.event(.sessionCreated, .inbound, 6, at: at(2), inside: Net.hostB, 80, 8080, remote: Net.outsider, 50000),
        ])
        // The session ends; the static mapping stays.
        nat.expire(now: at(2 + 120), budget: 100)
        #expect(Self.drain(nat) == [
            Self.event(.sessionRemoved, .expired, 6, at: at(122), inside: Net.hostB, 80, 8080, remote: Net.outsider, 50000),
        ])
        #expect(nat.mappingCount == 1)
    }

    @Test("a reload that re-points a forward cuts its sessions (reason reload); a removed one's mapping lingers until its last session")
    func reload() throws {
        let nat = Self.enabled { $0.forwards = [PortForward("tcp:8080=192.0.2.11:80")!, PortForward("udp:5000=192.0.2.12:5001")!] }
        #expect(ReconfigureTests.inboundSYN(nat, from: Net.outsider, sourcePort: 50000, to: 8080).verdict == .acceptRewritten)
        var datagram = PacketBuilder.udp(Net.outsider, 6000, Net.external, 5000)
        #expect(nat.run(&datagram, .inbound) == .acceptRewritten)
        _ = Self.drain(nat)
        try nat.reconfigure(ReconfigureTests.changed(nat) { $0.forwards = [PortForward("tcp:8080=192.0.2.12:80")!] }, now: at(9))
        #expect(Self.drain(nat) == [
            Self.event(.sessionRemoved, .reload, 6, at: at(9), inside: Net.hostB, 80, 8080, remote: Net.outsider, 50000),
            Self.event(.mappingRemoved, .reload, 6, at: at(9), inside: Net.hostB, 80, 8080),
            Self.event(.mappingCreated, .portForward, 6, at: at(9), inside: Net.hostC, 80, 8080),
        ])
        // The removed UDP forward's flow goes on; with its end the mapping goes too.
        nat.expire(now: at(300), budget: 100)
        #expect(Self.drain(nat) == [
            Self.event(.sessionRemoved, .expired, 17, at: at(300), inside: Net.hostC, 5001, 5000, remote: Net.outsider, 6000),
            Self.event(.mappingRemoved, .expired, 17, at: at(300), inside: Net.hostC, 5001, 5000),
        ])
    }

    @Test("a WAN address change: everything made with the old address removed with it, forwards made anew")
    func addressChange() {
        let nat = Self.enabled { $0.forwards = [PortForward("udp:5000=192.0.2.12:5001")!] }
        _ = Self.drain(nat)
        _ = InboundTranslationTests.open(nat, PacketBuilder.tcp(Net.hostA, 41000, Net.remote, 80))
        _ = Self.drain(nat)
        let newAddress = IPv4Bytes(203, 0, 113, 99)
        nat.setExternalAddress(newAddress.address, now: at(30))
        #expect(Self.drain(nat) == [
            Self.event(.sessionRemoved, .addressChanged, 6, at: at(30), inside: Net.hostA, 41000, 41000, remote: Net.remote, 80),
            Self.event(.mappingRemoved, .addressChanged, 17, at: at(30), inside: Net.hostC, 5001, 5000),
            Self.event(.mappingRemoved, .addressChanged, 6, at: at(30), inside: Net.hostA, 41000, 41000),
            Self.event(.mappingCreated, .portForward, 17, at: at(30), inside: Net.hostC, 5001, outside: newAddress, 5000),
        ])
    }

    @Test("a router socket taking a mapping's port: evicted")
    func evicted() {
        let nat = Self.enabled()
        _ = InboundTranslationTests.open(nat, PacketBuilder.udp(Net.hostA, 51820, Net.remote, 51820))
        _ = Self.drain(nat)
        var held = LocalPortSet()
        held.insert(protocolNumber: 17, port: 51820)
        let update = nat.setLocalPorts(held, reserved: nil, now: at(7))
        #expect(update.mappingsEvicted == 1)
        #expect(Self.drain(nat) == [
            Self.event(.sessionRemoved, .evicted, 17, at: at(7), inside: Net.hostA, 51820, 51820, remote: Net.remote, 51820),
            Self.event(.mappingRemoved, .evicted, 17, at: at(7), inside: Net.hostA, 51820, 51820),
        ])
    }

    @Test("a mapping made for a packet the host's cap then refuses: created and removed as refused")
    func refused() {
        let nat = Self.enabled { $0.maxSessionsPerHost = 1 }
        _ = InboundTranslationTests.open(nat, PacketBuilder.udp(Net.hostA, 40000, Net.remote, 53))
        _ = Self.drain(nat)
        var p = PacketBuilder.udp(Net.hostA, 40001, Net.remote, 53)
        #expect(nat.run(&p, .outbound, now: at(1)) == .drop(.hostSessionLimit))
        #expect(Self.drain(nat) == [
            Self.event(.mappingCreated, .outbound, 17, at: at(1), inside: Net.hostA, 40001, 40001),
            Self.event(.mappingRemoved, .refused, 17, at: at(1), inside: Net.hostA, 40001, 40001),
        ])
    }

    @Test("a helper's expected connection: its mappings recorded as expectation, removed when it never came")
    func expectation() {
        let nat = Self.enabled { $0.helpers = [HelperRegistration(helper: MediaOfferHelper(), ports: [.udp(5060)])] }
        var offer = PacketBuilder.udp(Net.hostA, 5060, Net.remote, 5060, payload: Array("MEDIA 6000".utf8))
        _ = nat.run(&offer, .outbound, now: at(1))
        #expect(Self.drain(nat) == [
            Self.event(.mappingCreated, .outbound, 17, at: at(1), inside: Net.hostA, 5060, 5060),
            Self.event(.sessionCreated, .outbound, 17, at: at(1), inside: Net.hostA, 5060, 5060, remote: Net.remote, 5060),
            Self.event(.mappingCreated, .expectation, 17, at: at(1), inside: Net.hostA, 6000, 6000),
            Self.event(.mappingCreated, .expectation, 17, at: at(1), inside: Net.hostA, 6001, 6001),
        ])
        var media = PacketBuilder.udp(Net.remote, 7000, Net.external, 6000, payload: [0x80, 0, 0, 1])
        #expect(nat.run(&media, .inbound, now: at(2)) == .acceptRewritten)
        #expect(Self.drain(nat) == [
            Self.event(.sessionCreated, .inbound, 17, at: at(2), inside: Net.hostA, 6000, 6000, remote: Net.remote, 7000),
        ])
        // The RTCP port's expectation times out unused (120 s): its mapping goes.
        nat.expire(now: at(1 + 120), budget: 0)
        #expect(Self.drain(nat) == [Self.event(.mappingRemoved, .expired, 17, at: at(121), inside: Net.hostA, 6001, 6001)])
    }

    @Test("restored from a saved state: mapping and session recorded as restored")
    func restored() throws {
        let old = makeTranslator()
        _ = InboundTranslationTests.open(old, PacketBuilder.udp(Net.hostA, 40000, Net.remote, 53))
        let saved = old.exportState(now: at(10), savedAt: 1_700_000_000)
        let new = Self.enabled()
        _ = try new.importState(saved, downtime: .seconds(5), now: at(20))
        #expect(Self.drain(new) == [
            Self.event(.mappingCreated, .restored, 17, at: at(20), inside: Net.hostA, 40000, 40000),
            Self.event(.sessionCreated, .restored, 17, at: at(20), inside: Net.hostA, 40000, 40000, remote: Net.remote, 53),
        ])
        // Traffic after the restore is recorded as usual.
        _ = InboundTranslationTests.open(new, PacketBuilder.udp(Net.hostA, 40000, Net.remote2, 53), now: at(21))
        #expect(Self.drain(new).map(\.reason) == [.outbound])
    }

    @Test("a full ring keeps the oldest events and counts the rest as lost")
    func overflow() {
        let nat = Self.enabled(capacity: 3)
        #expect(nat.eventCapacity == 4)
        for port: UInt16 in 40000..<40003 {
            _ = InboundTranslationTests.open(nat, PacketBuilder.udp(Net.hostA, port, Net.remote, 53))
        }
        #expect(nat.eventsWaiting == 4)
        #expect(nat.counters[.natEventsRecorded] == 4 && nat.counters[.natEventsLost] == 2)
        let kept = Self.drain(nat)
        #expect(kept.map(\.internalPort) == [40000, 40000, 40001, 40001])
        // Drained, it records again, wrapping around the ring.
        _ = InboundTranslationTests.open(nat, PacketBuilder.udp(Net.hostA, 40005, Net.remote, 53))
        #expect(Self.drain(nat).map(\.internalPort) == [40005, 40005])
        #expect(nat.counters[.natEventsLost] == 2)
    }

    @Test("moving events between rings: order kept across both rings' wrap-around, what does not fit dropped and counted")
    func moveBetweenRings() {
        func event(_ n: UInt16) -> NATEvent {
            NATEvent(timeNanoseconds: UInt64(n), kind: .sessionCreated, reason: .outbound, protocolNumber: 17,
                     internalAddress: 1, internalPort: n, externalAddress: 2, externalPort: n)
        }
        var source = NATEventRing(), target = NATEventRing()
        source.allocate(capacity: 8)
        target.allocate(capacity: 8)
        var n: UInt16 = 0
        func fill(_ ring: inout NATEventRing, _ count: Int) {
            for _ in 0..<count {
                n += 1
                let stored = ring.push(event(n))
                #expect(stored)
            }
        }
        func out(_ ring: inout NATEventRing) -> [UInt16] { var ports: [UInt16] = []; ring.drain { ports.append($0.internalPort) }; return ports }
        // Put both heads mid-ring, so the runs wrap on each side at different places.
        fill(&source, 5); _ = out(&source)
        fill(&target, 3)
        let first = out(&target)
        #expect(first == [6, 7, 8])
        fill(&source, 7)  // 9...15, wrapping after 3
        fill(&target, 2)  // 16, 17
        let dropped = source.move(into: &target) // room for 6 of the 7
        #expect(dropped == 1 && source.count == 0 && target.count == 8)
        let moved = out(&target)
        #expect(moved == [16, 17, 9, 10, 11, 12, 13, 14])
        // Into an empty ring everything fits; nothing is lost.
        fill(&source, 4)
        let none = source.move(into: &target)
        let all = out(&target)
        #expect(none == 0 && all == [18, 19, 20, 21])
        // A disabled target takes nothing.
        var off = NATEventRing()
        fill(&source, 2)
        let refused = source.move(into: &off)
        #expect(refused == 2 && source.count == 0)
    }

    @Test("names and raw values are stable (they leave the process)")
    func stableNames() {
        #expect(NATEventKind.allRaw == [1, 2, 3, 4])
        #expect([NATEventKind.mappingCreated, .mappingRemoved, .sessionCreated, .sessionRemoved].map(\.description)
            == ["mapping-created", "mapping-removed", "session-created", "session-removed"])
        let reasons: [NATEventReason] = [.outbound, .inbound, .expectation, .portForward, .restored, .expired, .tcpClosed, .tcpReset,
                                         .evicted, .addressChanged, .reload, .refused]
        #expect(reasons.map(\.rawValue) == [1, 2, 3, 4, 5, 16, 17, 18, 19, 20, 21, 22])
        #expect(reasons.map(\.description) == ["outbound", "inbound", "expectation", "forward", "restored", "expired", "tcp-closed",
                                               "tcp-reset", "evicted", "address-changed", "reload", "refused"])
        #expect(MemoryLayout<NATEvent>.stride == 32)
    }
}

extension NATEventKind {
    static var allRaw: [UInt8] { [NATEventKind.mappingCreated, .mappingRemoved, .sessionCreated, .sessionRemoved].map(\.rawValue) }
}
