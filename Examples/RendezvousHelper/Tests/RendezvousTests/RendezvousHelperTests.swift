// The rendezvous helper on crafted datagrams through a real translator, driven by masqd's
// test kit: every expected packet is built by the kit's PacketBuilder (lengths and checksums
// from its reference checksum, not from the code under test) and compared byte for byte.

import NATCore
import NATTestKit
import Rendezvous
import Testing

@Suite("rendezvous helper")
struct RendezvousHelperTests {
    static let client = Endpoint(TestNet.insideHost, 40000)       // 192.0.2.10:40000
    static let server = Endpoint(TestNet.outsideHost, 7000)       // 198.51.100.5:7000

    static func translator(helper: Bool = true) -> NATTranslator {
        TestNet.translator(helpers: helper ? [HelperRegistration(helper: RendezvousHelper(), ports: [RendezvousHelper.defaultPort])] : [])
    }

    @Test("REGISTER names the external endpoint; the server's answer from another port reaches the client")
    func registerIsRewrittenAndTheAnswerAdmitted() throws {
        let nat = Self.translator()
        var flow = UDPDatagramDriver(through: nat, inside: Self.client, outside: Self.server)
        let register = try flow.send("REGISTER 192.0.2.10:40000\r\nname alice\r\n", from: .inside)
        #expect(register.verdict == .replaced) // one byte longer: "203.0.113.1" against "192.0.2.10"
        #expect(register.packet == (try flow.expected("REGISTER 203.0.113.1:40000\r\nname alice\r\n", to: .outside)))
        #expect(nat.helperEvents(.rewrite) == 1 && nat.helperEvents(.expectation) == 1)

        let welcome = try flow.send("WELCOME alice", from: .outside, sourcePort: 7001)
        #expect(welcome.isDelivered)
        #expect(welcome.packet == (try flow.expected("WELCOME alice", to: .inside, sourcePort: 7001)))
        #expect(nat.counters[.expectationsFulfilled] == 1)
    }

    @Test("without the helper the LAN endpoint leaks into the payload and the answer is refused")
    func withoutTheHelper() throws {
        var flow = UDPDatagramDriver(through: Self.translator(helper: false), inside: Self.client, outside: Self.server)
        let register = try flow.send("REGISTER 192.0.2.10:40000", from: .inside)
        #expect(register.packet == (try flow.expected("REGISTER 192.0.2.10:40000", to: .outside)))
        let welcome = try flow.send("WELCOME", from: .outside, sourcePort: 7001)
        #expect(welcome.verdict == .accept && !welcome.isDelivered) // to the router's own stack
    }

    @Test("announcing another inside port maps that port and names its external port")
    func anotherPort() throws {
        let nat = Self.translator()
        var flow = UDPDatagramDriver(through: nat, inside: Self.client, outside: Self.server)
        let register = try flow.send("REGISTER 192.0.2.10:40002", from: .inside)
        #expect(register.isDelivered && register.isWellFormed)
        let announced = try #require(register.text.split(separator: ":").last.flatMap { UInt16($0) })
        #expect(register.text == "REGISTER 203.0.113.1:\(announced)")
        // A peer introduced by the server sends to the announced endpoint and reaches port 40002.
        let peer = nat.translate(PacketBuilder.udp(TestNet.outsideHost, 9000, TestNet.external, announced, payload: Array("hi".utf8)),
                                 direction: .inbound)
        #expect(peer.packet == PacketBuilder.udp(TestNet.outsideHost, 9000, TestNet.insideHost, 40002, payload: Array("hi".utf8)))
    }

    @Test("someone else's address is passed unchanged and counted; nothing is expected")
    func foreignAddress() throws {
        let nat = Self.translator()
        var flow = UDPDatagramDriver(through: nat, inside: Self.client, outside: Self.server)
        let register = try flow.send("REGISTER 192.0.2.99:40000", from: .inside)
        #expect(register.packet == (try flow.expected("REGISTER 192.0.2.99:40000", to: .outside)))
        #expect(nat.helperEvents(.refusedForeignAddress) == 1 && nat.pendingExpectationCount == 0)
    }

    @Test("malformed registrations pass unchanged and are counted", arguments: [
        "REGISTER 192.0.2.10", "REGISTER 192.0.2.10:", "REGISTER 192.0.2.10:0", "REGISTER 192.0.2.10:65536",
        "REGISTER 192.0.2.256:40000", "REGISTER 192.0.2:40000", "REGISTER 192.0.2.10:40000x",
    ])
    func malformed(text: String) throws {
        let nat = Self.translator()
        var flow = UDPDatagramDriver(through: nat, inside: Self.client, outside: Self.server)
        let register = try flow.send(text, from: .inside)
        #expect(register.packet == (try flow.expected(text, to: .outside)))
        #expect(nat.helperEvents(.malformed) == 1 && nat.helperEvents(.rewrite) == 0)
    }

    @Test("other messages, and anything the server sends, are not touched", arguments: ["PING", "register 192.0.2.10:40000", ""])
    func otherMessages(text: String) throws {
        let nat = Self.translator()
        var flow = UDPDatagramDriver(through: nat, inside: Self.client, outside: Self.server)
        let sent = try flow.send(text, from: .inside)
        #expect(sent.packet == (try flow.expected(text, to: .outside)))
        let answer = try flow.send("REGISTER 192.0.2.10:40000", from: .outside)
        #expect(answer.packet == (try flow.expected("REGISTER 192.0.2.10:40000", to: .inside)))
        #expect(HelperEvent.allCases.allSatisfy { nat.helperEvents($0) == 0 })
    }
}
