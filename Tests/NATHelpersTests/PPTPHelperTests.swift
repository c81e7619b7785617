// The PPTP helper and the core's enhanced GRE calls (issue #14 item 3): two LAN hosts call
// one PPTP server with the same call ID; the server sees distinct ones, each host gets its
// own back, and each call's GRE crosses both ways with the right key. Every expected packet
// is built by the test kit and compared byte for byte. Only public API (no @testable).

import NATCore
import NATHelpers
import NATTestKit
import Testing

@Suite("PPTP helper and enhanced GRE")
struct PPTPHelperTests {
    static let server = TestNet.outsideHost
    static let hostA = TestNet.insideHost
    static let hostB = TestNet.otherInsideHost

    static func translator() -> NATTranslator {
        TestNet.translator(helpers: [HelperRegistration(helper: PPTPHelper(), ports: [1723])])
    }

    /// A control message: length, type 1, the magic cookie, its control type, 0, then `body`.
    static func message(_ type: UInt16, _ body: [UInt8]) -> [UInt8] {
        let length = 12 + body.count
        return [UInt8(length >> 8), UInt8(length & 0xff), 0, 1, 0x1a, 0x2b, 0x3c, 0x4d, UInt8(type >> 8), UInt8(type & 0xff), 0, 0] + body
    }

    static func be(_ v: UInt16) -> [UInt8] { [UInt8(v >> 8), UInt8(v & 0xff)] }

    /// Outgoing-Call-Request (168 bytes): call ID, serial 7, speeds, bearer, framing, window, …
    static func outgoingCallRequest(callID: UInt16) -> [UInt8] {
        message(7, be(callID) + be(7) + [0, 0, 0x01, 0x2c, 0x05, 0xf5, 0xe1, 0x00] + [0, 0, 0, 3, 0, 0, 0, 3] + be(64) + be(0)
                + be(0) + be(0) + [UInt8](repeating: 0, count: 128))
    }

    /// Outgoing-Call-Reply (32 bytes): the server's call ID, the peer's (ours), result 1 (connected), …
    static func outgoingCallReply(callID: UInt16, peerCallID: UInt16) -> [UInt8] {
        message(8, be(callID) + be(peerCallID) + [1, 0] + be(0) + [0, 0, 0xfa, 0] + be(64) + be(0) + [0, 0, 0, 0])
    }

    /// Enhanced GRE (RFC 2637 4.1): K and S set, version 1, PPP (0x880B), payload length, call ID, sequence.
    static func gre(_ source: IPv4Bytes, _ destination: IPv4Bytes, callID: UInt16, payload: [UInt8] = [0xff, 0x03, 0xc0, 0x21]) -> [UInt8] {
        let l4: [UInt8] = [0x30, 0x01, 0x88, 0x0b] + be(UInt16(payload.count)) + be(callID) + [0, 0, 0, 1] + payload
        return PacketBuilder.ipv4(source: source, destination: destination, protocolNumber: 47, transport: l4)
    }

    struct Call {
        var control: TCPStreamDriver
        /// The call ID the server saw in the request.
        var natCallID: UInt16
    }

    /// A host opens the control connection and asks for a call with `callID`; the server
    /// answers with `serverCallID`. Checks both messages byte for byte but the translated ID.
    static func call(_ nat: NATTranslator, from host: IPv4Bytes, port: UInt16, callID: UInt16, serverCallID: UInt16) throws -> Call {
        var control = try TCPStreamDriver.openFromInside(through: nat, client: Endpoint(host, port), server: Endpoint(server, 1723))
        let request = outgoingCallRequest(callID: callID)
        let sent = control.send(request, from: .inside)
        #expect(sent.isDelivered)
        #expect(Verify.ipHeaderChecksumValid(sent.packet) && Verify.transportChecksumValid(sent.packet))
        let seen = sent.payload
        #expect(seen.count == request.count)
        let natCallID = UInt16(seen[12]) << 8 | UInt16(seen[13])
        #expect(Array(seen[0..<12]) == Array(request[0..<12]) && Array(seen[14...]) == Array(request[14...]), "only the call ID changes")
        let reply = control.send(outgoingCallReply(callID: serverCallID, peerCallID: natCallID), from: .outside)
        #expect(reply.isDelivered && Verify.transportChecksumValid(reply.packet))
        #expect(reply.payload == outgoingCallReply(callID: serverCallID, peerCallID: callID), "the host gets its own call ID back")
        return Call(control: control, natCallID: natCallID)
    }

