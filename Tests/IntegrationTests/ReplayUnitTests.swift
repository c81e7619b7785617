import Masqd
import NATCore
import PacketCapture
import NATTestKit
import Testing

// The replay in process (no root, no binary): direction rules, what is written and what is
// reported, fragments, timeouts, output link types, option and capture errors.

private func settings(_ configure: (inout ReplayOptions) -> Void = { _ in }) throws -> ReplaySettings {
    var options = ReplayOptions()
    options.wanAddress = "203.0.113.1"
    options.lan = ["192.0.2.0/24"]
    configure(&options)
    return try options.settings()
}

private func replay(_ capture: [UInt8], _ settings: ReplaySettings) throws -> (packets: [CapturedPacket], summary: ReplaySummary, lines: [String]) {
    var lines: [String] = []
    let (output, summary) = try CaptureReplay.replay(settings, capture: capture) { lines.append($0) }
    return (try CaptureReader.readAll(output), summary, lines)
}

private func address(_ text: String) -> IPv4Address {
    guard let value = IPv4Address(text) else { preconditionFailure("bad test address \(text)") }
    return value
}

private func ipBytes(_ packet: CapturedPacket, linkHeader: Int = 14) -> [UInt8] { Array(packet.data.dropFirst(linkHeader)) }

@Suite("replay directions and reports")
struct ReplayUnitTests {
    @Test("direction by address")
    func byAddress() throws {
        let rules = try settings().directions
        func decide(_ s: String, _ d: String) -> ReplayDirectionRules.Decision {
            rules.decide(source: address(s), destination: address(d), interfaceName: "ignored")
        }
        #expect(decide("192.0.2.10", "203.0.113.2") == .translate(.outbound))
        #expect(decide("203.0.113.2", "203.0.113.1") == .translate(.inbound))
        #expect(decide("192.0.2.10", "203.0.113.1") == .translate(.hairpin))
        #expect(decide("203.0.113.1", "203.0.113.2") == .notTranslated("neither from a --lan prefix nor to --wan-address"))
        #expect(decide("203.0.113.2", "192.0.2.10") == .notTranslated("neither from a --lan prefix nor to --wan-address"))
        #expect(decide("192.0.2.10", "192.0.2.11") == .notTranslated("from a --lan prefix to a --lan prefix: does not cross the NAT"))
    }

    @Test("direction by interface name")
    func byInterface() throws {
        let rules = try settings { $0.lanInterface = "lan0"; $0.wanInterface = "wan0" }.directions
        func decide(_ s: String, _ d: String, _ on: String?) -> ReplayDirectionRules.Decision {
            rules.decide(source: address(s), destination: address(d), interfaceName: on)
        }
        #expect(decide("192.0.2.10", "203.0.113.2", "lan0") == .translate(.outbound))
        #expect(decide("192.0.2.10", "203.0.113.1", "lan0") == .translate(.hairpin))
        #expect(decide("203.0.113.2", "192.0.2.10", "lan0") == .notTranslated("to the LAN on --lan-interface lan0: already translated"))
        #expect(decide("203.0.113.2", "203.0.113.1", "wan0") == .translate(.inbound))
        // Whatever arrives on the WAN goes to the translator, spoofed LAN sources included.
        #expect(decide("192.0.2.10", "203.0.113.1", "wan0") == .translate(.inbound))
        #expect(decide("203.0.113.2", "198.51.100.1", "wan0") == .translate(.inbound))
        #expect(decide("203.0.113.1", "203.0.113.2", "wan0") == .notTranslated("from --wan-address on --wan-interface wan0: already translated"))
        #expect(decide("192.0.2.10", "203.0.113.2", "lo") == .notTranslated("on interface lo, neither --lan-interface nor --wan-interface"))
        #expect(decide("192.0.2.10", "203.0.113.2", nil) == .notTranslated("on an interface without a name"))
    }

