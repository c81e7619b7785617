// NAT slipstreaming against the FTP helper (issue #20 item 4): a web page makes a browser on
// the LAN POST to attacker:2121, a port the helper follows, with a PORT line for every LAN
// address in the body; the one naming the browser's host would open a way in to it. The
// helper only parses a stream that looks like FTP (FTPStreamCheck). Public API only.

import NATCore
import NATHelpers
import NATTestKit
import Testing

@Suite struct FTPSlipstreamTests {
    /// 254 PORT lines, one per address of 192.0.2.0/24, each offering port 8080.
    static let body = (1...254).map { "PORT 192,0,2,\($0),31,144\r\n" }.joined()

    /// Sends `text` from inside in segments of at most 1400 bytes; every one must leave unchanged.
    static func sendUnchanged(_ link: Link, _ text: String, seq: inout UInt32, sourceLocation: SourceLocation = #_sourceLocation) {
        var rest = Array(text.utf8)[...]
        while !rest.isEmpty {
            let piece = Array(rest.prefix(1400))
            rest = rest.dropFirst(piece.count)
            let sent = link.fromInside(piece, seq: seq, ack: outsideISN + 1)
            seq += UInt32(piece.count)
            #expect(sent.isDelivered && sent.payload == piece, sourceLocation: sourceLocation)
            expectWellFormed(sent, sourceLocation: sourceLocation)
        }
    }

    static func expectNothingOpened(_ nat: NATTranslator, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(nat.events(.rewrite) == 0 && nat.events(.expectation) == 0, sourceLocation: sourceLocation)
        #expect(nat.pendingExpectationCount == 0, sourceLocation: sourceLocation)
        // The attacker dialling the victim's advertised port is not let in.
        let dial = nat.send(PacketBuilder.tcp(Net.server, 40404, Net.external, 8080, flags: TCPFlag.syn, seq: 9), .inbound)
        #expect(dial.kind == .accept, "an inbound SYN to 8080 must go to the router's stack, not inside", sourceLocation: sourceLocation)
    }

    @Test(arguments: ["POST /upload HTTP/1.1", "USER /upload HTTP/1.1"]) // a custom fetch() method shaped like a command
    func anHTTPPostFullOfPORTLinesOpensNothing(requestLine: String) {
        let nat = makeFTPTranslator()
        // The worst case: the attacker's server greets like FTP at once.
        let link = clientInsideLink(nat, serverPort: 2121)
        var seq = insideISN + 1
        let request = "\(requestLine)\r\nHost: 198.51.100.5:2121\r\nContent-Type: text/plain\r\nContent-Length: \(Self.body.utf8.count)\r\n\r\n"
        Self.sendUnchanged(link, request + Self.body, seq: &seq)
        #expect(nat.events(.abandoned) == 1 && nat.events(.refusedForeignAddress) == 0)
        Self.expectNothingOpened(nat)
    }

    @Test func aClientThatSpeaksBeforeTheGreetingIsNotFTP() {
        let nat = makeFTPTranslator()
        let link = clientInsideLink(nat, serverPort: 2121, greet: false)
        var seq = insideISN + 1
        Self.sendUnchanged(link, "PORT 192,0,2,10,31,144\r\n", seq: &seq)
        let greeting = link.fromOutside("220 hello\r\n", seq: outsideISN + 1, ack: seq)
        #expect(greeting.isDelivered)
        Self.sendUnchanged(link, "PORT 192,0,2,10,31,144\r\n", seq: &seq)
        #expect(nat.events(.abandoned) == 1)
        Self.expectNothingOpened(nat)
    }

    @Test(arguments: ["HTTP/1.1 200 OK\r\n", "530 go away\r\n", "22"])
    func aServerThatDoesNotGreetWith220IsNotFTP(first: String) {
        let nat = makeFTPTranslator()
        let link = clientInsideLink(nat, serverPort: 2121, greet: false)
        let sent = link.fromOutside(first, seq: outsideISN + 1, ack: insideISN + 1)
        var seq = insideISN + 1
        if first == "22" {
            // Too short to tell: held until the rest comes, which is not a greeting.
            #expect(sent.payload.isEmpty)
            let rest = link.fromOutside("1 x\r\n", seq: outsideISN + 3, ack: insideISN + 1)
            #expect(rest.text == "221 x\r\n")
        } else {
            #expect(sent.text == first)
        }
        #expect(nat.events(.abandoned) == 1)
        Self.sendUnchanged(link, "PORT 192,0,2,10,31,144\r\n", seq: &seq)
        Self.expectNothingOpened(nat)
    }

    /// The first PORT naming another host ends the parsing: the victim's own line after it
    /// (a page does not know which of the 254 is the victim) opens nothing.
    @Test func theFirstForeignAddressEndsTheSession() {
        let nat = makeFTPTranslator()
        let link = clientInsideLink(nat, serverPort: 2121)
        var seq = insideISN + 1
        Self.sendUnchanged(link, "USER anonymous\r\nPORT 192,0,2,9,31,144\r\nPORT 192,0,2,10,31,144\r\n", seq: &seq)
        #expect(nat.events(.refusedForeignAddress) == 1 && nat.events(.abandoned) == 1)
        Self.expectNothingOpened(nat)
    }

    /// The control: a real session's greeting (here multi-line, cut after its first byte),
    /// its commands and its PORT: rewritten, the server's data connection let in.
    @Test func aRealSessionIsStillHelped() throws {
        let nat = makeFTPTranslator()
        let link = clientInsideLink(nat, serverPort: 2121, greet: false)
        let first = link.fromOutside("2", seq: outsideISN + 1, ack: insideISN + 1)
        #expect(first.payload.isEmpty) // held: one byte says nothing yet
        let greeting = "220-Welcome\r\n220 ready\r\n"
        let rest = link.fromOutside(Array(greeting.utf8.dropFirst()), seq: outsideISN + 2, ack: insideISN + 1)
        #expect(rest.text == greeting)
        let serverNext = outsideISN + 1 + UInt32(greeting.utf8.count)
        var seq = insideISN + 1
        for command in ["USER anonymous\r\n", "PASS x@\r\n", "TYPE I\r\n"] {
            let sent = link.fromInside(command, seq: seq, ack: serverNext)
            seq += UInt32(command.utf8.count)
            #expect(sent.text == command)
        }
        let port = link.fromInside("PORT 192,0,2,10,31,144\r\n", seq: seq, ack: serverNext)
        let external = try #require(portFromCommas(port.text))
        #expect(port.text == "PORT 203,0,113,1,\(external >> 8),\(external & 0xff)\r\n")
        expectWellFormed(port)
        #expect(nat.events(.rewrite) == 1 && nat.events(.abandoned) == 0)
        let data = nat.send(PacketBuilder.tcp(Net.server, 20, Net.external, external, flags: TCPFlag.syn, seq: 9), .inbound)
        #expect(data.kind == .rewritten && TCPView.destinationAddress(data.packet) == Net.client && TCPView.destinationPort(data.packet) == 8080)
    }
}
