// Active mode with the client inside: PORT and EPRT rewritten, the data connection admitted
// once, from the server only; refusals; which ports the helper follows.

import NATCore
import NATHelpers
import NATTestKit
import Testing

@Suite struct FTPClientInsideTests {
    @Test func portIsRewrittenAndTheDataConnectionArrivesOnce() throws {
        let nat = makeFTPTranslator()
        let link = clientInsideLink(nat)
        #expect(nat.helperConnectionCount == 1)
        #expect(nat.pendingExpectationCount == 0)

        let command = "PORT 192,0,2,10,19,137\r\n"
        let sent = link.fromInside(command, seq: insideISN + 1, ack: outsideISN + 1)
        #expect(sent.kind == .replaced)
        expectWellFormed(sent)
        #expect(TCPView.sourceAddress(sent.packet) == Net.external)
        #expect(TCPView.sourcePort(sent.packet) == link.externalPort)
        #expect(sent.seq == insideISN + 1)
        #expect(sent.ack == outsideISN + 1)
        let x = try #require(portFromCommas(sent.text))
        #expect(sent.text == "PORT 203,0,113,1,\(x >> 8),\(x & 0xff)\r\n")
        #expect(Verify.totalLength(sent.packet) == 40 + sent.text.utf8.count)
        #expect(nat.pendingExpectationCount == 1)
        #expect(nat.events(.rewrite) == 1)
        #expect(nat.events(.expectation) == 1)

        // The server's data connection, from port 20, to the external port it was told.
        let dataSYN = nat.send(PacketBuilder.tcp(Net.server, 20, Net.external, x, flags: TCPFlag.syn, seq: 77), .inbound)
        #expect(dataSYN.kind == .rewritten)
        expectWellFormed(dataSYN)
        #expect(TCPView.destinationAddress(dataSYN.packet) == Net.client)
        #expect(TCPView.destinationPort(dataSYN.packet) == 19 * 256 + 137)
        #expect(TCPView.sourceAddress(dataSYN.packet) == Net.server)
        #expect(nat.pendingExpectationCount == 0)
        #expect(nat.counters[.expectationsFulfilled] == 1)

        // Another host trying the same port is not let in: the expectation was used, and
        // it admitted the server only.
        let stranger = PacketBuilder.tcp(Net.stranger, 20, Net.external, x, flags: TCPFlag.syn, seq: 88)
        let strangerSent = nat.send(stranger, .inbound)
        #expect(strangerSent.kind == .accept)
        #expect(strangerSent.packet == stranger)
        // And a second connection from the server's other port neither.
        let again = PacketBuilder.tcp(Net.server, 2020, Net.external, x, flags: TCPFlag.syn, seq: 99)
        #expect(nat.send(again, .inbound).kind == .accept)
    }

    @Test func anExpectationAdmitsOnlyTheServer() throws {
        let nat = makeFTPTranslator()
        let link = clientInsideLink(nat)
        let sent = link.fromInside("PORT 192,0,2,10,19,137\r\n", seq: insideISN + 1, ack: outsideISN + 1)
        let x = try #require(portFromCommas(sent.text))
        let stranger = PacketBuilder.tcp(Net.stranger, 20, Net.external, x, flags: TCPFlag.syn, seq: 88)
        #expect(nat.send(stranger, .inbound).kind == .accept)
        #expect(nat.pendingExpectationCount == 1)
        let server = PacketBuilder.tcp(Net.server, 20, Net.external, x, flags: TCPFlag.syn, seq: 77)
        #expect(nat.send(server, .inbound).kind == .rewritten)
        #expect(nat.pendingExpectationCount == 0)
    }

