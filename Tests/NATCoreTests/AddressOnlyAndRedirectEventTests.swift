import NATTestKit
import Testing
@testable import NATCore

// NAT events of address-only rows (ESP, GRE, any protocol without ports) and of transparently
// redirected connections: each field of each kind, for the creation and every removal path
// (the sweep, a stale row found by a packet, a WAN address change, TCP close and reset, a
// restore), and none for a refused packet or a packet crossing a live row.

@Suite("NAT events: address-only rows and redirects")
struct AddressOnlyAndRedirectEventTests {
    static let esp = AddressOnlyTranslationTests.esp
    static let gre = AddressOnlyTranslationTests.gre
    let flows = AddressOnlyTranslationTests()
    let redirects = RedirectTranslationTests()

    static func addressOnly(_ kind: NATEventKind, _ reason: NATEventReason, _ proto: UInt8, at time: NATTime,
                            inside: IPv4Bytes, outside: IPv4Bytes = Net.external, remote: IPv4Bytes) -> NATEvent {
        NATEvent(timeNanoseconds: time.nanoseconds, kind: kind, reason: reason, protocolNumber: proto,
                 internalAddress: inside.address.value, internalPort: 0, externalAddress: outside.address.value, externalPort: 0,
                 remoteAddress: remote.address.value, remotePort: 0)
    }

    static func redirect(_ kind: NATEventKind, _ reason: NATEventReason, at time: NATTime, client: IPv4Bytes = Net.hostA,
                         _ clientPort: UInt16 = 40000, original: IPv4Bytes = Net.remote, _ originalPort: UInt16 = 80) -> NATEvent {
        NATEvent(timeNanoseconds: time.nanoseconds, kind: kind, reason: reason, protocolNumber: 6,
                 internalAddress: client.address.value, internalPort: clientPort,
                 externalAddress: RedirectTranslationTests.routerLAN.address.value, externalPort: 3128,
                 remoteAddress: original.address.value, remotePort: originalPort)
    }

    func espOut(_ nat: NATTranslator, from host: IPv4Bytes = Net.hostA, to remote: IPv4Bytes = Net.remote,
                now: NATTime) -> TranslationVerdict {
        var p = flows.packet(host, remote, Self.esp, AddressOnlyTranslationTests.espPayload)
        return nat.run(&p, .outbound, now: now)
    }

    func redirecting() -> NATTranslator {
        let nat = redirects.makeRedirecting()
        nat.enableEvents(capacity: 64, now: t0)
        return nat
    }

    func clientPacket(_ nat: NATTranslator, _ port: UInt16 = 40000, flags: UInt8, now: NATTime) -> TranslationVerdict {
        var p = PacketBuilder.tcp(Net.hostA, port, Net.remote, 80, flags: flags)
        return redirects.fromClient(nat, &p, now: now)
    }

    func proxyPacket(_ nat: NATTranslator, _ port: UInt16 = 40000, flags: UInt8, now: NATTime) -> TranslationVerdict {
        var p = PacketBuilder.tcp(RedirectTranslationTests.routerLAN, 3128, Net.hostA, port, flags: flags)
        return redirects.fromProxy(nat, &p, now: now)
    }

    @Test("ESP: created by the first packet (addresses, no ports), nothing for its answer or a second packet, removed by the sweep when idle")
    func addressOnlyCreatedAndSwept() {
        let nat = NATEventTests.enabled()
        #expect(espOut(nat, now: at(1)) == .acceptRewritten)
        #expect(espOut(nat, now: at(2)) == .acceptRewritten)
        var back = flows.packet(Net.remote, Net.external, Self.esp, AddressOnlyTranslationTests.espPayload)
        #expect(nat.run(&back, .inbound, now: at(3)) == .acceptRewritten)
        #expect(NATEventTests.drain(nat) == [Self.addressOnly(.addressOnlyCreated, .outbound, 50, at: at(1), inside: Net.hostA, remote: Net.remote)])
        #expect(nat.expire(now: at(3 + 599), budget: 100) == 0 && NATEventTests.drain(nat).isEmpty)
        nat.expire(now: at(3 + 600), budget: 100)
        #expect(nat.addressOnlyFlowCount == 0)
        #expect(NATEventTests.drain(nat) == [Self.addressOnly(.addressOnlyRemoved, .expired, 50, at: at(603), inside: Net.hostA, remote: Net.remote)])
        #expect(nat.counters[.natEventsRecorded] == 2 && nat.counters[.natEventsLost] == 0)
    }

