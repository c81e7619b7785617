import NATTestKit
import Testing
@testable import NATCore

// ICMP errors quoting translated packets (RFC 5508): outer address, quoted header, quoted
// port or identifier, and every checksum.

@Suite("ICMP error translation")
struct ICMPErrorTests {
    /// An ICMP error of `type`/`code` from `source` to `destination` quoting `quoted` (cut to `quoteLength`).
    func icmpError(type: UInt8, code: UInt8, from source: IPv4Bytes, to destination: IPv4Bytes, quoting quoted: [UInt8], quoteLength: Int? = nil) -> [UInt8] {
        PacketBuilder.icmpError(type: type, code: code, from: source, to: destination, quoting: Array(quoted.prefix(quoteLength ?? quoted.count)),
                                nextHopMTU: type == 3 && code == 4 ? 1280 : 0)
    }

    func quotedPacket(_ error: [UInt8]) -> [UInt8] { Array(error[28...]) }

    @Test("port unreachable for a masqueraded UDP datagram goes back to the internal host, fully fixed")
    func inboundPortUnreachable() {
        let nat = makeTranslator()
        var out = PacketBuilder.udp(Net.hostA, 5000, Net.remote, 53, payload: Array("query".utf8))
        _ = nat.run(&out, .outbound)
        let mapped = sourcePort(out)
        var error = icmpError(type: 3, code: 3, from: Net.remote, to: Net.external, quoting: out)
        #expect(nat.run(&error, .inbound) == .acceptRewritten)
        #expect(destinationAddress(error) == Net.hostA)
        #expect(sourceAddress(error) == Net.remote)
        #expect(Verify.ipHeaderChecksumValid(error))
        #expect(Verify.transportChecksumValid(error)) // the ICMP checksum
        let quoted = quotedPacket(error)
        #expect(sourceAddress(quoted) == Net.hostA)
        #expect(sourcePort(quoted) == 5000)
        #expect(destinationAddress(quoted) == Net.remote)
        #expect(destinationPort(quoted) == 53)
        #expect(Verify.ipHeaderChecksumValid(quoted))
        #expect(Verify.transportChecksumValid(quoted))
        #expect(mapped != 0)
        #expect(nat.counters[.icmpErrorsInbound] == 1)
    }

    @Test("fragmentation needed for a TCP segment quoted with 8 bytes only: ports fixed, MTU kept")
    func inboundFragmentationNeededShortQuote() {
        let nat = makeTranslator()
        var out = PacketBuilder.tcp(Net.hostA, 40000, Net.remote, 80, flags: TCPFlag.ack, payload: [UInt8](repeating: 7, count: 1400))
        _ = nat.run(&out, .outbound)
        var error = icmpError(type: 3, code: 4, from: IPv4Bytes(198, 51, 100, 1), to: Net.external, quoting: out, quoteLength: 28)
        #expect(nat.run(&error, .inbound) == .acceptRewritten)
        #expect(destinationAddress(error) == Net.hostA)
        #expect(Verify.be16(error, 26) == 1280)
        #expect(Verify.transportChecksumValid(error))
        let quoted = quotedPacket(error)
        #expect(quoted.count == 28)
        #expect(sourceAddress(quoted) == Net.hostA)
        #expect(Verify.be16(quoted, 20) == 40000)
        #expect(Verify.be16(quoted, 22) == 80)
        #expect(Verify.ipHeaderChecksumValid(quoted))
    }

    @Test("time exceeded quoting an echo request maps the identifier back")
    func inboundTimeExceededEcho() {
        let nat = makeTranslator()
        var ping = PacketBuilder.icmp(Net.hostA, Net.remote, identifier: 77)
        _ = nat.run(&ping, .outbound)
        var error = icmpError(type: 11, code: 0, from: IPv4Bytes(198, 51, 100, 1), to: Net.external, quoting: ping)
        #expect(nat.run(&error, .inbound) == .acceptRewritten)
        #expect(destinationAddress(error) == Net.hostA)
        #expect(Verify.transportChecksumValid(error))
        let quoted = quotedPacket(error)
        #expect(sourceAddress(quoted) == Net.hostA)
        #expect(Verify.be16(quoted, 24) == 77)
        #expect(Verify.ipHeaderChecksumValid(quoted))
        #expect(Verify.transportChecksumValid(quoted))
    }

    @Test("errors about no session are not translated: inbound passes unchanged, outbound is dropped")
    func errorsWithoutSession() {
        let nat = makeTranslator()
        let stray = PacketBuilder.udp(Net.external, 5000, Net.remote, 53)
        var error = icmpError(type: 3, code: 3, from: Net.remote, to: Net.external, quoting: stray)
        let before = error
        #expect(nat.run(&error, .inbound) == .accept)
        #expect(error == before)
        let inward = PacketBuilder.udp(Net.remote, 53, Net.hostA, 5000)
        var outError = icmpError(type: 3, code: 3, from: Net.hostA, to: Net.remote, quoting: inward)
        #expect(nat.run(&outError, .outbound) == .drop(.icmpUnsupported))
    }

    @Test("an internal host's port unreachable about a forwarded datagram leaves with the external address")
    func outboundErrorForForward() {
        let nat = makeTranslator { $0.forwards = [PortForward("udp:5353=192.0.2.10:53")!] }
        var inbound = PacketBuilder.udp(Net.remote, 4000, Net.external, 5353)
        _ = nat.run(&inbound, .inbound)
        #expect(destinationAddress(inbound) == Net.hostA)
        var error = icmpError(type: 3, code: 3, from: Net.hostA, to: Net.remote, quoting: inbound)
        #expect(nat.run(&error, .outbound) == .acceptRewritten)
        #expect(sourceAddress(error) == Net.external)
        #expect(Verify.ipHeaderChecksumValid(error))
        #expect(Verify.transportChecksumValid(error))
        let quoted = quotedPacket(error)
        #expect(destinationAddress(quoted) == Net.external)
        #expect(destinationPort(quoted) == 5353)
        #expect(sourceAddress(quoted) == Net.remote)
        #expect(Verify.ipHeaderChecksumValid(quoted))
        #expect(Verify.transportChecksumValid(quoted))

        // The router's own error about the same packet keeps its outer source.
        var routerError = icmpError(type: 11, code: 0, from: Net.external, to: Net.remote, quoting: inbound)
        #expect(nat.run(&routerError, .outbound) == .acceptRewritten)
        #expect(sourceAddress(routerError) == Net.external)
        #expect(destinationAddress(quotedPacket(routerError)) == Net.external)
        #expect(Verify.transportChecksumValid(routerError))
    }

    @Test("an error quoting an error, or a quote too short for ports, is not translated")
    func malformedQuotes() {
        let nat = makeTranslator()
        var out = PacketBuilder.udp(Net.hostA, 5000, Net.remote, 53)
        _ = nat.run(&out, .outbound)
        var short = icmpError(type: 3, code: 3, from: Net.remote, to: Net.external, quoting: out, quoteLength: 24)
        let shortBefore = short
        #expect(nat.run(&short, .inbound) == .accept)
        #expect(short == shortBefore)
        let inner = icmpError(type: 3, code: 3, from: Net.external, to: Net.remote, quoting: out)
        var nested = icmpError(type: 3, code: 3, from: Net.remote, to: Net.external, quoting: inner)
        let nestedBefore = nested
        #expect(nat.run(&nested, .inbound) == .accept)
        #expect(nested == nestedBefore)
    }
}