    @Test func eprtIPv4IsRewrittenIPv6Passes() throws {
        let nat = makeFTPTranslator()
        let link = clientInsideLink(nat)
        var seq = insideISN + 1
        let ackToServer = outsideISN + 1

        let eprt = link.fromInside("EPRT |1|192.0.2.10|5001|\r\n", seq: seq, ack: ackToServer)
        seq += UInt32("EPRT |1|192.0.2.10|5001|\r\n".utf8.count)
        expectWellFormed(eprt)
        let text = eprt.text
        #expect(text.hasPrefix("EPRT |1|203.0.113.1|"))
        let fields = text.split(separator: "|", omittingEmptySubsequences: false)
        #expect(fields.count == 5)
        let x = try #require(UInt16(fields[3]))
        #expect(text == "EPRT |1|203.0.113.1|\(x)|\r\n")
        let data = nat.send(PacketBuilder.tcp(Net.server, 20, Net.external, x, flags: TCPFlag.syn, seq: 1), .inbound)
        #expect(data.kind == .rewritten)
        #expect(TCPView.destinationAddress(data.packet) == Net.client)
        #expect(TCPView.destinationPort(data.packet) == 5001)

        // IPv6: not ours, unchanged and not counted as malformed.
        let before = nat.events(.malformed)
        let v6 = "EPRT |2|::1|5001|\r\n"
        let v6Sent = link.fromInside(v6, seq: seq, ack: ackToServer)
        seq += UInt32(v6.utf8.count)
        #expect(v6Sent.text == v6)
        expectWellFormed(v6Sent)
        #expect(nat.events(.malformed) == before)
        #expect(nat.pendingExpectationCount == 0)
        #expect(nat.events(.rewrite) == 1)

        // Another delimiter, lower case.
        let other = "eprt !1!192.0.2.10!6000!\r\n"
        let otherSent = link.fromInside(other, seq: seq, ack: ackToServer)
        seq += UInt32(other.utf8.count)
        let y = try #require(UInt16(otherSent.text.split(separator: "!", omittingEmptySubsequences: false)[3]))
        #expect(otherSent.text == "eprt !1!203.0.113.1!\(y)!\r\n")
        #expect(nat.events(.rewrite) == 2)
    }

    @Test func commandsAreCaseInsensitiveAndBareLineFeedsWork() throws {
        let nat = makeFTPTranslator()
        let link = clientInsideLink(nat)
        var seq = insideISN + 1
        for command in ["port 192,0,2,10,19,137\r\n", "Port 192,0,2,10,19,138\n", "pOrT   192,0,2,10,19,139  \r\n"] {
            let sent = link.fromInside(command, seq: seq, ack: outsideISN + 1)
            seq += UInt32(command.utf8.count)
            expectWellFormed(sent)
            let x = try #require(portFromCommas(sent.text))
            let keyword = String(command.prefix(4))
            let rewritten = "\(x >> 8),\(x & 0xff)"
            let expected: String = switch command {
            case let c where c.hasSuffix("137\r\n"): "\(keyword) 203,0,113,1,\(rewritten)\r\n"
            case let c where c.hasSuffix("138\n"): "\(keyword) 203,0,113,1,\(rewritten)\n"
            default: "\(keyword)   203,0,113,1,\(rewritten)  \r\n"
            }
            #expect(sent.text == expected)
        }
        #expect(nat.events(.rewrite) == 3)
        #expect(nat.pendingExpectationCount == 3)
        let eprt = link.fromInside("eprt |1|192.0.2.10|7000|\r\n", seq: seq, ack: outsideISN + 1)
        #expect(eprt.text.hasPrefix("eprt |1|203.0.113.1|"))
        #expect(nat.events(.rewrite) == 4)
    }

    @Test func severalCommandsInOneSegment() throws {
        let nat = makeFTPTranslator()
        let link = clientInsideLink(nat)
        let stream = "TYPE I\r\nPORT 192,0,2,10,19,137\r\nSTOR a\r\nEPRT |1|192.0.2.10|5002|\r\n"
        let sent = link.fromInside(stream, seq: insideISN + 1, ack: outsideISN + 1)
        expectWellFormed(sent)
        let lines = sent.text.split(separator: "\r\n", omittingEmptySubsequences: false)
        #expect(lines.count == 5)
        let x = try #require(portFromCommas(String(lines[1])))
        let y = try #require(UInt16(lines[3].split(separator: "|", omittingEmptySubsequences: false)[3]))
        #expect(sent.text == "TYPE I\r\nPORT 203,0,113,1,\(x >> 8),\(x & 0xff)\r\nSTOR a\r\nEPRT |1|203.0.113.1|\(y)|\r\n")
        #expect(nat.pendingExpectationCount == 2)
        #expect(nat.events(.rewrite) == 2)
    }

