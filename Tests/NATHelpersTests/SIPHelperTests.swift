// The SIP helper on crafted datagrams: a phone inside (192.0.2.10) registers at a registrar
// outside (198.51.100.5), calls out and is called, with SDP. Every expected packet is the
// expected SIP text built independently into a datagram (PacketBuilder's reference
// checksums) and compared whole, so lengths, Content-Length and checksums are all checked.

import NATCore
import NATHelpers
import NATTestKit
import Testing

@Suite("SIP helper")
struct SIPHelperTests {
    static let phone2 = IPv4Bytes(192, 0, 2, 11)

    static func translator() -> NATTranslator {
        TestNet.translator(helpers: [HelperRegistration(helper: SIPHelper(), ports: [.udp(5060)])]) {
            $0.maxSessions = 256
            $0.maxMappings = 256
        }
    }

    /// Header lines joined with CR LF, an empty line, then the body (Content-Length added when asked).
    static func message(_ lines: [String], body: String = "", contentLength: Bool = true) -> [UInt8] {
        var all = lines
        if contentLength { all.append("Content-Length: \(body.utf8.count)") }
        return Array((all.joined(separator: "\r\n") + "\r\n\r\n" + body).utf8)
    }

    static func sdp(_ address: String, port: Int, rtcp: String? = nil) -> String {
        var lines = ["v=0", "o=alice 2890844526 2890844526 IN IP4 \(address)", "s=-", "c=IN IP4 \(address)", "t=0 0",
                     "m=audio \(port) RTP/AVP 0 8", "a=rtpmap:0 PCMU/8000"]
        if let rtcp { lines.append("a=rtcp:\(rtcp)") }
        return lines.joined(separator: "\r\n") + "\r\n"
    }

    static func register(from host: String, port: Int = 5060) -> [UInt8] {
        message(["REGISTER sip:example.com SIP/2.0", "Via: SIP/2.0/UDP \(host):\(port);branch=z9hG4bK776;rport",
                 "Max-Forwards: 70", "From: <sip:alice@example.com>;tag=456", "To: <sip:alice@example.com>",
                 "Call-ID: 843817637684230@\(host)", "CSeq: 1 REGISTER", "Contact: <sip:alice@\(host):\(port)>;expires=3600"])
    }

    static func invite(from host: String, port: Int = 5060, media: Int, rtcp: String? = nil) -> [UInt8] {
        let body = sdp(host, port: media, rtcp: rtcp)
        return message(["INVITE sip:bob@example.com SIP/2.0", "Via: SIP/2.0/UDP \(host):\(port);branch=z9hG4bK1",
                        "From: \"Alice\" <sip:alice@example.com>;tag=1", "To: <sip:bob@example.com>", "Call-ID: a84b4c76e66710@\(host)",
                        "CSeq: 314159 INVITE", "Contact: <sip:alice@\(host):\(port)>", "Content-Type: application/sdp"], body: body)
    }

    static func udp(_ from: IPv4Bytes, _ fromPort: UInt16, _ to: IPv4Bytes, _ toPort: UInt16, _ payload: [UInt8]) -> [UInt8] {
        PacketBuilder.udp(from, fromPort, to, toPort, payload: payload)
    }