    @Test("FTP and UDP: rewritten bytes written, the packet seen after the NAT and the DCCP drop reported")
    func ftpAndUDP() throws {
        let frames = ReplayCapture.ftpAndUDP().map { ($0.microseconds, ReplayCapture.ethernet($0.ip)) }
        let (packets, summary, lines) = try replay(ReplayCapture.pcap(frames), settings())
        #expect(summary.read == 11)
        #expect(summary.outbound == 4 + 1 + 1) // TCP, UDP, DCCP
        #expect(summary.inbound == 3 + 1)
        #expect(summary.hairpin == 0)
        #expect(summary.notTranslated == 1)
        #expect(summary.dropped == 1)
        #expect(summary.drops("malformed_transport") == 1)
        #expect(summary.written == 9)
        #expect(summary.outputLinkType == 1)
        #expect(summary.helperEvents.contains { $0.name == "ftp_rewrites" && $0.count == 1 })
        #expect(lines == [
            "replay: packet 10 (0.200000 s): not translated: 203.0.113.1 -> 203.0.113.2, neither from a --lan prefix nor to --wan-address",
            "replay: packet 11 (0.300000 s): dropped: malformed_transport",
        ])
        #expect(packets.count == 9)
        let inbound: Set = [1, 3, 6, 8]
        for (index, packet) in packets.enumerated() {
            let ip = ipBytes(packet)
            #expect(Array(packet.data.prefix(14)) == Array(ReplayCapture.ethernet([]).prefix(14)), "link header kept")
            #expect(Verify.ipHeaderChecksumValid(ip), "packet \(index + 1): IP checksum")
            #expect(Verify.transportChecksumValid(ip), "packet \(index + 1): TCP/UDP checksum")
            if inbound.contains(index) {
                #expect(Array(ip[16..<20]) == ReplayCapture.client.bytes, "packet \(index + 1) goes to the client")
            } else {
                #expect(Array(ip[12..<16]) == ReplayCapture.wan.bytes, "packet \(index + 1) leaves from the WAN address")
            }
        }
        // The PORT line, one byte longer, and the server's ACK of it mapped back.
        #expect(Array(ipBytes(packets[5]).suffix(ReplayCapture.rewrittenPortCommand.count)) == ReplayCapture.rewrittenPortCommand)
        let reply = ipBytes(packets[6])
        #expect(Array(reply[28..<32]) == [0, 0, 0x04, 0x01]) // ack 1001 + 24
        // Timestamps kept.
        #expect(packets.map { $0.timestampNanoseconds ?? 0 } == [0, 10, 20, 30, 40, 50, 60, 100, 110].map {
            UInt64(ReplayCapture.epochSeconds) * 1_000_000_000 + $0 * 1_000_000
        })
    }

    @Test("fragments: reassembled and translated as one datagram; an overlap and an unfinished datagram reported")
    func fragments() throws {
        let payload = [UInt8](repeating: 0x61, count: 64)
        let datagram = PacketBuilder.udp(ReplayCapture.client, 7000, ReplayCapture.server, 7001, payload: payload,
                                         ip: IPv4Fields(identification: 0x1234, flagsAndFragment: 0))
        // Cut after 8 + 32 bytes of UDP: the first fragment carries MF, the second offset 5 (40 bytes).
        func fragment(_ range: Range<Int>, flags: UInt16, identification: UInt16 = 0x1234) -> [UInt8] {
            PacketBuilder.ipv4(source: ReplayCapture.client, destination: ReplayCapture.server, protocolNumber: 17,
                               transport: Array(datagram[(20 + range.lowerBound)..<(20 + range.upperBound)]),
                               fields: IPv4Fields(identification: identification, flagsAndFragment: flags))
        }
        let frames: [(UInt32, [UInt8])] = [
            (0, fragment(0..<40, flags: 0x2000)),
            (1000, fragment(40..<72, flags: 5)),
            // Another datagram: two fragments that overlap, then one never finished.
            (2000, fragment(0..<40, flags: 0x2000, identification: 7)),
            (3000, fragment(32..<72, flags: 4, identification: 7)),
            (4000, fragment(0..<40, flags: 0x2000, identification: 9)),
        ].map { ($0.0, ReplayCapture.ethernet($0.1)) }
        let (packets, summary, lines) = try replay(ReplayCapture.pcap(frames), settings())
        #expect(summary.fragmentsHeld == 3)
        #expect(summary.datagramsReassembled == 1)
        #expect(summary.written == 1)
        #expect(lines == [
            "replay: packet 3 (0.002000 s): dropped: fragment_overlap",
            "replay: packet 4 (0.003000 s): dropped: fragment_overlap",
            "replay: packet 5 (0.004000 s): dropped: fragment_incomplete",
        ])
        let ip = try #require(packets.first.map { ipBytes($0) })
        #expect(ip.count == datagram.count)
        #expect(Array(ip[12..<16]) == ReplayCapture.wan.bytes)
        #expect(Array(ip[28...]) == payload)
        #expect(Verify.ipHeaderChecksumValid(ip))
        #expect(Verify.transportChecksumValid(ip))
        #expect(packets.first?.timestampNanoseconds == UInt64(ReplayCapture.epochSeconds) * 1_000_000_000 + 1_000_000)
    }

    @Test("timeouts run on capture time: a reply after --timeout udp is no longer translated")
    func timeouts() throws {
        let out = PacketBuilder.udp(ReplayCapture.client, 5000, ReplayCapture.server, 53)
        let reply = PacketBuilder.udp(ReplayCapture.server, 53, ReplayCapture.wan, 5000)
        let frames: [(UInt32, [UInt8])] = [(0, out), (29_000_000, reply), (60_000_000, reply)].map { ($0.0, ReplayCapture.ethernet($0.1)) }
        let (packets, summary, _) = try replay(ReplayCapture.pcap(frames), settings { $0.timeout = ["udp=30"] })
        #expect(summary.inbound == 2)
        #expect(packets.count == 3)
        #expect(Array(ipBytes(packets[1])[16..<20]) == ReplayCapture.client.bytes, "within 30 s of the last packet: translated")
        #expect(Array(ipBytes(packets[2])[16..<20]) == ReplayCapture.wan.bytes, "31 s later: passed to the router unchanged")
    }

    @Test("a gap of a year in the capture replays at once, and the flow has expired by then")
    func longGap() throws {
        let out = ReplayCapture.ethernet(PacketBuilder.udp(ReplayCapture.client, 5000, ReplayCapture.server, 53))
        let reply = ReplayCapture.ethernet(PacketBuilder.udp(ReplayCapture.server, 53, ReplayCapture.wan, 5000))
        var file = ReplayCapture.pcap([(0, out)])
        file += ReplayCapture.le32(ReplayCapture.epochSeconds + 365 * 86_400) + ReplayCapture.le32(0)
        file += ReplayCapture.le32(UInt32(reply.count)) + ReplayCapture.le32(UInt32(reply.count)) + reply
        let started = ContinuousClock.now
        let (packets, summary, _) = try replay(file, settings())
        #expect(ContinuousClock.now - started < .seconds(5))
        #expect(summary.written == 2)
        #expect(Array(ipBytes(packets[1])[16..<20]) == ReplayCapture.wan.bytes, "a year later: no translation left")
    }

    @Test("pcapng with two link types: directions by interface name, raw IP out")
    func pcapngInterfaces() throws {
        let out = PacketBuilder.udp(ReplayCapture.client, 5000, ReplayCapture.server, 53)
        let translatedOut = PacketBuilder.udp(ReplayCapture.wan, 5000, ReplayCapture.server, 53)
        let reply = PacketBuilder.udp(ReplayCapture.server, 53, ReplayCapture.wan, 5000)
        let arp: [UInt8] = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 2, 0, 0, 0, 0, 1, 0x08, 0x06] + [UInt8](repeating: 0, count: 28)
        let capture = ReplayCapture.pcapng(interfaces: [("lan0", 1), ("wan0", 101)], [
            (0, 0, ReplayCapture.ethernet(out)),
            (1, 100, translatedOut),
            (1, 200, reply),
            (0, 300, arp),
        ])
        let (packets, summary, lines) = try replay(capture, settings { $0.lanInterface = "lan0"; $0.wanInterface = "wan0" })
        #expect(summary.outbound == 1)
        #expect(summary.inbound == 1)
        #expect(summary.notTranslated == 1)
        #expect(summary.notIPv4LeftOut == 1)
        #expect(summary.outputLinkType == 101)
        #expect(lines == ["replay: packet 2 (0.000100 s): not translated: 203.0.113.1 -> 203.0.113.2, from --wan-address on --wan-interface wan0: already translated"])
        #expect(packets.map(\.linkType) == [.raw, .raw])
        #expect(Array(ipBytes(packets[0], linkHeader: 0)[12..<16]) == ReplayCapture.wan.bytes)
        #expect(Array(ipBytes(packets[1], linkHeader: 0)[16..<20]) == ReplayCapture.client.bytes)
    }

    @Test("a packet cut by the snap length is dropped as truncated; other protocols are written unchanged")
    func truncatedAndNotIPv4() throws {
        let full = ReplayCapture.ethernet(PacketBuilder.udp(ReplayCapture.client, 5000, ReplayCapture.server, 53))
        var file = ReplayCapture.pcap([])
        // Captured 30 bytes of a longer frame.
        file += ReplayCapture.le32(ReplayCapture.epochSeconds) + ReplayCapture.le32(0)
        file += ReplayCapture.le32(30) + ReplayCapture.le32(UInt32(full.count)) + Array(full.prefix(30))
        let ipv6 = [UInt8](repeating: 2, count: 12) + [0x86, 0xdd] + [0x60] + [UInt8](repeating: 0, count: 39)
        file += ReplayCapture.le32(ReplayCapture.epochSeconds) + ReplayCapture.le32(5) + ReplayCapture.le32(30) + ReplayCapture.le32(54) + Array(ipv6.prefix(30))
        let (packets, summary, lines) = try replay(file, settings())
        #expect(lines == ["replay: packet 1 (0.000000 s): dropped: truncated"])
        #expect(summary.notIPv4Written == 1)
        #expect(packets.count == 1)
        #expect(Array(packets[0].data) == Array(ipv6.prefix(30)))
        #expect(packets[0].originalLength == 54)
    }

    @Test("bad options and captures name the culprit")
    func errors() throws {
        func message(_ body: () throws -> Void) -> String? {
            do { try body() } catch let error as MasqdError { return error.description } catch { return "\(error)" }
            return nil
        }
        #expect(message { _ = try settings { $0.wanAddress = nil } } == "--wan-address: required (the WAN address to masquerade behind)")
        #expect(message { _ = try settings { $0.wanAddress = "203.0.113" } } == "--wan-address 203.0.113: not an IPv4 address (A.B.C.D)")
        #expect(message { _ = try settings { $0.lan = [] } } == "--lan: required (at least one internal prefix)")
        #expect(message { _ = try settings { $0.lan = ["192.0.2.0/33"] } } == "--lan 192.0.2.0/33: not an IPv4 prefix (A.B.C.D/N with host bits zero)")
        #expect(message { _ = try settings { $0.wanAddress = "192.0.2.1" } } == "--wan-address 192.0.2.1: is inside --lan 192.0.2.0/24")
        #expect(message { _ = try settings { $0.timeout = ["udp=0"] } } == "--timeout udp=0: expected NAME=SECONDS with 1 <= SECONDS <= 604800")
        #expect(message { _ = try settings { $0.helpers = "gopher" } }?.hasPrefix("--helpers gopher: unknown helper 'gopher'") == true)
        #expect(message { _ = try settings { $0.lanInterface = "eth1"; $0.wanInterface = "eth1" } } == "--wan-interface eth1: is also --lan-interface")
        let pcap = ReplayCapture.pcap([(0, ReplayCapture.ethernet(PacketBuilder.udp(ReplayCapture.client, 1, ReplayCapture.server, 2)))])
        #expect(message { _ = try replay(pcap, settings { $0.lanInterface = "eth1" }) }
                == "--lan-interface eth1: capture names no interfaces (only pcapng's if_name does): leave it out to decide directions by address")
        let pcapng = ReplayCapture.pcapng(interfaces: [("eth0", 1)], [(0, 0, ReplayCapture.ethernet([]))])
        #expect(message { _ = try replay(pcapng, settings { $0.wanInterface = "eth9" }) }
                == "--wan-interface eth9: no packet of capture is on an interface of that name (it has: eth0)")
        #expect(message { _ = try replay(Array(pcap.dropLast(3)), settings()) }
                == "capture: byte 24: packet of 47 bytes runs past the end of the file (44 bytes left)")
        #expect(message { _ = try replay(ReplayCapture.pcap(linkType: 127, [(0, [1, 2, 3])]), settings()) }?
                .hasPrefix("capture: packet 1: link type 127 is not supported (1 (Ethernet), 101 (raw IP)") == true)
    }
}
