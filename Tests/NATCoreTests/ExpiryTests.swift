import NATTestKit
import Testing
@testable import NATCore

private let oneSecond: UInt64 = 1_000_000_000

@Suite struct ExpiryTests {
    @Test func udpSessionExpiresAfterItsTimeoutAndNotBefore() {
        let nat = makeTranslator()
        #expect(nat.configuration.timeouts.udp == .seconds(300))
        _ = InboundTranslationTests.open(nat, PacketBuilder.udp(Net.hostA, 40000, Net.remote, 53))
        #expect(nat.snapshots(now: t0).map(\.expiresIn) == [.seconds(300)])

        // One nanosecond before: nothing to free.
        #expect(nat.expire(now: NATTime(nanoseconds: at(300).nanoseconds - 1), budget: 1024) == 0)
        #expect(nat.sessionCount == 1 && nat.mappingCount == 1)
        #expect(nat.snapshots(now: NATTime(nanoseconds: at(300).nanoseconds - 1)).count == 1)

        // At the timeout: gone, port free again.
        #expect(nat.expire(now: at(300), budget: 1024) == 1)
        #expect(nat.sessionCount == 0 && nat.mappingCount == 0)
        #expect(nat.counters[.sessionsExpired] == 1)
        #expect(nat.snapshots(now: at(300)).isEmpty)
        var other = PacketBuilder.udp(Net.hostB, 40000, Net.remote, 53)
        #expect(nat.run(&other, .outbound, now: at(301)) == .acceptRewritten)
        #expect(sourcePort(other) == 40000)
        // The port now belongs to B: a reply from the same remote endpoint goes to B.
        var reply = PacketBuilder.udp(Net.remote, 53, Net.external, 40000)
        #expect(nat.run(&reply, .inbound, now: at(302)) == .acceptRewritten)
        #expect(destinationAddress(reply) == Net.hostB)
    }

    @Test func trafficRefreshesTheTimer() {
        let nat = makeTranslator()
        _ = InboundTranslationTests.open(nat, PacketBuilder.udp(Net.hostA, 40000, Net.remote, 53))
        var reply = PacketBuilder.udp(Net.remote, 53, Net.external, 40000)
        #expect(nat.run(&reply, .inbound, now: at(299)) == .acceptRewritten)
        #expect(nat.expire(now: at(500), budget: 1024) == 0)
        #expect(nat.snapshots(now: at(500)).first?.expiresIn == .seconds(99))
        #expect(nat.expire(now: at(599), budget: 1024) == 1)
    }

    @Test func staleSessionFoundInboundIsTreatedAsGone() {
        let nat = makeTranslator()
        _ = InboundTranslationTests.open(nat, PacketBuilder.udp(Net.hostA, 40000, Net.remote, 53))
        let original = PacketBuilder.udp(Net.remote, 53, Net.external, 40000)
        var reply = original
        #expect(nat.run(&reply, .inbound, now: at(300)) == .accept)
        #expect(reply == original)
        #expect(nat.sessionCount == 0 && nat.mappingCount == 0)
        #expect(nat.counters[.sessionsExpired] == 1 && nat.counters[.inboundUnmatched] == 1)
    }

    @Test func staleSessionFoundOutboundStartsAfresh() {
        let nat = makeTranslator()
        _ = InboundTranslationTests.open(nat, PacketBuilder.udp(Net.hostA, 40000, Net.remote, 53))
        var again = PacketBuilder.udp(Net.hostA, 40000, Net.remote, 53)
        #expect(nat.run(&again, .outbound, now: at(400)) == .acceptRewritten)
        #expect(again == PacketBuilder.udp(Net.external, 40000, Net.remote, 53))
        #expect(nat.sessionCount == 1 && nat.mappingCount == 1)
        #expect(nat.counters[.sessionsExpired] == 1 && nat.counters[.sessionsCreated] == 2)
        #expect(nat.snapshots(now: at(400)).first?.expiresIn == .seconds(300))
    }

    @Test func staleSessionOfASharedMappingKeepsTheMapping() {
        let nat = makeTranslator()
        _ = InboundTranslationTests.open(nat, PacketBuilder.udp(Net.hostB, 40000, Net.remote, 9)) // takes 40000
        let port = InboundTranslationTests.open(nat, PacketBuilder.udp(Net.hostA, 40000, Net.remote, 53))
        _ = InboundTranslationTests.open(nat, PacketBuilder.udp(Net.hostA, 40000, Net.remote2, 53), now: at(200))
        // At 400 s the session to `remote` is stale, the one to `remote2` is not.
        var again = PacketBuilder.udp(Net.hostA, 40000, Net.remote, 53)
        #expect(nat.run(&again, .outbound, now: at(400)) == .acceptRewritten)
        #expect(sourcePort(again) == port)
        #expect(nat.counters[.sessionsExpired] >= 1)
        var reply = PacketBuilder.udp(Net.remote2, 53, Net.external, port)
        #expect(nat.run(&reply, .inbound, now: at(401)) == .acceptRewritten)
        #expect(destinationAddress(reply) == Net.hostA)
    }