    @Test func refusals() throws {
        let nat = makeFTPTranslator()
        // Each group on a control connection of its own: a foreign address ends the helper's
        // trust in a connection (FTPStreamCheck), so nothing after it would be looked at.
        var clientPort: UInt16 = 40000
        var link = clientInsideLink(nat, clientPort: clientPort)
        var seq = insideISN + 1
        func newConnection() {
            clientPort += 1
            link = clientInsideLink(nat, clientPort: clientPort)
            seq = insideISN + 1
        }
        func unchanged(_ command: String, sourceLocation: SourceLocation = #_sourceLocation) {
            let sent = link.fromInside(command, seq: seq, ack: outsideISN + 1)
            seq += UInt32(command.utf8.count)
            #expect(sent.kind == .replaced, sourceLocation: sourceLocation)
            #expect(sent.text == command, sourceLocation: sourceLocation)
            expectWellFormed(sent, sourceLocation: sourceLocation)
        }

        // Another host's address (an FTP bounce, or a DMZ host opening a hole to another):
        // refused, and the connection is no longer parsed — its own address after it opens nothing.
        unchanged("PORT 192,0,2,99,19,137\r\n")
        #expect(nat.events(.refusedForeignAddress) == 1 && nat.events(.abandoned) == 1)
        unchanged("PORT 192,0,2,10,19,137\r\n")
        #expect(nat.events(.rewrite) == 0 && nat.events(.abandoned) == 1)
        newConnection()
        unchanged("EPRT |1|198.51.100.6|5001|\r\n")
        #expect(nat.events(.refusedForeignAddress) == 2 && nat.events(.abandoned) == 2)
        // A privileged port: refused, the connection goes on.
        newConnection()
        unchanged("PORT 192,0,2,10,0,21\r\n")
        #expect(nat.events(.refusedLowPort) == 1)
        unchanged("EPRT |1|192.0.2.10|1023|\r\n")
        #expect(nat.events(.refusedLowPort) == 2)
        // Garbage.
        let malformed = [
            "PORT 1,2,3\r\n", "PORT\r\n", "PORT \r\n", "PORT 192,0,2,10,19,1370\r\n", "PORT 192,0,2,10,19,256\r\n",
            "PORT 192, 0,2,10,19,137\r\n", "PORT 192,0,2,10,19,137,1\r\n", "PORT 192,0,2,10,19,137x\r\n",
            "EPRT |1|192.0.2.10|5001\r\n", "EPRT |3|192.0.2.10|5001|\r\n", "EPRT |1|192.0.2|5001|\r\n",
            "EPRT |1|192.0.2.10|70000|\r\n", "EPRT\r\n", "EPRT \u{7f}1\u{7f}192.0.2.10\u{7f}5001\u{7f}\r\n",
            "EPRT |1|192.0.2.10|5001|x\r\n",
        ]
        for command in malformed { unchanged(command) }
        #expect(nat.events(.malformed) == UInt64(malformed.count))
        // Commands we do not rewrite.
        let before = nat.events(.malformed)
        for command in ["PASV\r\n", "EPSV\r\n", "TYPE I\r\n"] { unchanged(command) }
        // ABOR behind Telnet's "interrupt process" and "data mark" (RFC 959 4.1.3), as clients send it.
        let abort: [UInt8] = [0xff, 0xf4, 0xff, 0xf2] + Array("ABOR\r\n".utf8)
        let aborted = link.fromInside(abort, seq: seq, ack: outsideISN + 1)
        seq += UInt32(abort.count)
        #expect(aborted.kind == .replaced && aborted.payload == abort)
        #expect(nat.events(.malformed) == before && nat.events(.abandoned) == 2)
        // Lines that are no FTP command at all: the stream is not FTP and is left alone.
        for command in ["PORTS 1\r\n", "XPORT 192,0,2,10,19,137\r\n", " PORT 192,0,2,10,19,137\r\n"] {
            newConnection()
            unchanged(command)
            unchanged("PORT 192,0,2,10,19,137\r\n")
        }
        #expect(nat.events(.abandoned) == 5)
        #expect(nat.events(.malformed) == before)
        #expect(nat.events(.rewrite) == 0)
        #expect(nat.events(.expectation) == 0)
        #expect(nat.pendingExpectationCount == 0)
    }