    @Test("REGISTER: Via sent-by and Contact name the WAN endpoint; the AOR in From/To and the Call-ID are left alone")
    func registerIsRewritten() {
        let nat = Self.translator()
        let out = nat.send(Self.udp(Net.client, 5060, Net.server, 5060, Self.register(from: "192.0.2.10")), .outbound)
        #expect(out.kind == .replaced)
        let expected = Self.message(["REGISTER sip:example.com SIP/2.0", "Via: SIP/2.0/UDP 203.0.113.1:5060;branch=z9hG4bK776;rport",
                                     "Max-Forwards: 70", "From: <sip:alice@example.com>;tag=456", "To: <sip:alice@example.com>",
                                     "Call-ID: 843817637684230@192.0.2.10", "CSeq: 1 REGISTER",
                                     "Contact: <sip:alice@203.0.113.1:5060>;expires=3600"])
        #expect(out.packet == Self.udp(Net.external, 5060, Net.server, 5060, expected))
        #expect(nat.events(.rewrite) == 1)

        // The registrar's 200 OK names the WAN endpoint in Via: the phone gets its own back.
        let ok = Self.message(["SIP/2.0 200 OK", "Via: SIP/2.0/UDP 203.0.113.1:5060;branch=z9hG4bK776;rport=5060;received=203.0.113.1",
                               "From: <sip:alice@example.com>;tag=456", "To: <sip:alice@example.com>;tag=99",
                               "Call-ID: 843817637684230@192.0.2.10", "CSeq: 1 REGISTER", "Contact: <sip:alice@203.0.113.1:5060>;expires=3600"])
        let back = nat.send(Self.udp(Net.server, 5060, Net.external, 5060, ok), .inbound)
        let restored = Self.message(["SIP/2.0 200 OK", "Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK776;rport=5060;received=203.0.113.1",
                                     "From: <sip:alice@example.com>;tag=456", "To: <sip:alice@example.com>;tag=99",
                                     "Call-ID: 843817637684230@192.0.2.10", "CSeq: 1 REGISTER", "Contact: <sip:alice@203.0.113.1:5060>;expires=3600"])
        #expect(back.packet == Self.udp(Net.server, 5060, Net.client, 5060, restored))
    }

    @Test("INVITE with SDP: o=, c=, m= and a=rtcp follow the mapping; Content-Length is fixed; RTP and RTCP come back in")
    func inviteWithMedia() {
        let nat = Self.translator()
        let out = nat.send(Self.udp(Net.client, 5060, Net.server, 5060, Self.invite(from: "192.0.2.10", media: 4000, rtcp: "4001")), .outbound)
        // The internal pair 4000/4001 was free, so it is kept: only the addresses change.
        let body = Self.sdp("203.0.113.1", port: 4000, rtcp: "4001")
        let expected = Self.message(["INVITE sip:bob@example.com SIP/2.0", "Via: SIP/2.0/UDP 203.0.113.1:5060;branch=z9hG4bK1",
                                     "From: \"Alice\" <sip:alice@example.com>;tag=1", "To: <sip:bob@example.com>",
                                     "Call-ID: a84b4c76e66710@192.0.2.10", "CSeq: 314159 INVITE", "Contact: <sip:alice@203.0.113.1:5060>",
                                     "Content-Type: application/sdp"], body: body)
        #expect(out.packet == Self.udp(Net.external, 5060, Net.server, 5060, expected))
        #expect(nat.pendingExpectationCount == 2 && nat.events(.expectation) == 2)
        // Media from the signalling peer, on the pair, from any of its ports.
        let rtp = nat.send(PacketBuilder.udp(Net.server, 30000, Net.external, 4000), .inbound)
        #expect(rtp.packet == PacketBuilder.udp(Net.server, 30000, Net.client, 4000))
        let rtcp = nat.send(PacketBuilder.udp(Net.server, 30001, Net.external, 4001), .inbound)
        #expect(rtcp.packet == PacketBuilder.udp(Net.server, 30001, Net.client, 4001))
    }

