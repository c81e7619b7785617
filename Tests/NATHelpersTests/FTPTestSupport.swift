// Fixtures for the FTP helper tests: a translator with the helper on ports 21 and 2121, TCP
// connections driven packet by packet through it, and independent checks of what comes out.
// Only NATCore's public API is used (no @testable).

import NATCore
import NATHelpers
import NATTestKit
import Testing

/// The addresses of these tests: the kit's `TestNet` (one set of test addresses), with the
/// names these tests use.
typealias Net = TestNet

extension TestNet {
    static var client: IPv4Bytes { insideHost }
    static let otherHost = IPv4Bytes(192, 0, 2, 99)
    static var server: IPv4Bytes { outsideHost }
    static var stranger: IPv4Bytes { otherOutsideHost }
}

let t0 = TestNet.start

func makeFTPTranslator(
    helper: FTPHelper = FTPHelper(),
    _ configure: (inout NATConfiguration) -> Void = { _ in }
) -> NATTranslator {
    TestNet.translator(helpers: [HelperRegistration(helper: helper, ports: [21, 2121])], configure)
}

/// What the translator did with a packet, and the packet as it leaves: the kit's
/// `TranslatedPacket`, its verdict under the name these tests use (`kind`).
typealias Sent = TranslatedPacket

extension TranslatedPacket {
    var kind: Verdict { verdict }
}

extension NATTranslator {
    func send(_ packet: [UInt8], _ direction: PacketDirection, now: NATTime = t0) -> Sent {
        translate(packet, direction: direction, now: now)
    }

    func events(_ event: HelperEvent) -> UInt64 { counters.helperEvents(helper: 0, event) }
}

/// The kit's packet reader, under the name these tests use.
typealias TCPView = PacketReader

/// Independent checks of a packet that left the translator: lengths and both checksums.
func expectWellFormed(_ sent: Sent, sourceLocation: SourceLocation = #_sourceLocation) {
    let p = sent.packet
    #expect(Verify.totalLength(p) == p.count, "IP total length", sourceLocation: sourceLocation)
    #expect(Verify.ipHeaderChecksumValid(p), "IP header checksum", sourceLocation: sourceLocation)
    #expect(Verify.transportChecksumValid(p), "TCP checksum", sourceLocation: sourceLocation)
}

/// One TCP connection through the translator: the inside endpoint, the outside one, and the
/// external port the inside one appears as. The test keeps the sequence numbers itself.
struct Link {
    let nat: NATTranslator
    let inside: IPv4Bytes
    let insidePort: UInt16
    let outside: IPv4Bytes
    let outsidePort: UInt16
    var externalPort: UInt16

    static let dataFlags = TCPFlag.ack | TCPFlag.psh

    func fromInside(_ payload: [UInt8] = [], seq: UInt32, ack: UInt32 = 0, flags: UInt8 = Link.dataFlags,
                    options: [UInt8] = [], now: NATTime = t0) -> Sent {
        nat.send(PacketBuilder.tcp(inside, insidePort, outside, outsidePort, flags: flags, seq: seq, ack: ack,
                                   options: options, payload: payload), .outbound, now: now)
    }

    func fromOutside(_ payload: [UInt8] = [], seq: UInt32, ack: UInt32 = 0, flags: UInt8 = Link.dataFlags,
                     options: [UInt8] = [], now: NATTime = t0) -> Sent {
        nat.send(PacketBuilder.tcp(outside, outsidePort, Net.external, externalPort, flags: flags, seq: seq, ack: ack,
                                   options: options, payload: payload), .inbound, now: now)
    }

    func fromInside(_ text: String, seq: UInt32, ack: UInt32 = 0, options: [UInt8] = []) -> Sent {
        fromInside(Array(text.utf8), seq: seq, ack: ack, options: options)
    }

    func fromOutside(_ text: String, seq: UInt32, ack: UInt32 = 0, options: [UInt8] = []) -> Sent {
        fromOutside(Array(text.utf8), seq: seq, ack: ack, options: options)
    }
}

/// Initial sequence numbers: the inside endpoint's stream starts at `insideISN + 1`, the
/// outside one's at `outsideISN + 1`.
let insideISN: UInt32 = 1000
let outsideISN: UInt32 = 500_000

/// The server's greeting, which an FTP session starts with (FTPStreamCheck). The links send
/// it right after the handshake, numbered so that the server's stream goes on at
/// `ISN + 1` after it, as the tests count.
let greeting = "220 ready\r\n"
let greetingLength = UInt32(greeting.utf8.count)

