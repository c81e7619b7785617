import Testing
@testable import NATCore

// The reader of /proc/net/{tcp,udp,tcp6,udp6} and ip_local_port_range, on crafted text in
// the kernel's format (net/ipv4/udp.c udp4_format_sock, tcp_ipv4.c get_tcp4_sock: the
// address is the in-memory __be32 printed with %08X, so 203.0.113.1 on x86 reads 017100CB).

@Suite("Reading the router's socket tables")
struct LocalSocketTableTests {
    static let wan = IPv4Address(203, 0, 113, 1)

    static func read(_ text: String, _ family: LocalSocketTable.Family = .ipv4, protocolNumber: UInt8 = IPProtocolNumber.udp,
                     address: IPv4Address? = wan) -> (LocalPortSet, LocalSocketTable.Outcome) {
        var set = LocalPortSet()
        let outcome = Array(text.utf8).withUnsafeBytes {
            LocalSocketTable.addHeldPorts($0, family: family, protocolNumber: protocolNumber, address: address, into: &set)
        }
        return (set, outcome)
    }

    static func ports(_ set: LocalPortSet, _ protocolNumber: UInt8 = IPProtocolNumber.udp) -> [UInt16] {
        (0...UInt16.max).filter { set.contains(protocolNumber: protocolNumber, port: $0) }
    }

    /// The in-memory word of an address as the kernel prints it, on this machine.
    static func word(_ a: UInt8, _ b: UInt8, _ c: UInt8, _ d: UInt8) -> String {
        let memory = UInt32(a) << 24 | UInt32(b) << 16 | UInt32(c) << 8 | UInt32(d)
        let printed = UInt32(bigEndian: memory) // the bytes a.b.c.d in memory, read as a native integer
        let hex = String(printed, radix: 16, uppercase: true)
        return String(repeating: "0", count: 8 - hex.count) + hex
    }

    @Test("udp: the WAN address and the wildcard hold their ports; loopback and other addresses do not")
    func ipv4Lines() {
        let text = """
           sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
          120: \(Self.word(203, 0, 113, 1)):1194 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 1001 2 0000000000000000 0
          121: 00000000:01F4 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 1002 2 0000000000000000 0
          122: \(Self.word(127, 0, 0, 1)):0035 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 1003 2 0000000000000000 0
          123: \(Self.word(192, 0, 2, 1)):0043 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 1004 2 0000000000000000 0
         1024: \(Self.word(203, 0, 113, 1)):a8c1 \(Self.word(198, 51, 100, 53)):0035 01 00000000:00000000 00:00000000 00000000   101        0 1005 2 0000000000000000 0

        """
        let (set, outcome) = Self.read(text)
        #expect(Self.ports(set) == [0x01F4, 0x1194, 0xA8C1]) // 500 (wildcard), 4500, a connected socket's 43201
        #expect(Self.ports(set, IPProtocolNumber.tcp).isEmpty)
        #expect(outcome == { var o = LocalSocketTable.Outcome(); o.sockets = 5; o.held = 3; return o }())
    }

    @Test("with no WAN address yet only the wildcard counts")
    func noAddress() {
        let text = "  1: \(Self.word(203, 0, 113, 1)):1194 00000000:0000 07 x\n  2: 00000000:0044 00000000:0000 07 x\n"
        let (set, outcome) = Self.read(text, address: nil)
        #expect(Self.ports(set) == [68])
        #expect(outcome.sockets == 2 && outcome.held == 1 && outcome.malformed == 0)
    }

    @Test("tcp6: ::, ::ffff:WAN hold; ::1 and a real IPv6 address do not")
    func ipv6Lines() {
        let mapped = "0000000000000000" + Self.word(0, 0, 0xff, 0xff) + Self.word(203, 0, 113, 1)
        let text = """
          sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
           0: 00000000000000000000000000000000:0016 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1
           1: \(mapped):01BB 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 2 1
           2: 00000000000000000000000001000000:1F90 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 3 1
           3: B80D0120000000000000000001000000:0050 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4 1
        """
        let (set, outcome) = Self.read(text, .ipv6, protocolNumber: IPProtocolNumber.tcp)
        #expect(Self.ports(set, IPProtocolNumber.tcp) == [22, 443])
        #expect(outcome.sockets == 4 && outcome.held == 2 && outcome.malformed == 0)
    }

    @Test("lines that are not the kernel's are skipped and counted, never half-read")
    func malformedLines() {
        let good = "  9: 00000000:0FA0 00000000:0000 07 y"
        let bad = [
            "  9: 0000000:0FA1 00000000:0000 07",           // 7 address digits
            "  9: 00000000:0FA2",                           // nothing after the port
            "  9: 0000000G:0FA3 00000000:0000 07",          // not hex
            "  9 00000000:0FA4 00000000:0000 07",           // no colon after the slot
            "  x: 00000000:0FA5 00000000:0000 07",          // no slot
            "  9: 00000000:FA6 00000000:0000 07",           // 3 port digits
            "  9: 00000000000000000000000000000000:0FA7 0", // an IPv6 address in the IPv4 file
            "sl but not a header",
            String(repeating: "9", count: 300) + ": 00000000:0FA8 x",
            "\u{0}\u{0}\u{0}",
        ]
        let (set, outcome) = Self.read((bad + [good]).joined(separator: "\n"))
        #expect(Self.ports(set) == [0x0FA0])
        #expect(outcome.sockets == 1 && outcome.held == 1 && outcome.malformed == bad.count)
    }

    @Test("a last line without its newline is read; one cut inside its fields is not")
    func lastLine() {
        let (whole, _) = Self.read("  1: 00000000:0FA0 00000000:0000 07")
        #expect(Self.ports(whole) == [0x0FA0])
        let (cut, outcome) = Self.read("  1: 00000000:0FA1 00000000:0000 07\n  2: 00000000:0F")
        #expect(Self.ports(cut) == [0x0FA1] && outcome.malformed == 1)
        let (empty, none) = Self.read("")
        #expect(Self.ports(empty).isEmpty && none == LocalSocketTable.Outcome())
    }

    @Test("ip_local_port_range: two numbers, in order, 1-65535")
    func portRange() {
        func parse(_ text: String) -> ClosedRange<UInt16>? { Array(text.utf8).withUnsafeBytes { LocalSocketTable.parsePortRange($0) } }
        #expect(parse("32768\t60999\n") == 32768...60999)
        #expect(parse("1024 65535") == 1024...65535)
        #expect(parse("40000\t40000\n") == 40000...40000)
        for bad in ["", "\n", "32768", "32768\t", "60999\t32768\n", "0\t100", "1\t65536", "1\t2\t3", "a\tb", "-1\t5",
                    "32768,60999", "1\t0000065535", "1 2x"] {
            #expect(parse(bad) == nil, "\(bad.debugDescription)")
        }
    }
}