    @Test("a stale row found by a packet: by a new packet out (removed, then made anew), by an answer in (removed; the answer goes to the router)")
    func addressOnlyStaleFoundByAPacket() {
        let nat = NATEventTests.enabled()
        _ = espOut(nat, now: at(1))
        var gre = flows.packet(Net.hostB, Net.remote2, Self.gre, AddressOnlyTranslationTests.grePayload)
        #expect(nat.run(&gre, .outbound, now: at(2)) == .acceptRewritten)
        _ = NATEventTests.drain(nat)
        #expect(espOut(nat, now: at(700)) == .acceptRewritten)
        #expect(NATEventTests.drain(nat) == [
            Self.addressOnly(.addressOnlyRemoved, .expired, 50, at: at(700), inside: Net.hostA, remote: Net.remote),
            Self.addressOnly(.addressOnlyCreated, .outbound, 50, at: at(700), inside: Net.hostA, remote: Net.remote),
        ])
        var answer = flows.packet(Net.remote2, Net.external, Self.gre, AddressOnlyTranslationTests.grePayload)
        #expect(nat.run(&answer, .inbound, now: at(701)) == .accept)
        #expect(NATEventTests.drain(nat) == [Self.addressOnly(.addressOnlyRemoved, .expired, 47, at: at(701), inside: Net.hostB, remote: Net.remote2)])
    }

    @Test("refused rows make no event: a second host to a held (protocol, remote), a full table")
    func addressOnlyRefusedSilently() {
        let nat = NATEventTests.enabled { $0.maxAddressOnlyFlows = 1 }
        _ = espOut(nat, now: at(1))
        _ = NATEventTests.drain(nat)
        #expect(espOut(nat, from: Net.hostB, now: at(2)) == .drop(.addressOnlyRemoteInUse))
        #expect(espOut(nat, to: Net.remote2, now: at(3)) == .drop(.addressOnlyTableFull))
        #expect(NATEventTests.drain(nat).isEmpty)
    }

    @Test("a WAN address change: sessions, mappings, then address-only rows removed with the old address")
    func addressOnlyFlushedByAddressChange() {
        let nat = NATEventTests.enabled()
        _ = InboundTranslationTests.open(nat, PacketBuilder.udp(Net.hostA, 40000, Net.remote, 53))
        _ = espOut(nat, from: Net.hostB, now: at(1))
        _ = NATEventTests.drain(nat)
        nat.setExternalAddress(IPv4Bytes(203, 0, 113, 99).address, now: at(30))
        #expect(NATEventTests.drain(nat) == [
            NATEventTests.event(.sessionRemoved, .addressChanged, 17, at: at(30), inside: Net.hostA, 40000, 40000, remote: Net.remote, 53),
            NATEventTests.event(.mappingRemoved, .addressChanged, 17, at: at(30), inside: Net.hostA, 40000, 40000),
            Self.addressOnly(.addressOnlyRemoved, .addressChanged, 50, at: at(30), inside: Net.hostB, remote: Net.remote),
        ])
        // A new row leaves from the new address.
        _ = espOut(nat, now: at(31))
        #expect(NATEventTests.drain(nat) == [
            Self.addressOnly(.addressOnlyCreated, .outbound, 50, at: at(31), inside: Net.hostA, outside: IPv4Bytes(203, 0, 113, 99), remote: Net.remote),
        ])
    }

    @Test("a redirected connection: created by the client's SYN (client, router's address and port, original destination), nothing per packet after")
    func redirectCreated() {
        let nat = redirecting()
        #expect(clientPacket(nat, flags: TCPFlag.syn, now: at(1)) == .acceptRewritten)
        #expect(proxyPacket(nat, flags: TCPFlag.syn | TCPFlag.ack, now: at(2)) == .acceptRewritten)
        #expect(clientPacket(nat, flags: TCPFlag.ack, now: at(3)) == .acceptRewritten)
        #expect(NATEventTests.drain(nat) == [Self.redirect(.redirectCreated, .outbound, at: at(1))])
        // Nothing masqueraded: no mapping or session event.
        #expect(nat.mappingCount == 0 && nat.sessionCount == 0)
    }

    @Test("redirect removals: closed by FINs (tcp-closed), reset (tcp-reset), idle (expired); a stale one found by a new SYN")
    func redirectRemoved() {
        let nat = redirecting()
        // 40000 closes, 40001 is reset, 40002 goes idle.
        for port: UInt16 in 40000...40002 {
            _ = clientPacket(nat, port, flags: TCPFlag.syn, now: at(1))
            _ = proxyPacket(nat, port, flags: TCPFlag.syn | TCPFlag.ack, now: at(1))
            _ = clientPacket(nat, port, flags: TCPFlag.ack, now: at(1))
        }
        _ = clientPacket(nat, 40000, flags: TCPFlag.fin | TCPFlag.ack, now: at(2))
        _ = proxyPacket(nat, 40000, flags: TCPFlag.fin | TCPFlag.ack, now: at(2))
        _ = proxyPacket(nat, 40001, flags: TCPFlag.rst, now: at(2))
        _ = NATEventTests.drain(nat)
        let late = at(2 + nat.configuration.timeouts.tcpEstablished.nanoseconds / 1_000_000_000 + 1)
        nat.expire(now: late, budget: 100)
        #expect(nat.redirectSessionCount == 0)
        #expect(NATEventTests.drain(nat) == [
            Self.redirect(.redirectRemoved, .tcpClosed, at: late),
            Self.redirect(.redirectRemoved, .tcpReset, at: late, 40001),
            Self.redirect(.redirectRemoved, .expired, at: late, 40002),
        ])
        // Not swept yet, found stale by the client's next SYN: removed, then made anew.
        _ = clientPacket(nat, 40003, flags: TCPFlag.syn, now: late)
        _ = NATEventTests.drain(nat)
        let later = NATTime(nanoseconds: late.nanoseconds + nat.configuration.timeouts.tcpEstablished.nanoseconds)
        _ = clientPacket(nat, 40003, flags: TCPFlag.syn, now: later)
        #expect(NATEventTests.drain(nat) == [
            Self.redirect(.redirectRemoved, .expired, at: later, 40003),
            Self.redirect(.redirectCreated, .outbound, at: later, 40003),
        ])
    }

    @Test("a refused redirect (table full) makes no event")
    func redirectRefusedSilently() {
        let nat = redirects.makeRedirecting { $0.maxRedirectSessions = 1 }
        nat.enableEvents(capacity: 64, now: t0)
        _ = clientPacket(nat, 40000, flags: TCPFlag.syn, now: at(1))
        _ = NATEventTests.drain(nat)
        #expect(clientPacket(nat, 40001, flags: TCPFlag.syn, now: at(2)) == .drop(.redirectTableFull))
        #expect(NATEventTests.drain(nat).isEmpty)
    }

    @Test("restored from a saved state: address-only rows and redirects recorded as restored")
    func restored() throws {
        let old = redirects.makeRedirecting()
        _ = espOut(old, now: at(1))
        _ = clientPacket(old, flags: TCPFlag.syn, now: at(1))
        let saved = old.exportState(now: at(10), savedAt: 1_700_000_000)
        let new = redirects.makeRedirecting()
        new.enableEvents(capacity: 64, now: at(20))
        _ = try new.importState(saved, downtime: .seconds(5), now: at(20))
        #expect(NATEventTests.drain(new) == [
            Self.redirect(.redirectCreated, .restored, at: at(20)),
            Self.addressOnly(.addressOnlyCreated, .restored, 50, at: at(20), inside: Net.hostA, remote: Net.remote),
        ])
    }

    @Test("events off: address-only rows and redirects record nothing")
    func off() {
        let nat = redirects.makeRedirecting()
        _ = espOut(nat, now: at(1))
        _ = clientPacket(nat, flags: TCPFlag.syn, now: at(1))
        nat.expire(now: at(100_000), budget: 100)
        #expect(!nat.eventsEnabled && NATEventTests.drain(nat).isEmpty && nat.counters[.natEventsRecorded] == 0)
    }

    @Test("the new kinds' raw values and names are stable (the HA sync and the logs use them)")
    func stableKinds() {
        let kinds: [NATEventKind] = [.addressOnlyCreated, .addressOnlyRemoved, .redirectCreated, .redirectRemoved]
        #expect(kinds.map(\.rawValue) == [8, 9, 10, 11])
        #expect(kinds.map(\.description) == ["address-only-created", "address-only-removed", "redirect-created", "redirect-removed"])
        #expect(kinds.map(\.isCreation) == [true, false, true, false])
        #expect(kinds.allSatisfy { $0.hasRemote && !$0.isSession && !$0.isPortBlock })
    }
}

