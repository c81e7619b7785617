// What must not open anything: "\x01DCC" anywhere but at the start of a PRIVMSG/NOTICE's
// trailing parameter (CVE-2022-2663), lines from the server (NAT slipstreaming: the server
// echoes what the client wrote), foreign addresses, low ports, malformed numbers, overlong
// lines, HTTP spoken to the IRC port.

import NATCore
import NATHelpers
import NATTestKit
import Testing

@Suite struct IRCRefusalTests {
    @Test func dccThatDoesNotOpenTheTrailingParameterIsText() {
        let nat = makeIRCTranslator()
        let link = ircLink(nat)
        sendUnchanged(link, [
            "PRIVMSG #c :hello \u{01}DCC SEND x 3221226010 5000\u{01}\r\n",
            "PRIVMSG #c :\u{01}ACTION says \u{01}DCC SEND x 3221226010 5000\u{01}\r\n",
            "PRIVMSG #c : \u{01}DCC SEND x 3221226010 5000\u{01}\r\n",
            "PRIVMSG #c :x\u{01}DCC SEND x 3221226010 5000\u{01}\r\n",
            "PRIVMSG \u{01}DCC SEND x 3221226010 5000\u{01}\r\n",
            "PRIVMSG #c \u{01}DCC SEND x 3221226010 5000\u{01}\r\n",
            "PRIVMSG :\u{01}DCC SEND x 3221226010 5000\u{01}\r\n",
            "PRIVMSGX #c :\u{01}DCC SEND x 3221226010 5000\u{01}\r\n",
            "PING :\u{01}DCC SEND x 3221226010 5000\u{01}\r\n",
            "TOPIC #c :\u{01}DCC SEND x 3221226010 5000\u{01}\r\n",
            "hello PRIVMSG #c :\u{01}DCC SEND x 3221226010 5000\u{01}\r\n",
            " PRIVMSG #c :\u{01}DCC SEND x 3221226010 5000\u{01}\r\n",
            ":\u{01}DCC SEND x 3221226010 5000\u{01}\r\n",
            "\u{01}DCC SEND x 3221226010 5000\u{01}\r\n",
            "PRIVMSG #c :\u{01}DCCSEND x 3221226010 5000\u{01}\r\n",
            "PRIVMSG #c :\u{01}XDCC SEND x 3221226010 5000\u{01}\r\n",
        ])
        for event in HelperEvent.allCases { #expect(nat.events(event) == 0, "\(event)") }
        #expect(nat.pendingExpectationCount == 0)
        expectNotAdmitted(nat, from: IRCNet.peer, port: 5000)
    }

    @Test func linesFromTheServerNeverOpenAnything() throws {
        // NAT slipstreaming: the server relays (or echoes) text the client was made to send,
        // or another user's DCC naming the client's address. None of it is the client's own
        // offer: nothing is rewritten, nothing expected.
        let nat = makeIRCTranslator()
        let link = ircLink(nat)
        var serverSeq = outsideISN + 1
        for line in [":alice!a@h PRIVMSG bob :\u{01}DCC SEND x 3221226010 5000 1\u{01}\r\n",
                     dccLine("CHAT chat 3221226010 5001"),
                     ":server 421 bob \u{01}DCC :Unknown command\r\n",
                     ":alice!a@h NOTICE bob :\u{01}DCC SEND x 3405803777 5002 1\u{01}\r\n"] {
            let sent = link.fromOutside(line, seq: serverSeq, ack: insideISN + 1)
            serverSeq += UInt32(line.utf8.count)
            #expect(sent.kind == .rewritten || sent.kind == .replaced)
            #expect(sent.payload == bytes(line))
            expectWellFormed(sent)
            #expect(TCPView.destinationAddress(sent.packet) == IRCNet.client)
        }
        for event in HelperEvent.allCases { #expect(nat.events(event) == 0, "\(event)") }
        #expect(nat.pendingExpectationCount == 0)
        for port: UInt16 in [5000, 5001, 5002] { expectNotAdmitted(nat, from: IRCNet.peer, port: port) }

        // The client's own offer still works afterwards.
        let offer = link.fromInside(dccLine("SEND x 3221226010 5000 1"), seq: insideISN + 1, ack: serverSeq)
        let x = try #require(portAfter("3405803777", in: offer.text))
        #expect(nat.events(.rewrite) == 1)
        expectAdmitted(nat, from: IRCNet.peer, port: x, to: IRCNet.client, toPort: 5000)
    }

    @Test func anOutsideClientOfAnInsideServerIsNotHelped() {
        // An IRC server inside, reached through a port forward: the client is outside, its
        // DCC lines (and the server's) pass unchanged.
        let nat = makeIRCTranslator { $0.forwards = [PortForward("tcp:6667=192.0.2.26:6667")!] }
        let link = Link(nat: nat, inside: IRCNet.client, insidePort: 6667, outside: IRCNet.peer, outsidePort: 50000, externalPort: 6667)
        #expect(link.fromOutside(seq: outsideISN, flags: TCPFlag.syn).kind == .rewritten)
        #expect(link.fromInside(seq: insideISN, ack: outsideISN + 1, flags: TCPFlag.syn | TCPFlag.ack).kind == .rewritten)
        #expect(link.fromOutside(seq: outsideISN + 1, ack: insideISN + 1, flags: TCPFlag.ack).kind == .rewritten)
        #expect(nat.helperConnectionCount == 1)
        let fromClient = dccLine("SEND x 3405803777 5000 1")
        #expect(link.fromOutside(fromClient, seq: outsideISN + 1, ack: insideISN + 1).payload == bytes(fromClient))
        let fromServer = ":bob!b@h PRIVMSG alice :\u{01}DCC SEND x 3221226010 5001 1\u{01}\r\n"
        #expect(link.fromInside(fromServer, seq: insideISN + 1, ack: outsideISN + 1).payload == bytes(fromServer))
        for event in HelperEvent.allCases { #expect(nat.events(event) == 0, "\(event)") }
        #expect(nat.pendingExpectationCount == 0)
    }

    @Test func foreignAddressesAreRefused() {
        let nat = makeIRCTranslator()
        let link = ircLink(nat)
        sendUnchanged(link, [
            dccLine("SEND x 3221226083 5000 1"), // 192.0.2.99: another inside host
            dccLine("SEND x 134744072 5000 1"), // 8.8.8.8
            dccLine("CHAT chat 192.0.2.99 5000"),
            dccLine("CHAT chat 4294967295 5000"), // the largest address there is
            dccLine("CHAT chat 0 5000"),
        ])
        #expect(nat.events(.refusedForeignAddress) == 5)
        #expect(nat.events(.rewrite) == 0)
        #expect(nat.pendingExpectationCount == 0)
        expectNotAdmitted(nat, from: IRCNet.peer, port: 5000)
    }

    @Test func lowPortsAreRefused() {
        let nat = makeIRCTranslator()
        let link = ircLink(nat)
        sendUnchanged(link, [dccLine("SEND x 3221226010 1023 1"), dccLine("CHAT chat 3221226010 22"), dccLine("CHAT chat 3221226010 1")])
        #expect(nat.events(.refusedLowPort) == 3)
        #expect(nat.events(.rewrite) == 0)
        #expect(nat.pendingExpectationCount == 0)
        expectNotAdmitted(nat, from: IRCNet.peer, port: 22)
    }

    @Test func malformedNumbersAndShapesAreCountedAndPassed() {
        let nat = makeIRCTranslator()
        let link = ircLink(nat)
        let malformed = [
            dccLine("SEND x 4294967296 5000 1"), // 2^32
            dccLine("SEND x 32212260100 5000 1"), // 11 digits
            dccLine("SEND x 99999999999999999999999999 5000 1"),
            dccLine("SEND x 3221226010 65536 1"),
            dccLine("SEND x 3221226010 70000 1"), // the kernel truncated this to 4464
            dccLine("SEND x 3221226010 000005000 1"),
            dccLine("SEND x 3221226010 5000x 1"),
            dccLine("SEND x 3221226010x 5000 1"),
            dccLine("SEND x -1 5000 1"),
            dccLine("SEND x 3221226010"),
            dccLine("SEND x 3221226010 "),
            dccLine("SEND x"),
            dccLine("SEND"),
            dccLine("SEND "),
            dccLine("CHAT chat 256.0.2.26 5000"),
            dccLine("CHAT chat 192.0.2 5000"),
            dccLine("CHAT chat 192.0.2.26. 5000"),
            dccLine("CHAT chat 192.0.2.0026 5000"),
            dccLine("SEND \"unterminated 3221226010 5000 1"),
            dccLine("SEND \"a\"b 3221226010 5000 1"),
            "PRIVMSG bob :\u{01}DCC SEND x 3221226010 5000 1\r\n", // no closing \x01
            "PRIVMSG bob :\u{01}DCC SEND x 3221226010 5000 1\u{01} trailing\r\n",
            "PRIVMSG bob :\u{01}DCC SEND x 3221226010 5000\u{01}\u{01}\r\n",
            dccLine("ACCEPT x 5000"),
            dccLine("ACCEPT x 99999 1"),
        ]
        sendUnchanged(link, malformed)
        #expect(nat.events(.malformed) == UInt64(malformed.count))
        #expect(nat.events(.rewrite) == 0)
        #expect(nat.pendingExpectationCount == 0)
        expectNotAdmitted(nat, from: IRCNet.peer, port: 5000)
    }

    @Test func otherDCCTypesPassUncounted() {
        let nat = makeIRCTranslator()
        let link = ircLink(nat)
        sendUnchanged(link, [dccLine("RESUME x 5000 100"), dccLine("XMIT x 3221226010 5000 1"), dccLine("SENDX x 3221226010 5000 1"),
                             dccLine(""), "PRIVMSG bob :\u{01}DCC \u{01}\r\n", "PRIVMSG bob :\u{01}VERSION\u{01}\r\n"])
        for event in HelperEvent.allCases { #expect(nat.events(event) == 0, "\(event)") }
    }

    @Test func linesAreBoundedBy512Bytes() throws {
        let nat = makeIRCTranslator()
        let link = ircLink(nat)
        func offer(length: Int) -> String {
            let shortest = dccLine("SEND  3221226010 5000 1")
            return dccLine("SEND \(String(repeating: "f", count: length - shortest.utf8.count)) 3221226010 5000 1")
        }
        var seq = insideISN + 1
        // 512 bytes with "\r\n": still a line.
        let longest = offer(length: 512)
        #expect(longest.utf8.count == 512)
        let sent = link.fromInside(longest, seq: seq, ack: outsideISN + 1)
        seq += UInt32(longest.utf8.count)
        #expect(sent.text.contains(" 3405803777 "))
        #expect(nat.events(.rewrite) == 1)
        // One byte more, and a much longer one: not ours.
        seq = sendUnchanged(link, [offer(length: 513), offer(length: 1400)], seq: seq)
        // A long line that is not yet finished is not held; the next segment starts inside
        // it, so its DCC-looking rest is not a line of its own; the line after it is.
        let head = "PRIVMSG bob :" + String(repeating: "z", count: 600)
        seq = sendUnchanged(link, [head, dccLine("CHAT chat 3221226010 5001")], seq: seq)
        let next = link.fromInside(dccLine("CHAT chat 3221226010 5002"), seq: seq, ack: outsideISN + 1)
        let x = try #require(portAfter("3405803777", in: next.text))
        #expect(nat.events(.rewrite) == 2)
        #expect(nat.events(.malformed) == 0)
        #expect(nat.counters[.helperLinesHeld] == 0)
        expectAdmitted(nat, from: IRCNet.peer, port: x, to: IRCNet.client, toPort: 5002)
        expectNotAdmitted(nat, from: IRCNet.peer, port: 5001)
    }

    @Test func aStreamThatStartsAsHTTPIsNeverParsed() {
        // A browser made to post to the IRC port (NAT slipstreaming): the body is lines the
        // page chose, a DCC offer among them.
        let nat = makeIRCTranslator()
        let link = ircLink(nat)
        let body = dccLine("CHAT chat 3221226010 5000")
        let request = "POST /x HTTP/1.1\r\nHost: irc.example:6667\r\nContent-Length: \(body.utf8.count)\r\n\r\n" + body
        sendUnchanged(link, [request, dccLine("SEND x 3221226010 5001 1")])
        for event in HelperEvent.allCases where event != .abandoned { #expect(nat.events(event) == 0, "\(event)") }
        #expect(nat.events(.abandoned) == 1)
        #expect(nat.pendingExpectationCount == 0)
        expectNotAdmitted(nat, from: IRCNet.peer, port: 5000)
        expectNotAdmitted(nat, from: IRCNet.peer, port: 5001)

        // An IRC client whose first line merely mentions HTTP is an IRC client.
        let nat2 = makeIRCTranslator()
        let link2 = ircLink(nat2)
        let first = "NICK http\r\nUSER GET 0 * :POST HTTP/1.1\r\n" + dccLine("CHAT chat 3221226010 5000")
        #expect(link2.fromInside(first, seq: insideISN + 1, ack: outsideISN + 1).text.contains(" 3405803777 "))
        #expect(nat2.events(.rewrite) == 1)
    }

    /// The HTTP check is made on the stream's start, not on the first segment: a server that
    /// shrinks its window can make the browser send "PO", then the rest (issue #20 item 4).
    @Test func anHTTPStartCutIntoTinySegmentsIsStillHTTP() {
        let nat = makeIRCTranslator()
        let link = ircLink(nat)
        let first = link.fromInside("PO", seq: insideISN + 1, ack: outsideISN + 1)
        #expect(first.payload.isEmpty) // held: "PO" may still become "POST "
        let body = dccLine("CHAT chat 3221226010 5000")
        let rest = "ST /x HTTP/1.1\r\nHost: irc.example:6667\r\n\r\n" + body
        let sent = link.fromInside(rest, seq: insideISN + 3, ack: outsideISN + 1)
        #expect(sent.text == "PO" + rest)
        expectWellFormed(sent)
        #expect(nat.events(.abandoned) == 1 && nat.events(.rewrite) == 0 && nat.pendingExpectationCount == 0)
        expectNotAdmitted(nat, from: IRCNet.peer, port: 5000)

        // "PI" cannot begin a method: decided at once, an IRC client.
        let nat2 = makeIRCTranslator()
        let link2 = ircLink(nat2)
        let ping = link2.fromInside("PI", seq: insideISN + 1, ack: outsideISN + 1)
        #expect(ping.text == "PI")
        #expect(nat2.events(.abandoned) == 0)
    }
}
