// DCC offers from an inside client: each form rewritten to the external endpoint, byte for
// byte, and the expected connection admitted once, from any outside address.

import NATCore
import NATHelpers
import NATTestKit
import Testing

@Suite struct IRCOfferTests {
    @Test func aSendOfferIsRewrittenAndAnyPeerMayConnectOnce() throws {
        let nat = makeIRCTranslator()
        let link = ircLink(nat)
        #expect(nat.helperConnectionCount == 1)
        let line = dccLine("SEND file.txt 3221226010 5000 1234")
        let sent = link.fromInside(line, seq: insideISN + 1, ack: outsideISN + 1)
        #expect(sent.kind == .replaced)
        expectWellFormed(sent)
        #expect(TCPView.sourceAddress(sent.packet) == Net.external)
        #expect(TCPView.sourcePort(sent.packet) == link.externalPort)
        #expect(sent.seq == insideISN + 1)
        #expect(sent.ack == outsideISN + 1)
        let x = try #require(portAfter("3405803777", in: sent.text))
        #expect(x >= 1024)
        #expect(sent.payload == bytes("PRIVMSG bob :\u{01}DCC SEND file.txt 3405803777 \(x) 1234\u{01}\r\n"))
        #expect(Verify.totalLength(sent.packet) == 40 + sent.payload.count)
        #expect(nat.events(.rewrite) == 1)
        #expect(nat.events(.expectation) == 1)
        #expect(nat.pendingExpectationCount == 1)

        // The peer is another IRC user, at an address the NAT has never seen.
        expectAdmitted(nat, from: IRCNet.otherPeer, port: x, to: IRCNet.client, toPort: 5000)
        #expect(nat.pendingExpectationCount == 0)
        #expect(nat.counters[.expectationsFulfilled] == 1)
        // Once: neither another host nor the same one from another port gets in after it.
        expectNotAdmitted(nat, from: IRCNet.peer, port: x)
        let again = nat.send(PacketBuilder.tcp(IRCNet.otherPeer, 44444, Net.external, x, flags: TCPFlag.syn, seq: 5), .inbound)
        #expect(again.kind == .accept)
    }

    /// (the line as sent, the offered port)
    static let forms: [(String, UInt16)] = [
        // (the line as sent, the offered port)
        (dccLine("SEND \"my file.txt\" 3221226010 5000 1234"), UInt16(5000)),
        (dccLine("SEND \"\" 3221226010 5000 1"), 5000),
        (dccLine("CHAT chat 3221226010 5001"), 5001),
        (dccLine("TSEND file.bin 3221226010 5002 99"), 5002),
        (dccLine("SCHAT chat 3221226010 5003"), 5003),
        (dccLine("MOVE file.bin 3221226010 5004 10"), 5004),
        (dccLine("send file.bin 3221226010 5005 1"), 5005),
        (dccLine("Chat chat 3221226010 5006"), 5006),
        (dccLine("sChAt chat 3221226010 65535"), 65535),
        (dccLine("SEND file.bin 3221226010 1024 1"), 1024),
        (dccLine("SEND a  3221226010   5007  1"), 5007),
        (dccLine("CHAT chat 3221226010 5008", command: "NOTICE"), 5008),
        (dccLine("CHAT chat 3221226010 5009", command: "notice"), 5009),
        (dccLine("CHAT chat 3221226010 5010", command: "privmsg", target: "#chan"), 5010),
        (dccLine("CHAT chat 3221226010 5011", terminator: "\n"), 5011),
        (":alice!a@host PRIVMSG bob :\u{01}DCC SEND x 3221226010 5012 7\u{01}\r\n", 5012),
        ("@+draft/typing=done :alice PRIVMSG bob :\u{01}dcc send x 3221226010 5013 7\u{01}\r\n", 5013),
        ("PRIVMSG   bob   :\u{01}DCC SEND x 3221226010 5014 7\u{01}\r\n", 5014),
        (dccLine("SEND x 3221226010 5015 1234 42"), 5015), // the answer to a reverse DCC: token kept
        ]

    @Test(arguments: IRCOfferTests.forms)
    func eachFormIsRewritten(_ line: String, _ offeredPort: UInt16) throws {
        let nat = makeIRCTranslator()
        let link = ircLink(nat)
        let sent = link.fromInside(line, seq: insideISN + 1, ack: outsideISN + 1)
        #expect(sent.kind == .replaced)
        expectWellFormed(sent)
        let x = try #require(portAfter("3405803777", in: sent.text))
        // Everything but "<address> <port>" is kept as it was (runs of spaces between the
        // two become one).
        let original = try #require(line.firstRange(of: "3221226010 "))
        let portStart = line[original.upperBound...].drop { $0 == " " }
        let afterPort = portStart.drop { $0.isNumber }
        #expect(sent.text == line[..<original.lowerBound] + "3405803777 \(x)" + afterPort)
        #expect(nat.events(.rewrite) == 1)
        #expect(nat.events(.malformed) == 0)
        expectAdmitted(nat, from: IRCNet.peer, port: x, to: IRCNet.client, toPort: offeredPort)
    }