    @Test("two LAN hosts with the same call ID to one server: distinct NAT call IDs, both answered, GRE both ways with the right keys")
    func twoHostsOneServer() throws {
        let nat = Self.translator()
        let a = try Self.call(nat, from: Self.hostA, port: 40001, callID: 1, serverCallID: 100)
        let b = try Self.call(nat, from: Self.hostB, port: 40002, callID: 1, serverCallID: 101)
        #expect(a.natCallID == 1, "the first keeps its call ID")
        #expect(b.natCallID != 1 && b.natCallID != 0, "the second gets another one: \(b.natCallID)")
        #expect(nat.greCallCount == 2)
        // Two calls expected; two edits, B's request and reply (A's ID was kept: nothing to edit).
        #expect(nat.helperEvents(.expectation) == 2 && nat.helperEvents(.rewrite) == 2)

        // Outbound GRE carries the server's call IDs: only the source address changes.
        for (host, serverCallID) in [(Self.hostA, UInt16(100)), (Self.hostB, 101)] {
            let out = nat.translate(Self.gre(host, Self.server, callID: serverCallID), direction: .outbound)
            #expect(out.verdict == .rewritten)
            #expect(out.packet == Self.gre(TestNet.external, Self.server, callID: serverCallID))
        }
        // Inbound GRE carries the NAT call IDs: each reaches its host with its own call ID 1.
        for (host, natCallID) in [(Self.hostA, a.natCallID), (Self.hostB, b.natCallID)] {
            let back = nat.translate(Self.gre(Self.server, TestNet.external, callID: natCallID), direction: .inbound)
            #expect(back.verdict == .rewritten)
            #expect(back.packet == Self.gre(Self.server, host, callID: 1))
        }
        // A key no call has: not a PPTP call of ours, and no address-only row either.
        let stray = Self.gre(Self.server, TestNet.external, callID: 999)
        let passed = nat.translate(stray, direction: .inbound)
        #expect(passed.verdict == .accept && passed.packet == stray)
    }

    @Test("Call-Clear-Request names the NAT call ID; a message cut across segments is held and rewritten whole")
    func clearAndSplit() throws {
        let nat = Self.translator()
        _ = try Self.call(nat, from: Self.hostA, port: 40001, callID: 5, serverCallID: 100)
        var b = try Self.call(nat, from: Self.hostB, port: 40002, callID: 5, serverCallID: 101)
        let clear = Self.message(12, Self.be(5) + Self.be(0))
        // Cut inside the call ID: the first piece is held, the second brings the rest.
        let before = b.control.received(by: .outside).count
        b.control.send(Array(clear[0..<13]), from: .inside)
        #expect(b.control.received(by: .outside).count == before, "the unfinished message was not held")
        b.control.send(Array(clear[13...]), from: .inside)
        let delivered = b.control.received(by: .outside)
        #expect(Array(delivered[before...]) == Self.message(12, Self.be(b.natCallID) + Self.be(0)))
    }

