// The TFTP helper (RFC 1350) on crafted datagrams: a client inside asks a server outside for
// a file (RRQ) or to store one (WRQ); the server answers from a new port, which only the
// helper's expectation lets in. Expected packets are built independently (PacketBuilder's
// reference checksums) and compared whole. Only NATCore's public API is used.

import NATCore
import NATHelpers
import NATTestKit
import Testing

@Suite("TFTP helper")
struct TFTPHelperTests {
    static func translator(helpers: Bool = true) -> NATTranslator {
        var configuration = NATConfiguration(externalAddress: Net.external.address, internalPrefixes: [IPv4Prefix("192.0.2.0/24")!])
        configuration.maxSessions = 64
        configuration.maxMappings = 64
        if helpers { configuration.helpers = [HelperRegistration(helper: TFTPHelper(), ports: [.udp(69)])] }
        return NATTranslator(configuration: configuration)
    }

    /// opcode, file name, 0, mode, 0, then options.
    static func request(_ opcode: UInt8, _ file: String, mode: String = "octet", options: [String] = []) -> [UInt8] {
        var bytes: [UInt8] = [0, opcode] + Array(file.utf8) + [0] + Array(mode.utf8) + [0]
        for option in options { bytes += Array(option.utf8) + [0] }
        return bytes
    }

    static let octet: [UInt8] = Array("octet".utf8)
    static let malformed: [[UInt8]] = [
        [0, 1],                                      // no file name
        [0, 1, 0] + octet + [0],                     // empty file name
        [0, 1, 102],                                 // file name not terminated
        [0, 2, 102, 0] + Array("binary".utf8) + [0], // unknown mode
        [0, 1, 102, 0] + octet,                      // mode not terminated
        [0],
    ]

    static let data1: [UInt8] = [0, 3, 0, 1] + Array("file contents".utf8)

    @Test("RRQ from inside: the DATA from the server's new port reaches the client; the client's ACK goes back to it", arguments: [1, 2])
    func requestOpensTheServersNewPort(opcode: UInt8) {
        let nat = Self.translator()
        let rrq = Self.request(opcode, "boot/pxelinux.0", options: ["blksize", "1428", "tsize", "0"])
        let out = nat.send(PacketBuilder.udp(Net.client, 40000, Net.server, 69, payload: rrq), .outbound)
        #expect(out.kind == .rewritten)
        #expect(out.packet == PacketBuilder.udp(Net.external, 40000, Net.server, 69, payload: rrq)) // nothing in TFTP names an address
        #expect(nat.pendingExpectationCount == 1 && nat.events(.expectation) == 1)

        // The server's transfer ID: a new port. DATA for a read, ACK 0 for a write.
        let answer: [UInt8] = opcode == 1 ? Self.data1 : [0, 4, 0, 0]
        let reply = nat.send(PacketBuilder.udp(Net.server, 50123, Net.external, 40000, payload: answer), .inbound)
        #expect(reply.kind == .rewritten)
        #expect(reply.packet == PacketBuilder.udp(Net.server, 50123, Net.client, 40000, payload: answer))
        #expect(nat.pendingExpectationCount == 0 && nat.counters[.expectationsFulfilled] == 1)
        let ack = nat.send(PacketBuilder.udp(Net.client, 40000, Net.server, 50123, payload: [0, 4, 0, 1]), .outbound)
        #expect(ack.packet == PacketBuilder.udp(Net.external, 40000, Net.server, 50123, payload: [0, 4, 0, 1]))
        let more = nat.send(PacketBuilder.udp(Net.server, 50123, Net.external, 40000, payload: [0, 3, 0, 2]), .inbound)
        #expect(more.packet == PacketBuilder.udp(Net.server, 50123, Net.client, 40000, payload: [0, 3, 0, 2]))
    }

    @Test("without the helper the server's answer from its new port is not let in (address-and-port-dependent filtering)")
    func withoutTheHelperTheAnswerIsRefused() {
        let nat = Self.translator(helpers: false)
        _ = nat.send(PacketBuilder.udp(Net.client, 40000, Net.server, 69, payload: Self.request(1, "f")), .outbound)
        let reply = nat.send(PacketBuilder.udp(Net.server, 50123, Net.external, 40000, payload: Self.data1), .inbound)
        #expect(reply.kind == .accept) // to the router's own stack, untranslated
        #expect(reply.packet == PacketBuilder.udp(Net.server, 50123, Net.external, 40000, payload: Self.data1))
    }