/// A control connection from an inside client to `server:serverPort`, handshake and the
/// server's greeting done (`greet: false`: the handshake only).
func clientInsideLink(_ nat: NATTranslator, client: IPv4Bytes = Net.client, clientPort: UInt16 = 40000, server: IPv4Bytes = Net.server,
                      serverPort: UInt16 = 21, greet: Bool = true, sourceLocation: SourceLocation = #_sourceLocation) -> Link {
    var link = Link(nat: nat, inside: client, insidePort: clientPort, outside: server, outsidePort: serverPort, externalPort: 0)
    let syn = link.fromInside(seq: insideISN, flags: TCPFlag.syn)
    #expect(syn.kind == .rewritten, sourceLocation: sourceLocation)
    link.externalPort = TCPView.sourcePort(syn.packet)
    let serverISN = greet ? outsideISN &- greetingLength : outsideISN
    let synAck = link.fromOutside(seq: serverISN, ack: insideISN + 1, flags: TCPFlag.syn | TCPFlag.ack)
    #expect(synAck.kind == .rewritten, sourceLocation: sourceLocation)
    let ack = link.fromInside(seq: insideISN + 1, ack: serverISN + 1, flags: TCPFlag.ack)
    #expect(ack.kind == .rewritten, sourceLocation: sourceLocation)
    if greet {
        let hello = link.fromOutside(greeting, seq: serverISN + 1, ack: insideISN + 1)
        #expect(hello.isDelivered && hello.text == greeting, "\(hello.kind)", sourceLocation: sourceLocation)
    }
    return link
}

/// A control connection from an outside client to an inside server reached through a port
/// forward of `externalPort`, handshake done.
func serverInsideLink(_ nat: NATTranslator, client: IPv4Bytes = Net.server, clientPort: UInt16 = 50000,
                      server: IPv4Bytes = Net.client, serverPort: UInt16 = 21, externalPort: UInt16 = 21,
                      sourceLocation: SourceLocation = #_sourceLocation) -> Link {
    let link = Link(nat: nat, inside: server, insidePort: serverPort, outside: client, outsidePort: clientPort, externalPort: externalPort)
    let syn = link.fromOutside(seq: outsideISN, flags: TCPFlag.syn)
    #expect(syn.kind == .rewritten, sourceLocation: sourceLocation)
    #expect(TCPView.destinationAddress(syn.packet) == server, sourceLocation: sourceLocation)
    let serverISN = insideISN &- greetingLength
    let synAck = link.fromInside(seq: serverISN, ack: outsideISN + 1, flags: TCPFlag.syn | TCPFlag.ack)
    #expect(synAck.kind == .rewritten, sourceLocation: sourceLocation)
    let ack = link.fromOutside(seq: outsideISN + 1, ack: serverISN + 1, flags: TCPFlag.ack)
    #expect(ack.kind == .rewritten, sourceLocation: sourceLocation)
    let hello = link.fromInside(greeting, seq: serverISN + 1, ack: outsideISN + 1)
    #expect(hello.isDelivered && hello.text == greeting, "\(hello.kind)", sourceLocation: sourceLocation)
    return link
}

/// The port in "…,p1,p2" at the end of a rewritten PORT or 227 argument.
func portFromCommas(_ text: String) -> UInt16? {
    let digitsAndCommas = text.split(whereSeparator: { !($0.isNumber || $0 == ",") }).filter { $0.contains(",") }
    guard let numbers = digitsAndCommas.last?.split(separator: ",").compactMap({ UInt16($0) }), numbers.count == 6 else { return nil }
    return numbers[4] << 8 | numbers[5]
}

func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }

/// Sends each line from the inside end in its own segment and checks it leaves unchanged; returns the next
/// sequence number.
@discardableResult
func sendUnchanged(_ link: Link, _ lines: [String], seq start: UInt32 = insideISN + 1,
                   sourceLocation: SourceLocation = #_sourceLocation) -> UInt32 {
    var seq = start
    for line in lines {
        let sent = link.fromInside(line, seq: seq, ack: outsideISN + 1)
        seq += UInt32(line.utf8.count)
        #expect(sent.payload == bytes(line), "\(line.debugDescription)", sourceLocation: sourceLocation)
        expectWellFormed(sent, sourceLocation: sourceLocation)
    }
    return seq
}

/// The byte stream the peer receives: each output payload placed at its sequence number
/// (overlaps must agree, and nothing may be missing).
func reassembledBytes(_ outputs: [Sent], from start: UInt32, sourceLocation: SourceLocation = #_sourceLocation) throws -> [UInt8] {
    var stream: [UInt8?] = []
    for sent in outputs {
        let offset = Int(sent.seq &- start)
        let payload = sent.payload
        if stream.count < offset + payload.count { stream += [UInt8?](repeating: nil, count: offset + payload.count - stream.count) }
        for (i, byte) in payload.enumerated() {
            if let old = stream[offset + i] {
                #expect(old == byte, "overlapping bytes differ at \(offset + i)", sourceLocation: sourceLocation)
            }
            stream[offset + i] = byte
        }
    }
    return try stream.map { try #require($0, "missing byte", sourceLocation: sourceLocation) }
}

/// `reassembledBytes` as UTF-8 text.
func reassemble(_ outputs: [Sent], from start: UInt32, sourceLocation: SourceLocation = #_sourceLocation) throws -> String {
    String(decoding: try reassembledBytes(outputs, from: start, sourceLocation: sourceLocation), as: UTF8.self)
}

/// Lines with their terminators, split at "\n" bytes (a String splits "\r\n" as one character).
func lines(_ text: String) -> [String] {
    var result: [String] = []
    var current: [UInt8] = []
    for byte in text.utf8 {
        current.append(byte)
        if byte == UInt8(ascii: "\n") {
            result.append(String(decoding: current, as: UTF8.self))
            current = []
        }
    }
    if !current.isEmpty { result.append(String(decoding: current, as: UTF8.self)) }
    return result
}
