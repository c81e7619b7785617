// Fixtures for the IRC DCC helper tests: a translator with the helper on port 6667, an IRC
// connection from an inside client, DCC lines, and independent checks of what comes out.
// Builds on the FTP tests' support (PacketBuilder, RefChecksum, Link, Sent, TCPView, the handshake,
// expectWellFormed, reassembly); only NATCore's public API is used (no @testable).

import NATCore
import NATHelpers
import NATTestKit
import Testing

enum IRCNet {
    /// 192.0.2.26: 3221226010 as a DCC address.
    static let client = IPv4Bytes(192, 0, 2, 26)
    static let clientInteger: UInt32 = 3_221_226_010
    /// 203.0.113.1 as a DCC address.
    static let externalInteger: UInt32 = 3_405_803_777
    static let otherInside = IPv4Bytes(192, 0, 2, 99)
    static let server = IPv4Bytes(198, 51, 100, 5)
    /// DCC peers: other IRC users, anywhere.
    static let peer = IPv4Bytes(198, 51, 100, 77)
    static let otherPeer = IPv4Bytes(198, 51, 100, 209) // unicast: a multicast source is a martian
    static let ircPort: UInt16 = 6667
}

func makeIRCTranslator(
    helper: IRCHelper = IRCHelper(),
    _ configure: (inout NATConfiguration) -> Void = { _ in }
) -> NATTranslator {
    TestNet.translator(helpers: [HelperRegistration(helper: helper, ports: [.tcp(IRCNet.ircPort)])], configure)
}

/// An IRC connection from the inside client to the server, handshake done. The client's
/// stream starts at `insideISN + 1`, the server's at `outsideISN + 1`.
func ircLink(_ nat: NATTranslator, client: IPv4Bytes = IRCNet.client, clientPort: UInt16 = 40000,
             serverPort: UInt16 = IRCNet.ircPort, sourceLocation: SourceLocation = #_sourceLocation) -> Link {
    clientInsideLink(nat, client: client, clientPort: clientPort, server: IRCNet.server, serverPort: serverPort, greet: false,
                     sourceLocation: sourceLocation)
}

/// A CTCP DCC line: `PRIVMSG bob :\x01DCC <body>\x01\r\n`.
func dccLine(_ body: String, command: String = "PRIVMSG", target: String = "bob", terminator: String = "\r\n") -> String {
    "\(command) \(target) :\u{01}DCC \(body)\u{01}\(terminator)"
}

/// The port written after `address` and a space in a rewritten line.
func portAfter(_ address: String, in text: String) -> UInt16? {
    guard let range = text.firstRange(of: address + " ") else { return nil }
    let digits = text[range.upperBound...].prefix { $0.isASCII && $0.isNumber }
    return UInt16(digits)
}

/// Sends a SYN from `from` to the external address's `port`; returns what leaves.
func dialExternal(_ nat: NATTranslator, from: IPv4Bytes, port: UInt16, sourcePort: UInt16 = 33333, seq: UInt32 = 7) -> Sent {
    nat.send(PacketBuilder.tcp(from, sourcePort, Net.external, port, flags: TCPFlag.syn, seq: seq), .inbound)
}

/// Checks that a SYN from `from` to the external `port` reaches the inside `to:toPort`.
func expectAdmitted(_ nat: NATTranslator, from: IPv4Bytes, port: UInt16, to: IPv4Bytes, toPort: UInt16,
                    sourceLocation: SourceLocation = #_sourceLocation) {
    let sent = dialExternal(nat, from: from, port: port)
    #expect(sent.kind == .rewritten, sourceLocation: sourceLocation)
    guard sent.kind == .rewritten else { return }
    expectWellFormed(sent, sourceLocation: sourceLocation)
    #expect(TCPView.sourceAddress(sent.packet) == from, sourceLocation: sourceLocation)
    #expect(TCPView.destinationAddress(sent.packet) == to, sourceLocation: sourceLocation)
    #expect(TCPView.destinationPort(sent.packet) == toPort, sourceLocation: sourceLocation)
}

/// Checks that a SYN from `from` to the external `port` is not let in (it is left to the
/// router's own stack, unchanged).
func expectNotAdmitted(_ nat: NATTranslator, from: IPv4Bytes, port: UInt16, sourceLocation: SourceLocation = #_sourceLocation) {
    let packet = PacketBuilder.tcp(from, 33334, Net.external, port, flags: TCPFlag.syn, seq: 9)
    let sent = nat.send(packet, .inbound)
    #expect(sent.kind == .accept, sourceLocation: sourceLocation)
    #expect(sent.packet == packet, sourceLocation: sourceLocation)
}
