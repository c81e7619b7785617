// Passive mode with the server inside, behind a port forward of 21: the 227 and 229 replies
// are rewritten and the client's data connection reaches the server.

import NATCore
import NATHelpers
import NATTestKit
import Testing

@Suite struct FTPServerInsideTests {
    static func translator(helper: FTPHelper = FTPHelper()) -> NATTranslator {
        makeFTPTranslator(helper: helper) {
            $0.forwards = [PortForward("tcp:21=192.0.2.10:21")!, PortForward("tcp:2121=192.0.2.10:2121")!]
        }
    }

    @Test func pasvReplyIsRewrittenAndTheClientsDataConnectionArrives() throws {
        let nat = FTPServerInsideTests.translator()
        let link = serverInsideLink(nat)
        #expect(nat.helperConnectionCount == 1)
        let s = insideISN + 1
        let reply = "227 Entering Passive Mode (192,0,2,10,195,80).\r\n"
        let sent = link.fromInside(reply, seq: s, ack: outsideISN + 1)
        #expect(sent.kind == .replaced)
        expectWellFormed(sent)
        #expect(TCPView.sourceAddress(sent.packet) == Net.external)
        #expect(TCPView.sourcePort(sent.packet) == 21)
        #expect(TCPView.destinationAddress(sent.packet) == Net.server)
        let x = try #require(portFromCommas(sent.text))
        #expect(sent.text == "227 Entering Passive Mode (203,0,113,1,\(x >> 8),\(x & 0xff)).\r\n")
        #expect(nat.pendingExpectationCount == 1)

        // The client's data connection, from any port, to the port it was told.
        let data = nat.send(PacketBuilder.tcp(Net.server, 50001, Net.external, x, flags: TCPFlag.syn, seq: 9), .inbound)
        #expect(data.kind == .rewritten)
        expectWellFormed(data)
        #expect(TCPView.destinationAddress(data.packet) == Net.client)
        #expect(TCPView.destinationPort(data.packet) == 50000)
        #expect(nat.pendingExpectationCount == 0)
        // Its answer goes back out from the external port.
        let synAck = nat.send(PacketBuilder.tcp(Net.client, 50000, Net.server, 50001, flags: TCPFlag.syn | TCPFlag.ack, seq: 1, ack: 10), .outbound)
        #expect(synAck.kind == .rewritten)
        #expect(TCPView.sourcePort(synAck.packet) == x)
        // Someone else cannot use the port.
        let stranger = nat.send(PacketBuilder.tcp(Net.stranger, 50001, Net.external, x, flags: TCPFlag.syn, seq: 9), .inbound)
        #expect(stranger.kind == .accept)

        // The client's acknowledgement of the reply maps back.
        let ack = link.fromOutside(seq: outsideISN + 1, ack: s + UInt32(sent.payload.count), flags: TCPFlag.ack)
        #expect(ack.ack == s + UInt32(reply.utf8.count))
        expectWellFormed(ack)
    }

    @Test func epsvReplyGetsTheExternalPort() throws {
        let nat = FTPServerInsideTests.translator()
        let link = serverInsideLink(nat)
        let reply = "229 Entering Extended Passive Mode (|||50001|)\r\n"
        let sent = link.fromInside(reply, seq: insideISN + 1, ack: outsideISN + 1)
        expectWellFormed(sent)
        let fields = sent.text.split(separator: "|", omittingEmptySubsequences: false)
        #expect(fields.count == 5)
        let x = try #require(UInt16(fields[3]))
        #expect(sent.text == "229 Entering Extended Passive Mode (|||\(x)|)\r\n")
        let data = nat.send(PacketBuilder.tcp(Net.server, 40404, Net.external, x, flags: TCPFlag.syn, seq: 9), .inbound)
        #expect(data.kind == .rewritten)
        #expect(TCPView.destinationAddress(data.packet) == Net.client)
        #expect(TCPView.destinationPort(data.packet) == 50001)
        #expect(nat.pendingExpectationCount == 0)
    }

    @Test(arguments: [
        ("227 Entering Passive Mode 192,0,2,10,195,80\r\n", "227 Entering Passive Mode 203,0,113,1,#\r\n"),
        ("227 =192,0,2,10,195,80\r\n", "227 =203,0,113,1,#\r\n"),
        ("227 Mode 2 (192,0,2,10,195,80)\r\n", "227 Mode 2 (203,0,113,1,#)\r\n"),
        ("227 1,2 (192,0,2,10,195,80)\r\n", "227 1,2 (203,0,113,1,#)\r\n"),
        ("229 Extended Passive (!!!50001!)\r\n", "229 Extended Passive (!!!#!)\r\n"),
        ("229 (|||50001|)\r\n", "229 (|||#|)\r\n"),
    ])
    func replyVariants(_ reply: String, _ pattern: String) throws {
        let nat = FTPServerInsideTests.translator()
        let link = serverInsideLink(nat)
        let sent = link.fromInside(reply, seq: insideISN + 1, ack: outsideISN + 1)
        expectWellFormed(sent)
        #expect(nat.events(.rewrite) == 1)
        #expect(nat.pendingExpectationCount == 1)
        let text = sent.text
        // Recover the port from where '#' stands in the pattern.
        let prefix = pattern.prefix(while: { $0 != "#" })
        let suffix = pattern.drop(while: { $0 != "#" }).dropFirst()
        #expect(text.hasPrefix(prefix) && text.hasSuffix(suffix))
        let middle = text.dropFirst(prefix.count).dropLast(suffix.count)
        if reply.hasPrefix("227") {
            let pieces = middle.split(separator: ",").compactMap { UInt16($0) }
            #expect(pieces.count == 2)
        } else {
            #expect(UInt16(middle) != nil)
        }
    }