    @Test func aDottedQuadIsRewrittenAsADottedQuad() throws {
        let nat = makeIRCTranslator()
        let link = ircLink(nat)
        let sent = link.fromInside(dccLine("SEND f.txt 192.0.2.26 5000 1"), seq: insideISN + 1, ack: outsideISN + 1)
        expectWellFormed(sent)
        let x = try #require(portAfter("203.0.113.1", in: sent.text))
        #expect(sent.text == dccLine("SEND f.txt 203.0.113.1 \(x) 1"))
        expectAdmitted(nat, from: IRCNet.peer, port: x, to: IRCNet.client, toPort: 5000)
    }

    @Test func theExternalAddressIsNotTheClientsOwn() throws {
        // A web page knows the victim's external address (it sees it), not its internal one:
        // accepting the external one as the client's own would let slipstreaming aim without
        // guessing (issue #20 item 4).
        let nat = makeIRCTranslator()
        let link = ircLink(nat)
        let line = dccLine("CHAT chat 3405803777 5001")
        let sent = link.fromInside(line, seq: insideISN + 1, ack: outsideISN + 1)
        #expect(sent.isDelivered && sent.text == line)
        expectWellFormed(sent)
        #expect(nat.events(.refusedForeignAddress) == 1 && nat.events(.rewrite) == 0)
        #expect(nat.pendingExpectationCount == 0)
    }

    @Test func aPortTheNATCannotKeepGetsAnotherAndAcceptFollowsIt() throws {
        let nat = makeIRCTranslator()
        // Another inside host already appears outside as port 5000.
        let other = nat.send(PacketBuilder.tcp(IRCNet.otherInside, 5000, IRCNet.server, 80, flags: TCPFlag.syn, seq: 1), .outbound)
        #expect(TCPView.sourcePort(other.packet) == 5000)
        let link = ircLink(nat)
        var seq = insideISN + 1
        let offer = dccLine("SEND \"big file.iso\" 3221226010 5000 900000")
        let sent = link.fromInside(offer, seq: seq, ack: outsideISN + 1)
        seq += UInt32(offer.utf8.count)
        let x = try #require(portAfter("3405803777", in: sent.text))
        #expect(x != 5000)
        #expect(sent.text == dccLine("SEND \"big file.iso\" 3405803777 \(x) 900000"))

        // The peer asked to resume (naming port x); the client accepts, naming its own port:
        // the peer is told x, the port it knows.
        let accept = dccLine("ACCEPT \"big file.iso\" 5000 4096")
        let acceptSent = link.fromInside(accept, seq: seq, ack: outsideISN + 1)
        seq += UInt32(accept.utf8.count)
        expectWellFormed(acceptSent)
        #expect(acceptSent.text == dccLine("ACCEPT \"big file.iso\" \(x) 4096"))
        #expect(nat.events(.rewrite) == 2)
        // ACCEPT opens nothing more: the offer's expectation is still there for the peer.
        #expect(nat.pendingExpectationCount == 1)

        // RESUME names the peer's port (the client is the receiver there): unchanged, and
        // so is an ACCEPT of a port the client never offered.
        for line in [dccLine("RESUME \"big file.iso\" 5000 4096"), dccLine("ACCEPT other.iso 6000 4096")] {
            let unchanged = link.fromInside(line, seq: seq, ack: outsideISN + 1)
            seq += UInt32(line.utf8.count)
            #expect(unchanged.text == line)
        }
        #expect(nat.events(.rewrite) == 2)
        #expect(nat.events(.malformed) == 0)
        expectAdmitted(nat, from: IRCNet.peer, port: x, to: IRCNet.client, toPort: 5000)
    }

    @Test func anAcceptOfAPortKeptAsItWasIsUnchanged() throws {
        let nat = makeIRCTranslator()
        let link = ircLink(nat)
        var seq = insideISN + 1
        let offer = dccLine("SEND f 3221226010 5000 10")
        let sent = link.fromInside(offer, seq: seq, ack: outsideISN + 1)
        seq += UInt32(offer.utf8.count)
        #expect(portAfter("3405803777", in: sent.text) == 5000)
        let accept = dccLine("ACCEPT f 5000 5")
        #expect(link.fromInside(accept, seq: seq, ack: outsideISN + 1).text == accept)
        #expect(nat.events(.rewrite) == 1)
    }