    @Test("two phones with the same signalling and media ports: the second gets other external ports, named in its message")
    func twoPhonesSamePorts() {
        let nat = Self.translator()
        _ = nat.send(Self.udp(Net.client, 5060, Net.server, 5060, Self.invite(from: "192.0.2.10", media: 4000)), .outbound)
        let second = nat.send(Self.udp(Self.phone2, 5060, Net.server, 5060, Self.invite(from: "192.0.2.11", media: 4000)), .outbound)
        expectWellFormed(second)
        let signalling = Verify.be16(second.packet, 20)
        let text = String(decoding: PacketReader.payload(second.packet), as: UTF8.self)
        #expect(signalling != 5060)
        #expect(text.contains("Via: SIP/2.0/UDP 203.0.113.1:\(signalling);branch") && text.contains("<sip:alice@203.0.113.1:\(signalling)>"))
        let mediaLine = text.split(separator: "\r\n").first { $0.hasPrefix("m=audio ") }!
        let media = UInt16(mediaLine.split(separator: " ")[1])!
        #expect(media != 4000 && media % 2 == 0)
        // The Content-Length is the body's real length.
        let payload = PacketReader.payload(second.packet)
        let bodyStart = (0..<(payload.count - 3)).first { payload[$0..<($0 + 4)] == [13, 10, 13, 10] }! + 4
        #expect(text.contains("Content-Length: \(payload.count - bodyStart)\r\n"))
        // Each phone's media reaches that phone.
        #expect(nat.send(PacketBuilder.udp(Net.server, 30000, Net.external, 4000), .inbound).packet
                == PacketBuilder.udp(Net.server, 30000, Net.client, 4000))
        #expect(nat.send(PacketBuilder.udp(Net.server, 30002, Net.external, media), .inbound).packet
                == PacketBuilder.udp(Net.server, 30002, Self.phone2, 4000))
        // And the second phone's own RTP leaves from its mapped port.
        #expect(nat.send(PacketBuilder.udp(Self.phone2, 4000, Net.server, 30002), .outbound).packet
                == PacketBuilder.udp(Net.external, media, Net.server, 30002))
    }

    @Test("a call from outside: the INVITE to the registered Contact reaches the phone with its own Request-URI; its answer's media is expected from the caller's media address")
    func callFromOutside() {
        let nat = Self.translator()
        _ = nat.send(Self.udp(Net.client, 5060, Net.server, 5060, Self.register(from: "192.0.2.10")), .outbound)
        let caller = IPv4Bytes(198, 51, 100, 77) // the caller's media host, not the registrar
        let inviteBody = Self.sdp("198.51.100.77", port: 20000)
        func incoming(_ uri: String) -> [UInt8] {
            Self.message(["INVITE sip:alice@\(uri) SIP/2.0", "Via: SIP/2.0/UDP 198.51.100.5:5060;branch=z9hG4bKp1",
                          "From: <sip:bob@example.com>;tag=b1", "To: <sip:alice@\(uri)>", "Call-ID: c1@198.51.100.5", "CSeq: 1 INVITE",
                          "Contact: <sip:bob@198.51.100.5:5060>", "Content-Type: application/sdp"], body: inviteBody)
        }
        let delivered = nat.send(Self.udp(Net.server, 5060, Net.external, 5060, incoming("203.0.113.1:5060")), .inbound)
        #expect(delivered.packet == Self.udp(Net.server, 5060, Net.client, 5060, incoming("192.0.2.10:5060")))

        // The phone answers with its media on 6000: expected from the caller's media host.
        let answer = Self.message(["SIP/2.0 200 OK", "Via: SIP/2.0/UDP 198.51.100.5:5060;branch=z9hG4bKp1",
                                   "From: <sip:bob@example.com>;tag=b1", "To: <sip:alice@192.0.2.10:5060>;tag=a1", "Call-ID: c1@198.51.100.5",
                                   "CSeq: 1 INVITE", "Contact: <sip:alice@192.0.2.10:5060>", "Content-Type: application/sdp"],
                                  body: Self.sdp("192.0.2.10", port: 6000))
        let sent = nat.send(Self.udp(Net.client, 5060, Net.server, 5060, answer), .outbound)
        let expected = Self.message(["SIP/2.0 200 OK", "Via: SIP/2.0/UDP 198.51.100.5:5060;branch=z9hG4bKp1",
                                     "From: <sip:bob@example.com>;tag=b1", "To: <sip:alice@203.0.113.1:5060>;tag=a1", "Call-ID: c1@198.51.100.5",
                                     "CSeq: 1 INVITE", "Contact: <sip:alice@203.0.113.1:5060>", "Content-Type: application/sdp"],
                                    body: Self.sdp("203.0.113.1", port: 6000))
        #expect(sent.packet == Self.udp(Net.external, 5060, Net.server, 5060, expected))
        #expect(nat.send(PacketBuilder.udp(caller, 20000, Net.external, 6000), .inbound).packet
                == PacketBuilder.udp(caller, 20000, Net.client, 6000))
        // The registrar's address was not the media source: nothing from it is expected on 6000.
        #expect(nat.send(PacketBuilder.udp(Net.server, 20000, Net.external, 6001), .inbound).kind == .accept)
    }

    @Test("the answer to an inside offer naming another media host: media from that host is expected too")
    func answerFromAnotherMediaHost() {
        let nat = Self.translator()
        _ = nat.send(Self.udp(Net.client, 5060, Net.server, 5060, Self.invite(from: "192.0.2.10", media: 4000)), .outbound)
        let gateway = IPv4Bytes(198, 51, 100, 80)
        let answer = Self.message(["SIP/2.0 200 OK", "Via: SIP/2.0/UDP 203.0.113.1:5060;branch=z9hG4bK1", "From: <sip:a@example.com>;tag=1",
                                   "To: <sip:b@example.com>;tag=2", "Call-ID: x", "CSeq: 314159 INVITE", "Content-Type: application/sdp"],
                                  body: Self.sdp("198.51.100.80", port: 7000))
        _ = nat.send(Self.udp(Net.server, 5060, Net.external, 5060, answer), .inbound)
        #expect(nat.send(PacketBuilder.udp(gateway, 7000, Net.external, 4000), .inbound).packet
                == PacketBuilder.udp(gateway, 7000, Net.client, 4000))
    }

    @Test("compact header names, folded lines and no Content-Length are read; only the phone's own endpoint is rewritten")
    func compactFoldedAndForeign() {
        let nat = Self.translator()
        let sent = Self.message(["OPTIONS sip:x@example.com SIP/2.0", "v: SIP/2.0/UDP\r\n 192.0.2.10:5060;branch=z9hG4bK2",
                                 "f: <sip:alice@192.0.2.10>;tag=3", "t: <sip:x@example.com>", "i: 77", "CSeq: 1 OPTIONS",
                                 "m: <sip:alice@198.51.100.200:5060>", "Contact: <sip:alice@192.0.2.99:5060>",
                                 "Contact: <sip:alice@192.0.2.10:5062>", "Contact: <sip:alice@phone.example.com>"], contentLength: false)
        let out = nat.send(Self.udp(Net.client, 5060, Net.server, 5060, sent), .outbound)
        let expected = Self.message(["OPTIONS sip:x@example.com SIP/2.0", "v: SIP/2.0/UDP\r\n 203.0.113.1:5060;branch=z9hG4bK2",
                                     "f: <sip:alice@203.0.113.1>;tag=3", "t: <sip:x@example.com>", "i: 77", "CSeq: 1 OPTIONS",
                                     "m: <sip:alice@198.51.100.200:5060>", "Contact: <sip:alice@192.0.2.99:5060>",
                                     "Contact: <sip:alice@192.0.2.10:5062>", "Contact: <sip:alice@phone.example.com>"], contentLength: false)
        #expect(out.packet == Self.udp(Net.external, 5060, Net.server, 5060, expected))
    }

    @Test("a compact Content-Length (l:) is fixed after the body grows")
    func compactContentLength() {
        let nat = Self.translator()
        let body = Self.sdp("192.0.2.10", port: 4000)
        let sent = Array(("INVITE sip:b@example.com SIP/2.0\r\nv: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK9\r\nl: \(body.utf8.count)\r\n"
                          + "c: application/sdp\r\n\r\n" + body).utf8)
        let out = nat.send(Self.udp(Net.client, 5060, Net.server, 5060, sent), .outbound)
        let newBody = Self.sdp("203.0.113.1", port: 4000)
        let expected = Array(("INVITE sip:b@example.com SIP/2.0\r\nv: SIP/2.0/UDP 203.0.113.1:5060;branch=z9hG4bK9\r\nl: \(newBody.utf8.count)\r\n"
                              + "c: application/sdp\r\n\r\n" + newBody).utf8)
        #expect(out.packet == Self.udp(Net.external, 5060, Net.server, 5060, expected))
    }

    static let malformed: [[UInt8]] = [
        Array("INVITE sip:b@example.com SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.10:5060\r\n".utf8),                  // no end of headers
        Array("INVITE sip:b@example.com SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.10\r\nContent-Length: x1\r\n\r\n".utf8), // not a number
        Array("INVITE sip:b@example.com SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.10\r\nContent-Length: 900\r\n\r\nv=0\r\n".utf8), // past the end
        Array("INVITE sip:b@example.com SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.10\r\nno colon here\r\n\r\n".utf8),
        Array(("OPTIONS sip:b@example.com SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.10\r\n"
               + String(repeating: "X-Pad: 1\r\n", count: 300) + "\r\n").utf8),                                        // too many lines
        Array("SIP/2.0 99 Too Low\r\nVia: SIP/2.0/UDP 203.0.113.1\r\n\r\n".utf8),                                       // bad status
    ]

    @Test("malformed SIP passes unchanged and is counted", arguments: SIPHelperTests.malformed)
    func malformedPassesUnchanged(payload: [UInt8]) {
        let nat = Self.translator()
        let out = nat.send(Self.udp(Net.client, 5060, Net.server, 5060, payload), .outbound)
        #expect(out.packet == Self.udp(Net.external, 5060, Net.server, 5060, payload))
        #expect(nat.events(.malformed) == 1 && nat.events(.rewrite) == 0)
    }

    @Test("keep-alives and non-SIP datagrams on the port pass uncounted")
    func notSIP() {
        let nat = Self.translator()
        for payload in [Array("\r\n\r\n".utf8), [0, 1, 0, 0, 0x21, 0x12, 0xa4, 0x42], [UInt8]()] {
            let out = nat.send(Self.udp(Net.client, 5060, Net.server, 5060, payload), .outbound)
            #expect(out.packet == Self.udp(Net.external, 5060, Net.server, 5060, payload))
        }
        #expect(nat.events(.malformed) == 0 && nat.events(.rewrite) == 0)
    }

    @Test("a message needing more edits than a datagram takes passes unchanged, counted as a limit")
    func tooManyEdits() {
        let nat = Self.translator()
        let many = (0..<(HelperLimits.editsPerDatagram + 1)).map { "Contact: <sip:a\($0)@192.0.2.10:5060>" }
        let payload = Self.message(["OPTIONS sip:b@example.com SIP/2.0"] + many)
        let out = nat.send(Self.udp(Net.client, 5060, Net.server, 5060, payload), .outbound)
        #expect(out.packet == Self.udp(Net.external, 5060, Net.server, 5060, payload))
        #expect(nat.events(.limit) == 1)
    }

    @Test("the parser: request and response start lines, body range, compact Content-Type")
    func parser() {
        let bytes = Array("SIP/2.0 180 Ringing\r\nl: 3\r\nc: Application/SDP; x=1\r\n\r\nv=0trailing".utf8)
        let parsed = bytes.withUnsafeBytes { SIPMessageParser.parse($0) }
        guard case .message(let message) = parsed else { Issue.record("\(parsed)"); return }
        #expect(message.startLine == .response(status: 180) && message.bodyIsSDP && message.body.count == 3)
        #expect(Array(bytes[message.body]) == Array("v=0".utf8))
        let request = Array("ACK sip:b@203.0.113.1:5070 SIP/2.0\r\n\r\n".utf8)
        guard case .message(let ack) = request.withUnsafeBytes({ SIPMessageParser.parse($0) }),
              case .request(let method, let uri) = ack.startLine else { Issue.record("ACK"); return }
        #expect(Array(request[method]) == Array("ACK".utf8) && Array(request[uri]) == Array("sip:b@203.0.113.1:5070".utf8))
    }
}