    @Test func refusedAndMalformedReplies() throws {
        let nat = FTPServerInsideTests.translator()
        let link = serverInsideLink(nat)
        var seq = insideISN + 1
        func unchanged(_ reply: String, sourceLocation: SourceLocation = #_sourceLocation) {
            let sent = link.fromInside(reply, seq: seq, ack: outsideISN + 1)
            seq += UInt32(reply.utf8.count)
            #expect(sent.text == reply, sourceLocation: sourceLocation)
            expectWellFormed(sent, sourceLocation: sourceLocation)
        }
        unchanged("227 Entering Passive Mode (192,0,2,10,0,20).\r\n")
        unchanged("229 Entering Extended Passive Mode (|||22|)\r\n")
        #expect(nat.events(.refusedLowPort) == 2)
        let malformed = ["227 Entering Passive Mode\r\n", "227 (192,0,2,10,195)\r\n", "227 (192,0,2,10,195,800)\r\n",
                         "229 Entering Extended Passive Mode\r\n", "229 (||50001|)\r\n", "229 (|||50001)\r\n",
                         "229 (|||500011|)\r\n", "229 (111500011)\r\n", "229 (|||70000|)\r\n", "227\r\n"]
        for reply in malformed { unchanged(reply) }
        #expect(nat.events(.malformed) == UInt64(malformed.count))
        // Other replies, and multi-line ones, are not ours.
        for reply in ["220 Welcome 192,0,2,10,195,80\r\n", "227-Entering (192,0,2,10,195,80)\r\n", "2270 x\r\n"] {
            unchanged(reply)
        }
        #expect(nat.events(.malformed) == UInt64(malformed.count))
        // Another host's address: refused, and the connection is not parsed any more.
        unchanged("227 Entering Passive Mode (192,0,2,11,195,80).\r\n")
        #expect(nat.events(.refusedForeignAddress) == 1 && nat.events(.abandoned) == 1)
        unchanged("227 Entering Passive Mode (192,0,2,10,195,80).\r\n")
        #expect(nat.events(.rewrite) == 0)
        #expect(nat.pendingExpectationCount == 0)
    }

    /// Issue #20 item 12: a reply line ends at CR LF only (RFC 959 4.2). An inside server that
    /// echoes a WAN client's text (a file name with a bare LF in it) cannot be made to send a
    /// "227" line naming itself and a port the client chose.
    @Test func aBareLineFeedInAReplyIsText() throws {
        let nat = FTPServerInsideTests.translator()
        let link = serverInsideLink(nat)
        var seq = insideISN + 1
        let echoed = "550 x\n227 Entering Passive Mode (192,0,2,10,31,144)\n: No such file\r\n"
        let refused = link.fromInside(echoed, seq: seq, ack: outsideISN + 1)
        seq += UInt32(echoed.utf8.count)
        #expect(refused.isDelivered && refused.text == echoed)
        expectWellFormed(refused)
        #expect(nat.events(.rewrite) == 0 && nat.events(.malformed) == 0 && nat.pendingExpectationCount == 0)
        // A CR that ends one segment and the LF that starts the next end a line: the 227 after is one.
        let cr = link.fromInside("200 ok\r", seq: seq, ack: outsideISN + 1)
        seq += 7
        #expect(cr.text == "200 ok\r")
        let reply = "\n227 Entering Passive Mode (192,0,2,10,195,80)\r\n"
        let sent = link.fromInside(reply, seq: seq, ack: outsideISN + 1)
        #expect(sent.text.hasPrefix("\n227 Entering Passive Mode (203,0,113,1,"))
        expectWellFormed(sent)
        #expect(nat.events(.rewrite) == 1 && nat.pendingExpectationCount == 1)
    }

    @Test func aForeignDataServerWhenAllowed() throws {
        let nat = FTPServerInsideTests.translator(helper: FTPHelper(allowForeignAddresses: true))
        let link = serverInsideLink(nat)
        let sent = link.fromInside("227 Entering Passive Mode (192,0,2,11,195,80).\r\n", seq: insideISN + 1, ack: outsideISN + 1)
        let x = try #require(portFromCommas(sent.text))
        let data = nat.send(PacketBuilder.tcp(Net.server, 40404, Net.external, x, flags: TCPFlag.syn, seq: 9), .inbound)
        #expect(TCPView.destinationAddress(data.packet) == IPv4Bytes(192, 0, 2, 11))
        #expect(TCPView.destinationPort(data.packet) == 50000)
    }

    @Test func theClientsCommandsAreNotRewrittenForAnInsideServer() {
        // PORT from an outside client names an outside address: nothing to do.
        let nat = FTPServerInsideTests.translator()
        let link = serverInsideLink(nat)
        let command = "PORT 198,51,100,5,19,137\r\n"
        let sent = link.fromOutside(command, seq: outsideISN + 1, ack: insideISN + 1)
        #expect(sent.text == command)
        #expect(TCPView.destinationAddress(sent.packet) == Net.client)
        #expect(nat.pendingExpectationCount == 0)
        #expect(nat.events(.refusedForeignAddress) == 0)
    }

    @Test func forwardedPort2121IsHelpedToo() throws {
        let nat = FTPServerInsideTests.translator()
        let link = serverInsideLink(nat, serverPort: 2121, externalPort: 2121)
        let sent = link.fromInside("227 Entering Passive Mode (192,0,2,10,195,80).\r\n", seq: insideISN + 1, ack: outsideISN + 1)
        #expect(sent.text.hasPrefix("227 Entering Passive Mode (203,0,113,1,"))
        #expect(nat.pendingExpectationCount == 1)
    }
}