    @Test func icmpTimeout() {
        let nat = makeTranslator()
        _ = InboundTranslationTests.open(nat, PacketBuilder.icmp(Net.hostA, Net.remote, identifier: 5))
        #expect(nat.snapshots(now: t0).first?.expiresIn == .seconds(60))
        #expect(nat.expire(now: at(59), budget: 1024) == 0)
        #expect(nat.expire(now: at(60), budget: 1024) == 1)
    }

    @Test func sweepBudgetIsRespectedAndCursorWraps() {
        let nat = makeTranslator { $0.maxSessions = 8; $0.maxMappings = 8 }
        for i in 0..<6 {
            _ = InboundTranslationTests.open(nat, PacketBuilder.udp(Net.hostA, UInt16(40000 + i), Net.remote, 53))
        }
        let later = at(1000)
        #expect(nat.expire(now: later, budget: 2) == 2)
        #expect(nat.sessionCount == 4)
        #expect(nat.expire(now: later, budget: 2) == 2)
        #expect(nat.expire(now: later, budget: 100) == 2) // clamped to the high-water mark (6): one full pass
        #expect(nat.sessionCount == 0 && nat.mappingCount == 0)
        #expect(nat.expire(now: later, budget: 100) == 0)
        #expect(nat.expire(now: later, budget: 0) == 0)
        #expect(nat.expire(now: later, budget: -5) == 0)
        #expect(nat.counters[.sessionsExpired] == 6)
    }

    @Test func customTimeouts() {
        let nat = makeTranslator { $0.timeouts.udp = .seconds(30) }
        _ = InboundTranslationTests.open(nat, PacketBuilder.udp(Net.hostA, 40000, Net.remote, 53))
        #expect(nat.expire(now: at(29, plusNanoseconds: oneSecond - 1), budget: 1024) == 0)
        #expect(nat.expire(now: at(30), budget: 1024) == 1)
    }
}

@Suite struct TCPTimeoutTests {
    /// The lone session's state and remaining time.
    private func state(_ nat: NATTranslator, _ now: NATTime) -> (TCPSessionState, NATDuration)? {
        nat.snapshots(now: now).first.map { ($0.tcpState, $0.expiresIn) }
    }

    // Sequence numbers as a real pair would send them (the inside ISN 1000, the remote's
    // 5000), so the remote's RSTs and FINs pass the window check (TCPWindowTests).
    private func out(_ nat: NATTranslator, _ flags: UInt8, _ now: NATTime) {
        var p = PacketBuilder.tcp(Net.hostA, 40000, Net.remote, 80, flags: flags, seq: flags & TCPFlag.syn != 0 ? 1000 : 1001, ack: 5001)
        #expect(nat.run(&p, .outbound, now: now) == .acceptRewritten)
    }

    private func inb(_ nat: NATTranslator, _ flags: UInt8, _ now: NATTime) {
        var p = PacketBuilder.tcp(Net.remote, 80, Net.external, 40000, flags: flags, seq: flags & TCPFlag.syn != 0 ? 5000 : 5001, ack: 1001)
        #expect(nat.run(&p, .inbound, now: now) == .acceptRewritten)
    }

    /// An unanswered SYN lives tcp-opening (120 s, conntrack's SYN_SENT), renewed by each retransmission.
    @Test func synOnlyIsOpening() {
        let nat = makeTranslator()
        out(nat, TCPFlag.syn, t0)
        #expect(state(nat, t0)! == (.opening, .seconds(120)))
        out(nat, TCPFlag.syn, at(100)) // retransmitted SYN
        #expect(state(nat, at(100))! == (.opening, .seconds(120)))
        #expect(nat.expire(now: at(219), budget: 1024) == 0)
        #expect(nat.expire(now: at(220), budget: 1024) == 1)
    }

    @Test func openingTimeoutIsConfigurable() {
        let nat = makeTranslator { $0.timeouts.tcpOpening = .seconds(30) }
        out(nat, TCPFlag.syn, t0)
        #expect(state(nat, t0)! == (.opening, .seconds(30)))
        #expect(nat.expire(now: at(29), budget: 1024) == 0)
        #expect(nat.expire(now: at(30), budget: 1024) == 1)
    }

