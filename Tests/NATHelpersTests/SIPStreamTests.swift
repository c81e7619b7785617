// The SIP helper over TCP: messages framed by Content-Length in the stream, rewritten one by
// one; a message split across segments held until whole; one too long to hold passed
// unedited and skipped by its length; a stream that cannot be framed left alone. The core
// shifts sequence numbers by what the edits changed; the expected stream text is built
// independently and compared whole.

import NATCore
import NATHelpers
import NATTestKit
import Testing

@Suite("SIP helper over TCP")
struct SIPStreamTests {
    static func translator() -> NATTranslator {
        var configuration = NATConfiguration(externalAddress: Net.external.address, internalPrefixes: [IPv4Prefix("192.0.2.0/24")!])
        configuration.maxSessions = 256
        configuration.maxMappings = 256
        configuration.helpers = [HelperRegistration(helper: SIPHelper(), ports: [.udp(5060), .tcp(5060)])]
        return NATTranslator(configuration: configuration)
    }

    static func text(_ bytes: [UInt8]) -> String { String(decoding: bytes, as: UTF8.self) }

    /// The REGISTER of SIPHelperTests as the phone sends it, and as it must leave.
    static let register = SIPHelperTests.register(from: "192.0.2.10", port: 40000)
    static let registerOut = Array(text(register).replacing("192.0.2.10:40000", with: "203.0.113.1:40000").utf8)

    @Test("two messages in one segment and a third in the next: each rewritten, Content-Length fixed, sequence numbers shifted")
    func messagesInARow() {
        let nat = Self.translator()
        let link = clientInsideLink(nat, serverPort: 5060, greet: false)
        #expect(link.externalPort == 40000)
        var seq = insideISN + 1
        let first = link.fromInside(Self.register + Array("\r\n\r\n".utf8) + Self.register, seq: seq, ack: outsideISN + 1)
        expectWellFormed(first)
        #expect(first.payload == Self.registerOut + Array("\r\n\r\n".utf8) + Self.registerOut)
        // Same length ("192.0.2.10" → "203.0.113.1" is +1 byte, twice per message): +4 in all.
        #expect(first.seq == seq)
        seq += UInt32(Self.register.count * 2 + 4)
        // The registrar acknowledges both (in the numbers it saw): their edits leave the log.
        let acked = link.fromOutside(seq: outsideISN + 1, ack: insideISN + 1 + UInt32(Self.registerOut.count * 2 + 4), flags: TCPFlag.ack)
        #expect(acked.ack == seq)
        let invite = SIPHelperTests.invite(from: "192.0.2.10", port: 40000, media: 4000)
        let second = link.fromInside(invite, seq: seq, ack: outsideISN + 1)
        expectWellFormed(second)
        #expect(second.seq == seq &+ 4)
        let body = SIPHelperTests.sdp("203.0.113.1", port: 4000)
        let expected = SIPHelperTests.message(["INVITE sip:bob@example.com SIP/2.0", "Via: SIP/2.0/UDP 203.0.113.1:40000;branch=z9hG4bK1",
                                               "From: \"Alice\" <sip:alice@example.com>;tag=1", "To: <sip:bob@example.com>",
                                               "Call-ID: a84b4c76e66710@192.0.2.10", "CSeq: 314159 INVITE",
                                               "Contact: <sip:alice@203.0.113.1:40000>", "Content-Type: application/sdp"], body: body)
        #expect(Self.text(second.payload) == Self.text(expected))
        #expect(nat.events(.rewrite) == 3 && nat.pendingExpectationCount == 2)
        // The server's ACK of everything, in the shifted numbers, maps back to the phone's.
        let ack = link.fromOutside(seq: outsideISN + 1, ack: seq &+ 4 &+ UInt32(expected.count), flags: TCPFlag.ack)
        #expect(ack.ack == seq &+ UInt32(invite.count))
    }

    @Test("a message split across two segments is held, then sent rewritten whole")
    func splitMessageIsHeld() {
        let nat = Self.translator()
        let link = clientInsideLink(nat, serverPort: 5060, greet: false)
        let cut = 120
        let first = link.fromInside(Array(Self.register[0..<cut]), seq: insideISN + 1, ack: outsideISN + 1)
        #expect(first.payload.isEmpty)
        let second = link.fromInside(Array(Self.register[cut...]), seq: insideISN + 1 + UInt32(cut), ack: outsideISN + 1)
        expectWellFormed(second)
        #expect(second.seq == insideISN + 1)
        #expect(second.payload == Self.registerOut)
    }

