import CFastPath
import Foundation
@testable import Masqd
@testable import MasqdShell
import NATCore
import Testing

/// The fast path's pure parts: the map layout Swift writes against the BPF object's own
/// (its BTF, read by bpftool), the two entries one flow becomes, and the options.
@Suite
struct FastPathUnitTests {
    static func bytes<T>(_ value: T) -> [UInt8] { withUnsafeBytes(of: value) { Array($0) } }

    @Test("Key and value: Swift's layout is the C header's and the compiled BPF object's (BTF)")
    func layoutMatchesObject() throws {
        #expect(MemoryLayout<masqd_fp_key>.size == 16)
        #expect(MemoryLayout<masqd_fp_value>.size == 72)
        #expect(MemoryLayout<masqd_fp_key>.offset(of: \.sport) == 8)
        #expect(MemoryLayout<masqd_fp_key>.offset(of: \.protocol) == 12)
        #expect(MemoryLayout<masqd_fp_key>.offset(of: \.direction) == 13)
        #expect(MemoryLayout<masqd_fp_value>.offset(of: \.address) == 16)
        #expect(MemoryLayout<masqd_fp_value>.offset(of: \.wan_ifindex) == 24)
        #expect(MemoryLayout<masqd_fp_value>.offset(of: \.last_seen_ns) == 32)
        #expect(MemoryLayout<masqd_fp_value>.offset(of: \.bytes) == 48)
        #expect(MemoryLayout<masqd_fp_value>.offset(of: \.tcp_ack) == 56)
        #expect(MemoryLayout<masqd_fp_value>.offset(of: \.tcp_seq_end) == 60)
        #expect(MemoryLayout<masqd_fp_value>.offset(of: \.tcp_window) == 64)
        #expect(MemoryLayout<masqd_fp_value>.offset(of: \.tcp_known) == 66)
        // The object the daemon loads, built from the same header: its BTF says the same sizes.
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("fp-btf-\(getpid())").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Shell.check([root + "/Deploy/build-bpf.sh", dir])
        let btf = try Shell.check(["bpftool", "btf", "dump", "file", dir + "/masqd_fastpath.bpf.o"]).stdout
        #expect(btf.contains("STRUCT 'masqd_fp_key' size=16 vlen=7"), "\(btf)")
        #expect(btf.contains("STRUCT 'masqd_fp_value' size=72 vlen=14"), "\(btf)")
        for (field, bitOffset) in [("'sport'", 64), ("'protocol'", 96), ("'direction'", 104), ("'address'", 128), ("'wan_ifindex'", 192),
                                   ("'last_seen_ns'", 256), ("'packets'", 320), ("'bytes'", 384),
                                   ("'tcp_ack'", 448), ("'tcp_seq_end'", 480), ("'tcp_window'", 512), ("'tcp_known'", 528)] {
            #expect(btf.contains("\(field) type_id=") && btf.split(separator: "\n").contains { $0.contains(field) && $0.contains("bits_offset=\(bitOffset)") },
                    "\(field) not at bit \(bitOffset):\n\(btf)")
        }
    }

    @Test("A flow's two entries: keys per direction, rewrite targets and reverse keys, byte for byte in network order")
    func entriesOfAFlow() {
        // tcp 192.0.2.10:40000 -> 198.18.0.7:443 via 203.0.113.1:1025, WAN ifindex 7.
        let flow = NATFlow(protocolNumber: 6, internalEndpoint: IPv4Endpoint(0xC000_020A, 40000), remoteEndpoint: IPv4Endpoint(0xC612_0007, 443))
        let entries = FastPathEntries(flow, externalAddress: 0xCB00_7101, externalPort: 1025, wanIndex: 7)
        let outboundKey: [UInt8] = [192, 0, 2, 10, 198, 18, 0, 7, 0x9C, 0x40, 0x01, 0xBB, 6, 0, 0, 0]
        let inboundKey: [UInt8] = [198, 18, 0, 7, 203, 0, 113, 1, 0x01, 0xBB, 0x04, 0x01, 6, 1, 0, 0]
        #expect(Self.bytes(entries.outboundKey) == outboundKey)
        #expect(Self.bytes(entries.inboundKey) == inboundKey)
        let zeros = [UInt8](repeating: 0, count: 40)
        // Outbound: the source becomes 203.0.113.1:1025; inbound: the destination becomes 192.0.2.10:40000.
        #expect(Self.bytes(entries.outboundValue) == inboundKey + [203, 0, 113, 1, 0x04, 0x01, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0] + zeros[..<40])
        #expect(Self.bytes(entries.inboundValue) == outboundKey + [192, 0, 2, 10, 0x9C, 0x40, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0] + zeros[..<40])
    }

    @Test("A NAT event's tuple is the flow's")
    func flowOfEvent() {
        let event = NATEvent(timeNanoseconds: 5, kind: .sessionEstablished, reason: .outbound, protocolNumber: 17,
                             internalAddress: 0xC000_020B, internalPort: 5000, externalAddress: 0xCB00_7101, externalPort: 6000,
                             remoteAddress: 0xC612_0001, remotePort: 53)
        #expect(event.flow == NATFlow(protocolNumber: 17, internalEndpoint: IPv4Endpoint(0xC000_020B, 5000), remoteEndpoint: IPv4Endpoint(0xC612_0001, 53)))
    }

    static func failure(_ args: [String]) -> String { OptionCheck.message(["--wan", "eth0", "--lan", "192.0.2.0/24"] + args) }

    @Test("Options: defaults, values, and one-line errors naming the culprit")
    func options() throws {
        let settings = try OptionCheck.settings(["--wan", "eth0", "--lan", "192.0.2.0/24", "--fast-path"])
        #expect(settings.fastPath == FastPathSettings(objectPath: nil, lanInterfaces: [], maxFlows: 32768, delay: NATDuration(nanoseconds: 0)))
        let given = try OptionCheck.settings(["--wan", "eth0", "--fast-path", "--fast-path-lan-interface", "br0", "--fast-path-max-flows", "10",
                                              "--fast-path-delay", "1.5", "--fast-path-object", "/x.o"])
        #expect(given.fastPath == FastPathSettings(objectPath: "/x.o", lanInterfaces: ["br0"], maxFlows: 10, delay: NATDuration(nanoseconds: 1_500_000_000)))
        #expect(try OptionCheck.settings(["--wan", "eth0"]).fastPath == nil)
        #expect(Self.failure(["--fast-path-delay", "1"]) == "--fast-path-delay 1: needs --fast-path")
        #expect(Self.failure(["--fast-path", "--fast-path-max-flows", "0"]) == "--fast-path-max-flows 0: expected a number from 1 to 1048576")
        #expect(Self.failure(["--fast-path", "--fast-path-delay=-1"]) == "--fast-path-delay -1: expected seconds from 0 to 3600")
        #expect(Self.failure(["--fast-path", "--fast-path-lan-interface", "eth0"]) == "--fast-path-lan-interface eth0: is the WAN interface")
        #expect(Self.failure(["--fast-path", "--timeout", "udp=2"])
            == "--fast-path: the udp and tcp-established timeouts must be at least 5 s (the fast path reports activity every second)")
        #expect(OptionCheck.message(["--wan", "eth0", "--fast-path"]) == "--fast-path: needs --lan (to find the LAN interfaces) or --fast-path-lan-interface")
    }
}
