// The TCP driver through a real translator: a plain connection, one with the FTP helper
// rewriting a line (so the core shifts sequence numbers and the driver must acknowledge in
// the translated numbering), one through a port forward, and a refused handshake.

import NATCore
import NATHelpers
import NATTestKit
import Testing

@Suite("NATTestKit: TCPStreamDriver")
struct TCPStreamDriverTests {
    static let client = Endpoint(TestNet.insideHost, 40000)
    static let server = Endpoint(TestNet.outsideHost, 80)

    @Test("a connection from inside: handshake, payload both ways, what each side received")
    func plainConnection() throws {
        let nat = TestNet.translator()
        var stream = try TCPStreamDriver.openFromInside(through: nat, client: Self.client, server: Self.server)
        #expect(stream.externalPort == 40000) // the internal port is kept when free
        let request = stream.send("GET / HTTP/1.0\r\n\r\n", from: .inside)
        #expect(request.verdict == .rewritten && request.isWellFormed)
        #expect(request.packet == stream.expectedSegment(Array("GET / HTTP/1.0\r\n\r\n".utf8), to: .outside, seq: 1001, ack: 500_001))
        let answer = stream.send("HTTP/1.0 200 OK\r\n", from: .outside)
        #expect(answer.verdict == .rewritten && answer.isWellFormed)
        #expect(answer.destination == Self.client && answer.seq == 500_001 && answer.ack == 1001 + 18)
        #expect(stream.receivedText(by: .outside) == "GET / HTTP/1.0\r\n\r\n")
        #expect(stream.receivedText(by: .inside) == "HTTP/1.0 200 OK\r\n")
        #expect(stream.nextSequence(from: .inside) == 1001 + 18 && stream.acknowledgement(from: .inside) == 500_001 + 17)
    }

    @Test("a helper's rewrite: the peer receives the new text and acknowledges it; the sender's next bytes still fit")
    func rewriteShiftsSequenceNumbers() throws {
        let nat = TestNet.translator(helpers: [HelperRegistration(helper: FTPHelper(), ports: [.tcp(21)])])
        var stream = try TCPStreamDriver.openFromInside(through: nat, client: Self.client, server: Endpoint(TestNet.outsideHost, 21))
        #expect(stream.send("220 ready\r\n", from: .outside).isDelivered) // an FTP session starts with the greeting
        let port = stream.send("PORT 192,0,2,10,156,65\r\n", from: .inside)
        #expect(port.isDelivered && port.isWellFormed)
        #expect(port.text.hasPrefix("PORT 203,0,113,1,")) // 24 bytes became 25 or more
        let growth = UInt32(port.payload.count) - 24
        #expect(growth > 0)
        #expect(nat.helperEvents(.rewrite) == 1)
        // The server acknowledges the longer line; the core maps that back for the client.
        let reply = stream.send("200 PORT command successful\r\n", from: .outside)
        #expect(reply.isDelivered && reply.ack == 1001 + 24)
        let next = stream.send("RETR x\r\n", from: .inside)
        #expect(next.isDelivered && next.seq == 1001 + 24 + growth)
        #expect(stream.receivedText(by: .outside) == port.text + "RETR x\r\n")
    }

    @Test("a retransmission with explicit numbers is rewritten the same way and received once")
    func retransmission() throws {
        let nat = TestNet.translator(helpers: [HelperRegistration(helper: FTPHelper(), ports: [.tcp(21)])])
        var stream = try TCPStreamDriver.openFromInside(through: nat, client: Self.client, server: Endpoint(TestNet.outsideHost, 21))
        let first = stream.send("PORT 192,0,2,10,156,65\r\n", from: .inside)
        let again = stream.send(Array("PORT 192,0,2,10,156,65\r\n".utf8), from: .inside, seq: 1001, ack: 500_001)
        #expect(again.isDelivered && again.payload == first.payload && again.seq == first.seq)
        #expect(stream.receivedText(by: .outside) == first.text)
    }

    @Test("a connection from outside through a port forward reaches the inside server")
    func throughAForward() throws {
        let nat = TestNet.translator { $0.forwards = [PortForward(protocolNumber: IPProtocolNumber.tcp, externalPorts: 8080...8080,
                                                                  internalAddress: TestNet.insideHost.address, internalPort: 80)] }
        var stream = try TCPStreamDriver.openFromOutside(through: nat, client: Endpoint(TestNet.outsideHost, 50000), externalPort: 8080,
                                                         server: Endpoint(TestNet.insideHost, 80))
        #expect(stream.client == .outside)
        let request = stream.send("GET /\r\n", from: .outside)
        #expect(request.isDelivered && request.destination == Endpoint(TestNet.insideHost, 80))
        let answer = stream.send("hello\r\n", from: .inside)
        #expect(answer.isDelivered && answer.source == Endpoint(TestNet.external, 8080))
        #expect(stream.receivedText(by: .inside) == "GET /\r\n" && stream.receivedText(by: .outside) == "hello\r\n")
    }

    @Test("a handshake the translator refuses throws, naming the step")
    func refusedHandshake() {
        let nat = TestNet.translator()
        let failure = #expect(throws: DriverFailure.self) {
            _ = try TCPStreamDriver.openFromOutside(through: nat, client: Endpoint(TestNet.outsideHost, 50000), externalPort: 8080,
                                                    server: Endpoint(TestNet.insideHost, 80))
        }
        #expect(failure?.description.hasPrefix("SYN from 198.51.100.5:50000") == true)
        #expect(failure?.packet?.verdict == .accept) // not ours: to the router's own stack
    }
}