    @Test func foreignAddressesWhenAllowed() throws {
        let nat = makeFTPTranslator(helper: FTPHelper(allowForeignAddresses: true))
        let link = clientInsideLink(nat)
        let sent = link.fromInside("PORT 192,0,2,99,19,137\r\n", seq: insideISN + 1, ack: outsideISN + 1)
        let x = try #require(portFromCommas(sent.text))
        #expect(sent.text == "PORT 203,0,113,1,\(x >> 8),\(x & 0xff)\r\n")
        #expect(nat.events(.refusedForeignAddress) == 0)
        let data = nat.send(PacketBuilder.tcp(Net.server, 20, Net.external, x, flags: TCPFlag.syn, seq: 1), .inbound)
        #expect(data.kind == .rewritten)
        #expect(TCPView.destinationAddress(data.packet) == Net.otherHost)
        #expect(TCPView.destinationPort(data.packet) == 5001)

        // An address outside the internal prefixes: the core refuses the expectation.
        let outside = "PORT 198,51,100,6,19,137\r\n"
        let sentOutside = link.fromInside(outside, seq: insideISN + 1 + 24, ack: outsideISN + 1)
        #expect(sentOutside.text == outside)
        #expect(nat.events(.limit) == 1)
        // Low ports stay refused.
        let low = link.fromInside("PORT 192,0,2,99,0,22\r\n", seq: insideISN + 1 + 24 + 26, ack: outsideISN + 1)
        #expect(low.text == "PORT 192,0,2,99,0,22\r\n")
        #expect(nat.events(.refusedLowPort) == 1)
    }

    @Test func port2121IsHelpedPort80IsNot() throws {
        let nat = makeFTPTranslator()
        let helped = clientInsideLink(nat, clientPort: 40001, serverPort: 2121)
        let sent = helped.fromInside("PORT 192,0,2,10,19,137\r\n", seq: insideISN + 1, ack: outsideISN + 1)
        #expect(sent.kind == .replaced)
        let x = try #require(portFromCommas(sent.text))
        #expect(sent.text == "PORT 203,0,113,1,\(x >> 8),\(x & 0xff)\r\n")
        #expect(nat.pendingExpectationCount == 1)
        #expect(nat.helperConnectionCount == 1)

        let web = clientInsideLink(nat, clientPort: 40002, serverPort: 80)
        let command = "PORT 192,0,2,10,19,138\r\n"
        let webSent = web.fromInside(command, seq: insideISN + 1, ack: outsideISN + 1)
        #expect(webSent.kind == .rewritten)
        #expect(webSent.text == command)
        expectWellFormed(webSent)
        #expect(nat.pendingExpectationCount == 1)
        #expect(nat.helperConnectionCount == 1)
    }

    @Test func theServerSideIsNotRewrittenForAnInsideClient() {
        // A 227 reply from an outside server goes to the inside client unchanged: the
        // client dials out. A PORT text sent by the server is not a command either.
        let nat = makeFTPTranslator()
        let link = clientInsideLink(nat)
        var seq = outsideISN + 1
        for reply in ["227 Entering Passive Mode (198,51,100,5,195,80).\r\n", "PORT 192,0,2,10,19,137\r\n"] {
            let sent = link.fromOutside(reply, seq: seq, ack: insideISN + 1)
            seq += UInt32(reply.utf8.count)
            #expect(sent.text == reply)
        }
        #expect(nat.pendingExpectationCount == 0)
    }
}