    @Test func severalOffersInOneSegmentAreAllRewritten() throws {
        let nat = makeIRCTranslator()
        let link = ircLink(nat)
        let payload = "PRIVMSG #c :hi\r\n" + dccLine("SEND a.txt 3221226010 5001 1") + "PING :x\r\n"
            + dccLine("CHAT chat 3221226010 5002", command: "NOTICE", target: "carol") + dccLine("TSEND b 3221226010 5003 2", terminator: "\n")
        let sent = link.fromInside(payload, seq: insideISN + 1, ack: outsideISN + 1)
        #expect(sent.kind == .replaced)
        expectWellFormed(sent)
        let out = lines(sent.text)
        #expect(out.count == 5)
        let x1 = try #require(portAfter("3405803777", in: out[1]))
        let x2 = try #require(portAfter("3405803777", in: out[3]))
        let x3 = try #require(portAfter("3405803777", in: out[4]))
        #expect(sent.text == "PRIVMSG #c :hi\r\n" + dccLine("SEND a.txt 3405803777 \(x1) 1") + "PING :x\r\n"
            + dccLine("CHAT chat 3405803777 \(x2)", command: "NOTICE", target: "carol") + dccLine("TSEND b 3405803777 \(x3) 2", terminator: "\n"))
        #expect(nat.events(.rewrite) == 3)
        #expect(nat.pendingExpectationCount == 3)
        expectAdmitted(nat, from: IRCNet.peer, port: x1, to: IRCNet.client, toPort: 5001)
        expectAdmitted(nat, from: IRCNet.otherPeer, port: x2, to: IRCNet.client, toPort: 5002)
        expectAdmitted(nat, from: IRCNet.peer, port: x3, to: IRCNet.client, toPort: 5003)
    }

    @Test func moreOffersInOneSegmentThanEditsPerInspect() {
        // The core takes HelperLimits.editsPerInspect (8) edits per inspection: the offer after
        // them passes unchanged, counted, and no expectation is made for it.
        let limit = HelperLimits.editsPerInspect
        let nat = makeIRCTranslator()
        let link = ircLink(nat)
        let offers = (0...limit).map { dccLine("SEND f\($0) 3221226010 \(5001 + $0) 1") }
        let sent = link.fromInside(offers.joined(), seq: insideISN + 1, ack: outsideISN + 1)
        let out = lines(sent.text)
        #expect(out.count == limit + 1)
        #expect(out.prefix(limit).allSatisfy { $0.contains(" 3405803777 ") })
        #expect(out.last == offers[limit])
        #expect(nat.events(.limit) == 1)
        #expect(nat.events(.rewrite) == UInt64(limit))
        #expect(nat.pendingExpectationCount == limit)
    }

    @Test func aRetransmittedOfferIsRebuiltIdenticallyAndExpectedOnce() throws {
        let nat = makeIRCTranslator()
        let link = ircLink(nat)
        let line = dccLine("SEND file.txt 3221226010 5000 1234")
        let first = link.fromInside(line, seq: insideISN + 1, ack: outsideISN + 1)
        let again = link.fromInside(line, seq: insideISN + 1, ack: outsideISN + 1)
        #expect(again.packet == first.packet)
        #expect(nat.pendingExpectationCount == 1)
        #expect(nat.events(.rewrite) == 1)
        // The server's acknowledgement of the rewritten line maps back to the original.
        let ack = link.fromOutside(seq: outsideISN + 1, ack: first.seq + UInt32(first.payload.count), flags: TCPFlag.ack)
        expectWellFormed(ack)
        #expect(ack.ack == insideISN + 1 + UInt32(line.utf8.count))
    }

    @Test func foreignInsideAddressesOnlyWhenAllowed() throws {
        let nat = makeIRCTranslator(helper: IRCHelper(allowForeignAddresses: true))
        let link = ircLink(nat)
        var seq = insideISN + 1
        // 192.0.2.99 = 3221226083: another inside host.
        let line = dccLine("SEND f 3221226083 5000 1")
        let sent = link.fromInside(line, seq: seq, ack: outsideISN + 1)
        seq += UInt32(line.utf8.count)
        let x = try #require(portAfter("3405803777", in: sent.text))
        #expect(sent.text == dccLine("SEND f 3405803777 \(x) 1"))
        expectAdmitted(nat, from: IRCNet.peer, port: x, to: IRCNet.otherInside, toPort: 5000)
        // An outside address (8.8.8.8 = 134744072) is refused by the core: unchanged.
        let outside = dccLine("SEND f 134744072 5000 1")
        #expect(link.fromInside(outside, seq: seq, ack: outsideISN + 1).text == outside)
        #expect(nat.events(.limit) == 1)
        #expect(nat.events(.rewrite) == 1)
    }

    @Test func reversePassiveAndIPv6OffersPassSilently() {
        let nat = makeIRCTranslator()
        let link = ircLink(nat)
        var seq = insideISN + 1
        for line in [dccLine("SEND file.txt 3221226010 0 1234 77"), dccLine("CHAT chat 3221226010 0 12"),
                     dccLine("SEND file.txt 2001:db8::1a 5000 1234"), dccLine("SEND file.txt 2001:db8::1a 0 1234 5")] {
            let sent = link.fromInside(line, seq: seq, ack: outsideISN + 1)
            seq += UInt32(line.utf8.count)
            #expect(sent.text == line)
        }
        for event in HelperEvent.allCases { #expect(nat.events(event) == 0, "\(event)") }
        #expect(nat.pendingExpectationCount == 0)
    }
}
