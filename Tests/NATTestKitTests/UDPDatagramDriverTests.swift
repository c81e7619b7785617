// The UDP driver through a real translator: a flow out and its answer, the filter refusing
// another port, a datagram helper's expectation letting it in (TFTP), and the driver's own
// refusal to guess an external port.

import NATCore
import NATHelpers
import NATTestKit
import Testing

@Suite("NATTestKit: UDPDatagramDriver")
struct UDPDatagramDriverTests {
    static let client = Endpoint(TestNet.insideHost, 40000)

    @Test("out and back: whole packets equal what a correct translation makes")
    func outAndBack() throws {
        let nat = TestNet.translator()
        var flow = UDPDatagramDriver(through: nat, inside: Self.client, outside: Endpoint(TestNet.outsideHost, 53))
        let query = try flow.send("query", from: .inside)
        #expect(query.verdict == .rewritten)
        #expect(flow.externalPort == 40000)
        #expect(query.packet == (try flow.expected("query", to: .outside)))
        let answer = try flow.send("answer", from: .outside)
        #expect(answer.verdict == .rewritten)
        #expect(answer.packet == (try flow.expected("answer", to: .inside)))
        #expect(answer.text == "answer")
    }

    @Test("an answer from another port of the server is refused without a helper, let in with TFTP's expectation")
    func answerFromAnotherPort() throws {
        let request: [UInt8] = [0, 1] + Array("f".utf8) + [0] + Array("octet".utf8) + [0]
        let data: [UInt8] = [0, 3, 0, 1, 0x41]

        var plain = UDPDatagramDriver(through: TestNet.translator(), inside: Self.client, outside: Endpoint(TestNet.outsideHost, 69))
        try plain.send(request, from: .inside)
        let refused = try plain.send(data, from: .outside, sourcePort: 50123)
        #expect(refused.verdict == .accept && !refused.isDelivered)

        let nat = TestNet.translator(helpers: [HelperRegistration(helper: TFTPHelper(), ports: [.udp(69)])])
        var tftp = UDPDatagramDriver(through: nat, inside: Self.client, outside: Endpoint(TestNet.outsideHost, 69))
        try tftp.send(request, from: .inside)
        #expect(nat.helperEvents(.expectation) == 1)
        let admitted = try tftp.send(data, from: .outside, sourcePort: 50123)
        #expect(admitted.isDelivered)
        #expect(admitted.packet == (try tftp.expected(data, to: .inside, sourcePort: 50123)))
    }

    @Test("sending from outside before the external port is known throws instead of guessing")
    func noExternalPortYet() {
        var flow = UDPDatagramDriver(through: TestNet.translator(), inside: Self.client, outside: Endpoint(TestNet.outsideHost, 53))
        let failure = #expect(throws: DriverFailure.self) { try flow.send("early", from: .outside) }
        #expect(failure?.description.contains("no external port") == true)
        #expect(flow.externalPort == nil)
    }
}