    @Test("one host's share of the call table is an eighth: past it a request passes unchanged and counts as limit")
    func hostShare() throws {
        let nat = TestNet.translator(helpers: [HelperRegistration(helper: PPTPHelper(), ports: [1723])]) { $0.helperLimits.greCalls = 16 }
        var control = try TCPStreamDriver.openFromInside(through: nat, client: Endpoint(Self.hostA, 40001), server: Endpoint(Self.server, 1723))
        for id: UInt16 in 1...2 { #expect(control.send(Self.outgoingCallRequest(callID: id), from: .inside).isDelivered) }
        let third = control.send(Self.outgoingCallRequest(callID: 3), from: .inside)
        #expect(third.payload == Self.outgoingCallRequest(callID: 3), "unchanged: no call")
        #expect(nat.greCallCount == 2 && nat.helperEvents(.limit) == 1 && nat.helperEvents(.malformed) == 0)
        // Another host still has its share.
        let b = try Self.call(nat, from: Self.hostB, port: 40002, callID: 1, serverCallID: 100)
        #expect(b.natCallID != 1, "host A's call 1 to this server holds NAT call ID 1")
    }

    /// Incoming-Call-Request (220 bytes, from the server): its call ID, serial, bearer, channel,
    /// number lengths, then the dialed, dialing and subaddress fields (64 bytes each).
    static func incomingCallRequest(callID: UInt16) -> [UInt8] {
        message(9, be(callID) + be(9) + [0, 0, 0, 3] + [0, 0, 0, 1] + be(0) + be(0) + [UInt8](repeating: 0, count: 192))
    }

    /// Incoming-Call-Reply (28 bytes, from the host): its call ID, the peer's (the server's), result 1, …
    static func incomingCallReply(callID: UInt16, peerCallID: UInt16) -> [UInt8] {
        message(10, be(callID) + be(peerCallID) + [1, 0] + be(64) + be(0) + be(0))
    }

    /// Incoming-Call-Connected (28 bytes, from the server): the peer's call ID (ours), speed, window, delay, framing.
    static func incomingCallConnected(peerCallID: UInt16) -> [UInt8] {
        message(11, be(peerCallID) + be(0) + [0, 0, 0xfa, 0] + be(64) + be(0) + [0, 0, 0, 3])
    }

    /// WAN-Error-Notify (40 bytes, from the server): the peer's call ID (ours), six error counters.
    static func wanErrorNotify(peerCallID: UInt16, crcErrors: UInt8) -> [UInt8] {
        message(14, be(peerCallID) + be(0) + [0, 0, 0, crcErrors] + [UInt8](repeating: 0, count: 20))
    }

    @Test("an incoming call: the host's Incoming-Call-Reply gets a NAT call ID, the server's Connected and WAN-Error-Notify give the host its own back, GRE flows at once")
    func incomingCall() throws {
        let nat = Self.translator()
        // Host A holds call ID 1 to this server already, so host B's 1 must become another one.
        _ = try Self.call(nat, from: Self.hostA, port: 40001, callID: 1, serverCallID: 100)
        var control = try TCPStreamDriver.openFromInside(through: nat, client: Endpoint(Self.hostB, 40002), server: Endpoint(Self.server, 1723))

        let request = control.send(Self.incomingCallRequest(callID: 200), from: .outside)
        #expect(request.isDelivered && request.payload == Self.incomingCallRequest(callID: 200), "the server's own call ID is not ours to change")
        #expect(request.payload.count == 220)

        let reply = Self.incomingCallReply(callID: 1, peerCallID: 200)
        let sent = control.send(reply, from: .inside)
        #expect(sent.isDelivered && Verify.ipHeaderChecksumValid(sent.packet) && Verify.transportChecksumValid(sent.packet))
        #expect(sent.payload.count == reply.count)
        let natCallID = sent.payload.count >= 14 ? UInt16(sent.payload[12]) << 8 | UInt16(sent.payload[13]) : 0
        #expect(natCallID != 1 && natCallID != 0, "host B's call ID 1 is taken at this server by host A's: \(natCallID)")
        #expect(sent.payload == Self.incomingCallReply(callID: natCallID, peerCallID: 200), "only the call ID changes")
        #expect(nat.greCallCount == 2)

        // The reply named the server's call ID: GRE crosses both ways without waiting for more.
        let out = nat.translate(Self.gre(Self.hostB, Self.server, callID: 200), direction: .outbound)
        #expect(out.verdict == .rewritten && out.packet == Self.gre(TestNet.external, Self.server, callID: 200))
        let back = nat.translate(Self.gre(Self.server, TestNet.external, callID: natCallID), direction: .inbound)
        #expect(back.verdict == .rewritten && back.packet == Self.gre(Self.server, Self.hostB, callID: 1))

        let connected = control.send(Self.incomingCallConnected(peerCallID: natCallID), from: .outside)
        #expect(connected.isDelivered && Verify.transportChecksumValid(connected.packet))
        #expect(connected.payload == Self.incomingCallConnected(peerCallID: 1))
        let error = control.send(Self.wanErrorNotify(peerCallID: natCallID, crcErrors: 3), from: .outside)
        #expect(error.isDelivered && Verify.transportChecksumValid(error.packet))
        #expect(error.payload == Self.wanErrorNotify(peerCallID: 1, crcErrors: 3))

        // A notice about a call this connection never set up: passed unchanged, counted malformed.
        let malformedBefore = nat.helperEvents(.malformed)
        let stray = control.send(Self.wanErrorNotify(peerCallID: 777, crcErrors: 1), from: .outside)
        #expect(stray.isDelivered && stray.payload == Self.wanErrorNotify(peerCallID: 777, crcErrors: 1))
        #expect(nat.helperEvents(.malformed) == malformedBefore + 1)
    }

    @Test("a stream that is not PPTP is abandoned and passed unchanged")
    func notPPTP() throws {
        let nat = Self.translator()
        var control = try TCPStreamDriver.openFromInside(through: nat, client: Endpoint(Self.hostA, 40001), server: Endpoint(Self.server, 1723))
        let junk = Array("GET / HTTP/1.0\r\n\r\n".utf8)
        let sent = control.send(junk, from: .inside)
        #expect(sent.isDelivered && sent.payload == junk)
        #expect(nat.helperEvents(.abandoned) == 1)
        let later = control.send(Self.outgoingCallRequest(callID: 1), from: .inside)
        #expect(later.payload == Self.outgoingCallRequest(callID: 1), "nothing is parsed after abandoning")
        #expect(nat.greCallCount == 0)
    }
}