    @Test("a message too long to hold passes unedited and is skipped by its length; the next one is rewritten")
    func tooLongToHold() {
        let nat = Self.translator()
        let link = clientInsideLink(nat, serverPort: 5060, greet: false)
        // Its headers are whole in the first segment (so its length is known), its body is not.
        let long = SIPHelperTests.message(["OPTIONS sip:b@example.com SIP/2.0", "Via: SIP/2.0/UDP 192.0.2.10:40000;branch=z9hG4bK5"],
                                          body: String(repeating: "b", count: 900))
        let cut = 600 // more than the 512 bytes the core holds per direction
        var seq = insideISN + 1
        let part1 = link.fromInside(Array(long[0..<cut]), seq: seq, ack: outsideISN + 1)
        #expect(part1.payload == Array(long[0..<cut]))
        seq += UInt32(cut)
        let part2 = link.fromInside(Array(long[cut...]) + Self.register, seq: seq, ack: outsideISN + 1)
        #expect(part2.payload == Array(long[cut...]) + Self.registerOut)
        #expect(nat.events(.limit) == 1 && nat.events(.rewrite) == 1)
    }

    @Test("a message whose headers are longer than the core holds cannot be framed: counted, and the stream left alone")
    func headersTooLongToHold() {
        let nat = Self.translator()
        let link = clientInsideLink(nat, serverPort: 5060, greet: false)
        let padding = (0..<12).map { "X-Padding-\($0): " + String(repeating: "p", count: 60) }
        let long = SIPHelperTests.message(["OPTIONS sip:b@example.com SIP/2.0", "Via: SIP/2.0/UDP 192.0.2.10:40000;branch=z9hG4bK5"] + padding)
        let part1 = link.fromInside(Array(long[0..<600]), seq: insideISN + 1, ack: outsideISN + 1)
        #expect(part1.payload == Array(long[0..<600]))
        let part2 = link.fromInside(Array(long[600...]) + Self.register, seq: insideISN + 601, ack: outsideISN + 1)
        #expect(part2.payload == Array(long[600...]) + Self.register)
        #expect(nat.events(.limit) == 1 && nat.events(.rewrite) == 0)
    }

    @Test("a stream without Content-Length cannot be framed: counted, and left alone from then on")
    func noContentLength() {
        let nat = Self.translator()
        let link = clientInsideLink(nat, serverPort: 5060, greet: false)
        let bare = SIPHelperTests.message(["OPTIONS sip:b@example.com SIP/2.0", "Via: SIP/2.0/UDP 192.0.2.10:40000;branch=z9hG4bK6"],
                                          contentLength: false)
        let first = link.fromInside(bare, seq: insideISN + 1, ack: outsideISN + 1)
        #expect(first.payload == bare)
        let later = link.fromInside(Self.register, seq: insideISN + 1 + UInt32(bare.count), ack: outsideISN + 1)
        #expect(later.payload == Self.register)
        #expect(nat.events(.malformed) == 1 && nat.events(.rewrite) == 0)
    }

    @Test("the registrar's responses and a call over the same connection restore the phone's endpoint")
    func fromOutsideOverTCP() {
        let nat = Self.translator()
        let link = clientInsideLink(nat, serverPort: 5060, greet: false)
        _ = link.fromInside(Self.register, seq: insideISN + 1, ack: outsideISN + 1)
        let invite = SIPHelperTests.message(["INVITE sip:alice@203.0.113.1:40000;transport=tcp SIP/2.0",
                                             "Via: SIP/2.0/TCP 198.51.100.5:5060;branch=z9hG4bKp", "From: <sip:bob@example.com>;tag=b",
                                             "To: <sip:alice@example.com>", "Call-ID: c2", "CSeq: 1 INVITE"])
        let delivered = link.fromOutside(invite, seq: outsideISN + 1, ack: insideISN + 1 + UInt32(Self.register.count) + 2)
        expectWellFormed(delivered)
        #expect(Self.text(delivered.payload) == Self.text(invite).replacing("203.0.113.1:40000", with: "192.0.2.10:40000"))
    }
}