    @Test("only the server's address is expected, from one new port, once")
    func onlyTheServerOnce() {
        let nat = Self.translator()
        _ = nat.send(PacketBuilder.udp(Net.client, 40000, Net.server, 69, payload: Self.request(1, "f")), .outbound)
        #expect(nat.send(PacketBuilder.udp(Net.stranger, 50123, Net.external, 40000, payload: Self.data1), .inbound).kind == .accept)
        #expect(nat.send(PacketBuilder.udp(Net.server, 50123, Net.external, 40000, payload: Self.data1), .inbound).kind == .rewritten)
        #expect(nat.send(PacketBuilder.udp(Net.server, 50999, Net.external, 40000, payload: Self.data1), .inbound).kind == .accept)
    }

    @Test("a retransmitted request renews its expectation instead of adding one")
    func retransmissionRenews() {
        let nat = Self.translator()
        for second in 0..<4 {
            _ = nat.send(PacketBuilder.udp(Net.client, 40000, Net.server, 69, payload: Self.request(1, "f")), .outbound,
                         now: NATTime.seconds(1000 + UInt64(second) * 100))
        }
        #expect(nat.pendingExpectationCount == 1)
        // Renewed at 1300: still there at 1300 + 119 s, gone after 120 s.
        _ = nat.expire(now: .seconds(1419), budget: 4096)
        #expect(nat.pendingExpectationCount == 1)
        _ = nat.expire(now: .seconds(1421), budget: 4096)
        #expect(nat.pendingExpectationCount == 0 && nat.counters[.expectationsExpired] == 1)
    }

    @Test("malformed requests are counted and pass unchanged; other messages and the server's side are not looked at",
          arguments: TFTPHelperTests.malformed)
    func malformedRequests(payload: [UInt8]) {
        let nat = Self.translator()
        let out = nat.send(PacketBuilder.udp(Net.client, 40000, Net.server, 69, payload: payload), .outbound)
        #expect(out.packet == PacketBuilder.udp(Net.external, 40000, Net.server, 69, payload: payload))
        #expect(nat.events(.malformed) == 1 && nat.pendingExpectationCount == 0)
    }

    @Test("modes are case-insensitive; DATA, ACK and ERROR to port 69 open nothing")
    func modesAndOtherOpcodes() {
        let nat = Self.translator()
        _ = nat.send(PacketBuilder.udp(Net.client, 40000, Net.server, 69, payload: Self.request(1, "f", mode: "NetASCII")), .outbound)
        #expect(nat.pendingExpectationCount == 1)
        for message in [[0, 3, 0, 1, 65], [0, 4, 0, 1], [0, 5, 0, 1, 0], [0, 9, 1]] as [[UInt8]] {
            _ = nat.send(PacketBuilder.udp(Net.client, 40001, Net.server, 69, payload: message), .outbound)
        }
        #expect(nat.pendingExpectationCount == 1 && nat.events(.malformed) == 0)
    }

    @Test("a server inside behind a forward needs no expectation: its answer leaves from a new port through a new mapping")
    func serverInside() {
        var configuration = NATConfiguration(externalAddress: Net.external.address, internalPrefixes: [IPv4Prefix("192.0.2.0/24")!])
        configuration.maxSessions = 64
        configuration.maxMappings = 64
        configuration.helpers = [HelperRegistration(helper: TFTPHelper(), ports: [.udp(69)])]
        configuration.forwards = [PortForward(protocolNumber: IPProtocolNumber.udp, externalPorts: 69...69,
                                              internalAddress: Net.client.address, internalPort: 69)]
        let nat = NATTranslator(configuration: configuration)
        let rrq = Self.request(1, "f")
        let inbound = nat.send(PacketBuilder.udp(Net.server, 3000, Net.external, 69, payload: rrq), .inbound)
        #expect(inbound.packet == PacketBuilder.udp(Net.server, 3000, Net.client, 69, payload: rrq))
        #expect(nat.pendingExpectationCount == 0)
        let data = nat.send(PacketBuilder.udp(Net.client, 50000, Net.server, 3000, payload: Self.data1), .outbound)
        #expect(data.packet == PacketBuilder.udp(Net.external, 50000, Net.server, 3000, payload: Self.data1))
        let ack = nat.send(PacketBuilder.udp(Net.server, 3000, Net.external, 50000, payload: [0, 4, 0, 1]), .inbound)
        #expect(ack.packet == PacketBuilder.udp(Net.server, 3000, Net.client, 50000, payload: [0, 4, 0, 1]))
    }

    @Test("the parser names the request's parts")
    func parserRanges() {
        let bytes = Self.request(2, "a/b", mode: "mail")
        let parsed = bytes.withUnsafeBytes { TFTPRequestParser.parse($0) }
        #expect(parsed == .request(.writeRequest, fileName: 2..<5, mode: 6..<10))
    }
}