@Suite("NAT events: the standby drops its flows")
struct StandbyFlushEventTests {
    let redirects = RedirectTranslationTests()

    @Test("becoming the standby removes every flow with its event (reason standby), address-only rows and redirects too, so a takeover's restore is not refused")
    func standbyRemovesEverything() throws {
        let nat = redirects.makeRedirecting { $0.forwards = [PortForward("udp:5000=192.0.2.12:5001")!] }
        nat.enableEvents(capacity: 64, now: t0)
        _ = InboundTranslationTests.open(nat, PacketBuilder.udp(Net.hostA, 40000, Net.remote, 53))
        var esp = AddressOnlyTranslationTests().packet(Net.hostB, Net.remote, AddressOnlyTranslationTests.esp, AddressOnlyTranslationTests.espPayload)
        #expect(nat.run(&esp, .outbound) == .acceptRewritten)
        var syn = PacketBuilder.tcp(Net.hostA, 40000, Net.remote, 80, flags: TCPFlag.syn)
        #expect(redirects.fromClient(nat, &syn) == .acceptRewritten)
        let saved = nat.exportState(now: at(1), savedAt: 1_700_000_000)
        _ = NATEventTests.drain(nat)

        #expect(nat.removeAllFlows(now: at(2)) == 3)
        #expect(NATEventTests.drain(nat) == [
            NATEventTests.event(.sessionRemoved, .standby, 17, at: at(2), inside: Net.hostA, 40000, 40000, remote: Net.remote, 53),
            NATEventTests.event(.mappingRemoved, .standby, 17, at: at(2), inside: Net.hostC, 5001, 5000),
            NATEventTests.event(.mappingRemoved, .standby, 17, at: at(2), inside: Net.hostA, 40000, 40000),
            AddressOnlyAndRedirectEventTests.addressOnly(.addressOnlyRemoved, .standby, 50, at: at(2), inside: Net.hostB, remote: Net.remote),
            AddressOnlyAndRedirectEventTests.redirect(.redirectRemoved, .standby, at: at(2)),
            NATEventTests.event(.mappingCreated, .portForward, 17, at: at(2), inside: Net.hostC, 5001, 5000),
        ])
        #expect(nat.sessionCount == 0 && nat.addressOnlyFlowCount == 0 && nat.redirectSessionCount == 0 && nat.mappingCount == 1)
        #expect(NATEventReason.standby.rawValue == 23 && NATEventReason.standby.description == "standby")
        // A takeover restores into it: the address-only row no longer stands in the way.
        let summary = try nat.importState(saved, downtime: .seconds(1), now: at(3))
        #expect(summary.sessionsRestored == 1 && summary.addressOnlyFlowsRestored == 1 && summary.redirectsRestored == 1)
    }
}
