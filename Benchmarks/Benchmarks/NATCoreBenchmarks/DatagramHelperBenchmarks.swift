import Benchmark
import NATCore
import NATHelpers

// Datagram helpers (issue #13): a SIP INVITE with SDP rewritten whole (Via, Contact, o=, c=,
// m=, Content-Length, an RTP/RTCP pair expected), and a TFTP read request (an expectation for
// the server's new port). Each iteration translates a fresh copy of its packet (copied into
// a preallocated buffer, so the copy allocates nothing): translating in place rewrites the
// source, and a second pass over the same bytes would measure the not-internal pass instead.

/// Translates a copy of `packet` from a reused buffer.
final class PacketReplayer {
    let buffer: UnsafeMutableRawBufferPointer
    init(capacity: Int) { buffer = .allocate(byteCount: capacity, alignment: 16) }
    deinit { buffer.deallocate() }

    @inline(__always)
    func translate(_ translator: NATTranslator, _ packet: [UInt8], _ direction: PacketDirection, now: NATTime) -> TranslationVerdict {
        packet.withUnsafeBytes { buffer.copyMemory(from: $0) }
        return translator.translate(UnsafeMutableRawBufferPointer(rebasing: buffer[0..<packet.count]), direction: direction,
                                    checksum: PacketChecksumState(), now: now)
    }
}

func datagramHelperBenchmarks() {
    func translator(_ registration: HelperRegistration) -> NATTranslator {
        var configuration = NATConfiguration(externalAddress: external, internalPrefixes: [IPv4Prefix("192.0.2.0/24")!])
        configuration.maxSessions = 8192
        configuration.maxMappings = 8192
        configuration.helpers = [registration]
        configuration.helperLimits.connections = 4096
        configuration.helperLimits.expectations = 4096
        configuration.helperLimits.expectationsPerConnection = 4096
        return NATTranslator(configuration: configuration)
    }
    let phone = IPv4Address(192, 0, 2, 10)

    Benchmark("SIP INVITE with SDP rewritten (Via, Contact, o=, c=, m=, Content-Length; an RTP and RTCP pair expected)",
              configuration: .init(scalingFactor: .kilo, maxIterations: 200)) { benchmark in
        let nat = translator(HelperRegistration(helper: SIPHelper(), ports: [.udp(5060)]))
        // 1000 INVITEs, each offering its own media port: a new pair each the first time round.
        var invites: [[UInt8]] = []
        for i in 0..<1000 {
            let sdp = "v=0\r\no=alice 2890844526 2890844526 IN IP4 192.0.2.10\r\ns=-\r\nc=IN IP4 192.0.2.10\r\nt=0 0\r\n"
                + "m=audio \(20000 + 2 * i) RTP/AVP 0 8 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n"
            let message = "INVITE sip:bob@example.com SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK\(i);rport\r\n"
                + "Max-Forwards: 70\r\nFrom: \"Alice\" <sip:alice@example.com>;tag=1928301774\r\nTo: <sip:bob@example.com>\r\n"
                + "Call-ID: a84b4c76e66710\(i)@192.0.2.10\r\nCSeq: 314159 INVITE\r\nContact: <sip:alice@192.0.2.10:5060>\r\n"
                + "Content-Type: application/sdp\r\nContent-Length: \(sdp.utf8.count)\r\n\r\n" + sdp
            invites.append(PacketTemplates.udp(source: phone, sourcePort: 5060, destination: server, destinationPort: 5060,
                                               text: Array(message.utf8)))
        }
        let replayer = PacketReplayer(capacity: 4096)
        benchmark.startMeasurement()
        for i in benchmark.scaledIterations {
            blackHole(replayer.translate(nat, invites[i % invites.count], .outbound, now: start))
        }
        benchmark.stopMeasurement()
    }

    Benchmark("TFTP read request (expectation for the server's new port)", configuration: .init(scalingFactor: .kilo, maxIterations: 200)) { benchmark in
        let nat = translator(HelperRegistration(helper: TFTPHelper(), ports: [.udp(69)]))
        // 1000 clients' ports: a new mapping, session and expectation each the first time round.
        let requests = (0..<1000).map { i in
            PacketTemplates.udp(source: phone, sourcePort: UInt16(30000 + i), destination: server, destinationPort: 69,
                                text: [0, 1] + Array("pxelinux.0".utf8) + [0] + Array("octet".utf8) + [0] + Array("blksize".utf8) + [0, 0x31, 0x34, 0x36, 0x38, 0])
        }
        let replayer = PacketReplayer(capacity: 2048)
        benchmark.startMeasurement()
        for i in benchmark.scaledIterations {
            blackHole(replayer.translate(nat, requests[i % requests.count], .outbound, now: start))
        }
        benchmark.stopMeasurement()
    }
}