    @Test func replyMakesItEstablished() {
        let nat = makeTranslator()
        out(nat, TCPFlag.syn, t0)
        inb(nat, TCPFlag.syn | TCPFlag.ack, at(1))
        #expect(state(nat, at(1))! == (.established, .seconds(7440)))
        out(nat, TCPFlag.ack, at(2))
        #expect(state(nat, at(2))! == (.established, .seconds(7440)))
        #expect(nat.expire(now: at(7441), budget: 1024) == 0)
        #expect(nat.expire(now: at(7442), budget: 1024) == 1)
    }

    @Test func finBothWaysIsTransitory() {
        let nat = makeTranslator()
        out(nat, TCPFlag.syn, t0)
        inb(nat, TCPFlag.syn | TCPFlag.ack, at(1))
        out(nat, TCPFlag.fin | TCPFlag.ack, at(10))
        #expect(state(nat, at(10))! == (.closing, .seconds(240)))
        inb(nat, TCPFlag.ack, at(11)) // an ACK after one FIN keeps it closing
        #expect(state(nat, at(11))! == (.closing, .seconds(240)))
        inb(nat, TCPFlag.fin | TCPFlag.ack, at(12))
        #expect(state(nat, at(12))! == (.timeWait, .seconds(240)))
        out(nat, TCPFlag.ack, at(13))
        #expect(state(nat, at(13))! == (.timeWait, .seconds(240)))
        #expect(nat.expire(now: at(253), budget: 1024) == 1)
    }

    @Test(arguments: [true, false])
    func rstIsTenSeconds(outbound: Bool) {
        let nat = makeTranslator()
        out(nat, TCPFlag.syn, t0)
        inb(nat, TCPFlag.syn | TCPFlag.ack, at(1))
        if outbound { out(nat, TCPFlag.rst, at(5)) } else { inb(nat, TCPFlag.rst | TCPFlag.ack, at(5)) }
        #expect(state(nat, at(5))! == (.reset, .seconds(10)))
        #expect(nat.expire(now: at(14), budget: 1024) == 0)
        #expect(nat.expire(now: at(15), budget: 1024) == 1)
    }

    /// After a RST, stray packets do not revive a long timeout — even after a FIN was seen.
    @Test func resetStaysResetForLaterPackets() {
        let nat = makeTranslator()
        out(nat, TCPFlag.syn, t0)
        inb(nat, TCPFlag.syn | TCPFlag.ack, at(1))
        inb(nat, TCPFlag.rst | TCPFlag.ack, at(2)) // answering the SYN: it acknowledges it
        out(nat, TCPFlag.ack, at(3))
        #expect(state(nat, at(3))! == (.reset, .seconds(10)))

        let other = makeTranslator()
        out(other, TCPFlag.syn, t0)
        inb(other, TCPFlag.syn | TCPFlag.ack, at(1))
        out(other, TCPFlag.fin | TCPFlag.ack, at(2))
        inb(other, TCPFlag.rst, at(3))
        #expect(state(other, at(3))! == (.reset, .seconds(10)))
        out(other, TCPFlag.ack, at(4))
        #expect(state(other, at(4))! == (.reset, .seconds(10)))
    }

    @Test func newSynAfterCloseStartsOver() {
        let nat = makeTranslator()
        out(nat, TCPFlag.syn, t0)
        inb(nat, TCPFlag.syn | TCPFlag.ack, at(1))
        out(nat, TCPFlag.fin, at(2))
        inb(nat, TCPFlag.fin, at(3))
        #expect(state(nat, at(3))!.0 == .timeWait)
        out(nat, TCPFlag.syn, at(4))
        #expect(state(nat, at(4))! == (.opening, .seconds(120)))
        inb(nat, TCPFlag.syn | TCPFlag.ack, at(5))
        #expect(state(nat, at(5))! == (.established, .seconds(7440)))
    }

    @Test func stateMachineTable() {
        var seen: UInt8 = 0
        #expect(TCPSessionState.next(.opening, flags: .syn, outbound: true, seen: &seen) == .opening)
        #expect(TCPSessionState.next(.opening, flags: [.syn, .ack], outbound: false, seen: &seen) == .established)
        #expect(TCPSessionState.next(.established, flags: .ack, outbound: true, seen: &seen) == .established)
        #expect(TCPSessionState.next(.established, flags: [.fin, .ack], outbound: false, seen: &seen) == .closing)
        #expect(seen == TCPSessionState.finInbound)
        #expect(TCPSessionState.next(.closing, flags: [.fin, .ack], outbound: true, seen: &seen) == .timeWait)
        #expect(TCPSessionState.next(.timeWait, flags: [.rst], outbound: true, seen: &seen) == .reset)
        seen = 0
        #expect(TCPSessionState.next(.reset, flags: .ack, outbound: false, seen: &seen) == .reset)
        #expect(TCPSessionState.next(.reset, flags: .syn, outbound: true, seen: &seen) == .opening)
    }
}
