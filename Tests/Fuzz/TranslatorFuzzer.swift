// libFuzzer harness for NATCore (issue #9): the input bytes are a little program that drives
// ONE long-lived NATTranslator (a port forward, the FTP helper on 21 and 2121, the IRC helper
// on 6667 when built with -D FUZZ_IRC, TFTP on udp:69 and SIP on udp:5060 and tcp:5060
// (issue #13), small caps so every limit is reached) and ONE
// FragmentReassembler (small limits). Each operation is an opcode byte followed by its
// operands: a raw or synthesized packet in one direction, a segment of a tracked TCP
// connection with an application helper, a fragment (or a packet cut into fragments), a time
// jump with expiry, a flood, or a control operation. Time only moves forward. After every
// operation the harness checks what must always hold and traps (`fail`) when something breaks.
//
// State lives across inputs (that is how the tables fill up) and is rebuilt every
// FUZZ_RESET_EVERY inputs (default 1000; 1 = fresh state for every input). When something
// breaks, the inputs run since the last rebuild are written, numbered, to FUZZ_HISTORY_DIR
// (default ./fuzz-history-PID); passing those files, in order, to the fuzzer binary replays
// the failure. FUZZ_WRITE_SEEDS=DIR writes a seed corpus to DIR and exits.
//
// Built by Tests/Fuzz/run-fuzz.sh (swiftc -sanitize=fuzzer,address -parse-as-library).

#if canImport(Glibc)
import Glibc
#endif
import NATCore
import NATHelpers

// MARK: - configuration

@inline(__always) func ip(_ a: UInt8, _ b: UInt8, _ c: UInt8, _ d: UInt8) -> UInt32 {
    UInt32(a) << 24 | UInt32(b) << 16 | UInt32(c) << 8 | UInt32(d)
}

enum Setup {
    static let external = ip(203, 0, 113, 1)
    static let otherExternal = ip(203, 0, 113, 9)
    static let internalHosts: [UInt32] = [ip(192, 0, 2, 10), ip(192, 0, 2, 11), ip(192, 0, 2, 12), ip(192, 0, 2, 13)]
    static let remoteHosts: [UInt32] = [ip(203, 0, 113, 2), ip(203, 0, 113, 3), ip(198, 51, 100, 7), ip(203, 0, 113, 2)]
    static let ports: [UInt16] = [21, 6667, 2121, 80, 8080, 5000, 5003, 40000, 40001, 40002, 1024, 5060, 0, 65535, 69, 20]

    static let maxSessions = 256
    static let maxMappings = 256
    static let maxSessionsPerHost = 64

    static var forwards: [PortForward] {
        [
            PortForward(protocolNumber: IPProtocolNumber.tcp, externalPorts: 21...21, internalAddress: IPv4Address(ip(192, 0, 2, 10))),
            PortForward(protocolNumber: IPProtocolNumber.tcp, externalPorts: 2121...2121, internalAddress: IPv4Address(ip(192, 0, 2, 11))),
            PortForward(protocolNumber: IPProtocolNumber.tcp, externalPorts: 6667...6667, internalAddress: IPv4Address(ip(192, 0, 2, 12))),
            PortForward(protocolNumber: IPProtocolNumber.tcp, externalPorts: 8080...8080, internalAddress: IPv4Address(ip(192, 0, 2, 10)), internalPort: 80),
            PortForward(protocolNumber: IPProtocolNumber.udp, externalPorts: 5000...5003, internalAddress: IPv4Address(ip(192, 0, 2, 13))),
        ]
    }
    static var staticMappings: Int { forwards.reduce(0) { $0 + $1.externalPorts.count } }

    static func configuration() -> NATConfiguration {
        var c = NATConfiguration(externalAddress: IPv4Address(external), internalPrefixes: [IPv4Prefix("192.0.2.0/24")!])
        c.maxSessions = maxSessions
        c.maxMappings = maxMappings
        c.maxSessionsPerHost = maxSessionsPerHost
        c.maxAddressOnlyFlows = 8 // small, so it fills
        // Small port ranges, so they run out too.
        c.ports = PortAllocator(portRange: 40000...40127, lowPortRange: 1000...1015)
        var t = NATTimeouts()
        t.udp = .seconds(30)
        t.tcpEstablished = .seconds(300)
        t.tcpTransitory = .seconds(60)
        t.tcpClosed = .seconds(10)
        t.icmp = .seconds(20)
        c.timeouts = t
        c.forwards = forwards
        var h = HelperLimits()
        h.connections = 8
        h.heldBytes = 128
        h.expectations = 16
        h.expectationsPerConnection = 4
        h.expectationTimeout = .seconds(30)
        h.greCalls = 4 // small, so it fills
        c.helperLimits = h
        c.helpers = [
            HelperRegistration(helper: FTPHelper(), ports: [21]),
            HelperRegistration(helper: FTPHelper(allowForeignAddresses: true), ports: [2121]),
        ]
        #if FUZZ_IRC
        c.helpers.append(HelperRegistration(helper: IRCHelper(), ports: [6667]))
        #endif
        c.helpers.append(HelperRegistration(helper: TFTPHelper(), ports: [.udp(69)]))
        c.helpers.append(HelperRegistration(helper: SIPHelper(), ports: [.udp(5060), .tcp(5060)]))
        c.helpers.append(HelperRegistration(helper: PPTPHelper(), ports: [1723]))
        c.hashSeed = 0x5eed_f00d_1234_5678
        return c
    }

    static let fragmentLimits = FragmentLimits(
        maxBytes: 16 << 10, maxDatagrams: 8, maxDatagramsPerSource: 4,
        maxFragmentsPerDatagram: 8, maxFragmentsHeld: 32, timeout: .seconds(5))
}

@inline(__always) func isInternal(_ a: UInt32) -> Bool { a & 0xffff_ff00 == ip(192, 0, 2, 0) }

func dotted(_ a: UInt32) -> String { "\(a >> 24).\(a >> 16 & 0xff).\(a >> 8 & 0xff).\(a & 0xff)" }

// MARK: - failure, history, replay

nonisolated(unsafe) var history: [[UInt8]] = []
nonisolated(unsafe) var historyDumped = false
nonisolated(unsafe) var currentOp = ""

/// What the packets met, over the whole run (printed at exit when FUZZ_STATS is set): shows
/// how deep the fuzzer gets.
struct RunStats {
    var verdicts = [String: Int]()
    var drops = [Int](repeating: 0, count: DropReason.allCases.count)
    var fragmentOutcomes = [String: Int]()
    var expectationsFulfilled: UInt64 = 0
    var helperRewrites: UInt64 = 0
    var helperLinesHeld: UInt64 = 0
    var datagramRewrites = 0
    var resets = 0

    mutating func absorb(_ t: NATTranslator) {
        expectationsFulfilled &+= t.counters[.expectationsFulfilled]
        helperLinesHeld &+= t.counters[.helperLinesHeld]
        for i in 0..<t.configuration.helpers.count { helperRewrites &+= t.counters.helperEvents(helper: i, .rewrite) }
    }

    func print() {
        var lines = ["masqd-fuzz stats: \(resets) state resets"]
        lines.append("  verdicts: " + verdicts.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " "))
        lines.append("  drops: " + DropReason.allCases.filter { drops[$0.rawValue] > 0 }.map { "\($0)=\(drops[$0.rawValue])" }.joined(separator: " "))
        lines.append("  fragments: " + fragmentOutcomes.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " "))
        lines.append("  helpers: rewrites=\(helperRewrites) lines_held=\(helperLinesHeld) expectations_fulfilled=\(expectationsFulfilled) datagram_rewrites=\(datagramRewrites)")
        say(lines.joined(separator: "\n"))
    }
}

nonisolated(unsafe) var stats = RunStats()

func dumpHistory() {
    guard !historyDumped else { return }
    historyDumped = true
    let dir: String
    if let e = getenv("FUZZ_HISTORY_DIR") { dir = String(cString: e) } else { dir = "fuzz-history-\(getpid())" }
    mkdir(dir, 0o755)
    for (i, input) in history.enumerated() {
        var name = String(i)
        while name.count < 6 { name = "0" + name }
        let path = dir + "/" + name
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        guard fd >= 0 else { continue }
        input.withUnsafeBytes { b in _ = Glibc.write(fd, b.baseAddress, b.count) }
        close(fd)
    }
    say("masqd-fuzz: the \(history.count) inputs run since the last state reset are in \(dir)/ (last op: \(currentOp)); "
        + "replay: FUZZ_RESET_EVERY=\(Harness.resetEvery) <fuzzer> \(dir)/*")
}

func fail(_ message: String) -> Never {
    say("masqd-fuzz: INVARIANT BROKEN: \(message) [op: \(currentOp)]")
    dumpHistory()
    fatalError(message)
}

nonisolated(unsafe) var previousActions: [Int32: sigaction] = [:]

func installCrashHooks() {
    let handler: @convention(c) (Int32) -> Void = { signal in
        dumpHistory()
        // Hand the signal on to libFuzzer's (or ASan's) handler: it is delivered again as
        // soon as this handler returns.
        if var old = previousActions[signal] { sigaction(signal, &old, nil) } else { Glibc.signal(signal, SIG_DFL) }
        raise(signal)
    }
    for s in [SIGILL, SIGTRAP, SIGABRT, SIGFPE, SIGBUS, SIGSEGV] {
        var action = sigaction()
        action.__sigaction_handler.sa_handler = handler
        sigemptyset(&action.sa_mask)
        action.sa_flags = 0
        var old = sigaction()
        sigaction(s, &action, &old)
        previousActions[s] = old
    }
    asanSetErrorReportCallback { _ in dumpHistory() }
}

@_silgen_name("__asan_set_error_report_callback")
func asanSetErrorReportCallback(_ callback: @convention(c) (UnsafePointer<CChar>?) -> Void)

// MARK: - bytes

struct Reader {
    let data: UnsafeBufferPointer<UInt8>
    var pos = 0
    var exhausted: Bool { pos >= data.count }
    mutating func u8() -> UInt8 {
        guard pos < data.count else { return 0 }
        pos += 1
        return data[pos - 1]
    }
    mutating func u16() -> UInt16 { UInt16(u8()) << 8 | UInt16(u8()) }
    mutating func u32() -> UInt32 { UInt32(u16()) << 16 | UInt32(u16()) }
    /// Up to `n` bytes (fewer when the input ends).
    mutating func bytes(_ n: Int) -> [UInt8] {
        let k = max(0, min(n, data.count - pos))
        let out = Array(data[pos..<pos + k])
        pos += k
        return out
    }
}

extension Array where Element == UInt8 {
    mutating func put16(_ v: UInt16, at i: Int) { self[i] = UInt8(v >> 8); self[i + 1] = UInt8(v & 0xff) }
    mutating func put32(_ v: UInt32, at i: Int) { put16(UInt16(v >> 16), at: i); put16(UInt16(v & 0xffff), at: i + 2) }
    func be16(_ i: Int) -> UInt16 { UInt16(self[i]) << 8 | UInt16(self[i + 1]) }
    func be32(_ i: Int) -> UInt32 { UInt32(be16(i)) << 16 | UInt32(be16(i + 2)) }
    mutating func append16(_ v: UInt16) { append(UInt8(v >> 8)); append(UInt8(v & 0xff)) }
    mutating func append32(_ v: UInt32) { append16(UInt16(v >> 16)); append16(UInt16(v & 0xffff)) }
    mutating func appendText(_ s: String) { append(contentsOf: Array(s.utf8)) }
}

// MARK: - checksums (a reference implementation, independent of NATCore's)

func onesSum(_ p: UnsafeRawPointer, _ n: Int, _ initial: UInt64 = 0) -> UInt64 {
    var s = initial
    var i = 0
    while i + 1 < n {
        s += UInt64(p.load(fromByteOffset: i, as: UInt8.self)) << 8 | UInt64(p.load(fromByteOffset: i + 1, as: UInt8.self))
        i += 2
    }
    if i < n { s += UInt64(p.load(fromByteOffset: i, as: UInt8.self)) << 8 }
    return s
}

func fold(_ s: UInt64) -> UInt16 {
    var x = s
    while x > 0xffff { x = (x & 0xffff) + (x >> 16) }
    return UInt16(x)
}

func pseudoSum(_ src: UInt32, _ dst: UInt32, _ proto: UInt8, _ length: Int) -> UInt64 {
    UInt64(src >> 16) + UInt64(src & 0xffff) + UInt64(dst >> 16) + UInt64(dst & 0xffff) + UInt64(proto) + UInt64(length)
}

func checksum(_ bytes: [UInt8], from: Int, count: Int, initial: UInt64 = 0) -> UInt16 {
    bytes.withUnsafeBytes { ~fold(onesSum($0.baseAddress! + from, count, initial)) }
}

/// A parsed view of an IPv4 packet in a raw buffer, nil unless NATCore's parser would accept it.
struct View {
    let p: UnsafeRawPointer
    let count: Int
    let ihl: Int
    let total: Int
    init?(_ p: UnsafeRawPointer?, _ count: Int) {
        guard let p, count >= 20, p.load(as: UInt8.self) >> 4 == 4 else { return nil }
        let ihl = Int(p.load(as: UInt8.self) & 0x0f) * 4
        let total = Int(p.load(fromByteOffset: 2, as: UInt8.self)) << 8 | Int(p.load(fromByteOffset: 3, as: UInt8.self))
        guard ihl >= 20, ihl <= count, total >= ihl, total <= count else { return nil }
        self.p = p
        self.count = count
        self.ihl = ihl
        self.total = total
    }
    func b8(_ i: Int) -> UInt8 { p.load(fromByteOffset: i, as: UInt8.self) }
    func b16(_ i: Int) -> UInt16 { UInt16(b8(i)) << 8 | UInt16(b8(i + 1)) }
    func b32(_ i: Int) -> UInt32 { UInt32(b16(i)) << 16 | UInt32(b16(i + 2)) }
    var proto: UInt8 { b8(9) }
    var src: UInt32 { b32(12) }
    var dst: UInt32 { b32(16) }
    var l4Length: Int { total - ihl }
    var isFragment: Bool { b16(6) & 0x3fff != 0 }
    var headerValid: Bool { fold(onesSum(p, ihl)) == 0xffff }

    /// Whether the TCP/UDP/ICMP checksum verifies; nil when there is none to verify.
    var l4Valid: Bool? {
        let l4 = p + ihl
        switch proto {
        case 6:
            guard l4Length >= 20 else { return nil }
            return fold(onesSum(l4, l4Length, pseudoSum(src, dst, 6, l4Length))) == 0xffff
        case 17:
            guard l4Length >= 8 else { return nil }
            let udpLength = Int(b16(ihl + 4))
            guard udpLength >= 8, udpLength <= l4Length else { return nil }
            if b16(ihl + 6) == 0 { return true }
            return fold(onesSum(l4, udpLength, pseudoSum(src, dst, 17, udpLength))) == 0xffff
        case 1:
            guard l4Length >= 8 else { return nil }
            return fold(onesSum(l4, l4Length)) == 0xffff
        default:
            return nil
        }
    }
}

// MARK: - building packets

enum L4Sum { case valid, pseudo, zero, garbage(UInt16) }

enum Build {
    static func ipv4(src: UInt32, dst: UInt32, proto: UInt8, l4: [UInt8], id: UInt16 = 0x1234,
                     frag: UInt16 = 0x4000, ttl: UInt8 = 64, options: [UInt8] = []) -> [UInt8] {
        let ihl = 5 + options.count / 4
        var h: [UInt8] = [0x40 | UInt8(ihl), 0, 0, 0, 0, 0, 0, 0, ttl, proto, 0, 0]
        h.put16(UInt16(truncatingIfNeeded: ihl * 4 + l4.count), at: 2)
        h.put16(id, at: 4)
        h.put16(frag, at: 6)
        h.append32(src)
        h.append32(dst)
        h += options
        h.put16(checksum(h, from: 0, count: h.count), at: 10)
        return h + l4
    }

    static func l4Sum(_ mode: L4Sum, _ segment: [UInt8], pseudo: UInt64, udp: Bool) -> UInt16 {
        switch mode {
        case .valid:
            let v = checksum(segment, from: 0, count: segment.count, initial: pseudo)
            return udp && v == 0 ? 0xffff : v
        case .pseudo: return fold(pseudo)
        case .zero: return 0
        case .garbage(let v): return v
        }
    }

    static func tcp(_ src: UInt32, _ sport: UInt16, _ dst: UInt32, _ dport: UInt16, flags: UInt8, seq: UInt32, ack: UInt32,
                    options: [UInt8] = [], payload: [UInt8] = [], sum: L4Sum = .valid, window: UInt16 = 65000) -> [UInt8] {
        var opts = options
        while opts.count % 4 != 0 { opts.append(1) }
        if opts.count > 40 { opts = Array(opts[0..<40]) }
        var s: [UInt8] = []
        s.append16(sport); s.append16(dport); s.append32(seq); s.append32(ack)
        s.append(UInt8((5 + opts.count / 4) << 4)); s.append(flags); s.append16(window)
        s += [0, 0, 0, 0]
        s += opts + payload
        s.put16(l4Sum(sum, s, pseudo: pseudoSum(src, dst, 6, s.count), udp: false), at: 16)
        return s
    }

    static func udp(_ src: UInt32, _ sport: UInt16, _ dst: UInt32, _ dport: UInt16, payload: [UInt8], sum: L4Sum = .valid) -> [UInt8] {
        var d: [UInt8] = []
        d.append16(sport); d.append16(dport); d.append16(UInt16(truncatingIfNeeded: 8 + payload.count)); d += [0, 0]
        d += payload
        d.put16(l4Sum(sum, d, pseudo: pseudoSum(src, dst, 17, d.count), udp: true), at: 6)
        return d
    }

    static func icmp(type: UInt8, code: UInt8, rest: UInt32, payload: [UInt8], sum: L4Sum = .valid) -> [UInt8] {
        var m: [UInt8] = [type, code, 0, 0]
        m.append32(rest)
        m += payload
        switch sum {
        case .valid: m.put16(checksum(m, from: 0, count: m.count), at: 2)
        case .garbage(let v): m.put16(v, at: 2)
        default: break
        }
        return m
    }

    static func packet(_ src: UInt32, _ dst: UInt32, proto: UInt8, l4: [UInt8]) -> [UInt8] {
        ipv4(src: src, dst: dst, proto: proto, l4: l4)
    }

    /// Makes the header and transport checksums (and the lengths they depend on) right.
    static func fix(_ p: inout [UInt8]) {
        if p.count < 20 { p += [UInt8](repeating: 0, count: 20 - p.count) }
        var ihl = Int(p[0] & 0x0f)
        if ihl < 5 || ihl * 4 > p.count { ihl = 5 }
        p[0] = 0x40 | UInt8(ihl)
        p.put16(UInt16(p.count), at: 2)
        p.put16(0, at: 10)
        p.put16(checksum(p, from: 0, count: ihl * 4), at: 10)
        let h = ihl * 4
        let l4Length = p.count - h
        let src = p.be32(12), dst = p.be32(16)
        switch p[9] {
        case 6 where l4Length >= 20:
            let off = Int(p[h + 12] >> 4) * 4
            if off < 20 || off > l4Length { p[h + 12] = 0x50 | (p[h + 12] & 0x0f) }
            p.put16(0, at: h + 16)
            p.put16(checksum(p, from: h, count: l4Length, initial: pseudoSum(src, dst, 6, l4Length)), at: h + 16)
        case 17 where l4Length >= 8:
            var len = Int(p.be16(h + 4))
            if len < 8 || len > l4Length { len = l4Length; p.put16(UInt16(len), at: h + 4) }
            p.put16(0, at: h + 6)
            let v = checksum(p, from: h, count: len, initial: pseudoSum(src, dst, 17, len))
            p.put16(v == 0 ? 0xffff : v, at: h + 6)
        case 1 where l4Length >= 8:
            p.put16(0, at: h + 2)
            p.put16(checksum(p, from: h, count: l4Length), at: h + 2)
        default:
            break
        }
    }
}

// MARK: - application payloads

enum Text {
    static func number(_ r: inout Reader, _ value: Int) -> String {
        let b = r.u8()
        switch b >> 5 {
        case 0: return "0" + String(value)
        case 1: return String(Int(b & 0x1f) * 300)
        case 2: return ["4294967296", "99999", "65536", "-1", "", " 1", "256", "18446744073709551616"][Int(b & 7)]
        default: return String(value)
        }
    }

    static func address(_ r: inout Reader, own: UInt32, external: UInt32) -> UInt32 {
        let b = r.u8()
        switch b & 7 {
        case 0, 1, 2: return own
        case 3: return external
        case 4: return Setup.internalHosts[Int(b >> 3) & 3]
        case 5: return Setup.remoteHosts[Int(b >> 3) & 3]
        case 6: return 0
        default: return r.u32()
        }
    }

    static func port(_ r: inout Reader) -> UInt16 {
        let b = r.u8()
        switch b & 3 {
        case 0: return 40020 + UInt16(b >> 2)
        case 1: return [1023, 1024, 0, 65535, 21, 6667, 40000, 2000][Int(b >> 2) & 7]
        default: return r.u16()
        }
    }

    /// A line for a helper: FTP commands and replies, IRC DCC offers, or raw bytes.
    static func payload(_ r: inout Reader, own: UInt32, external: UInt32) -> [UInt8] {
        let sel = r.u8()
        var exact = sel & 0x80 == 0 // most numbers plain; some odd
        var line: String
        func num(_ v: Int, _ r: inout Reader) -> String { exact ? String(v) : number(&r, v) }
        switch sel & 7 {
        case 0:
            return r.bytes(Int(r.u8()))
        case 1:
            let a = address(&r, own: own, external: external), p = port(&r)
            let sep = exact ? "," : String(UnicodeScalar(r.u8() & 0x7f))
            line = "PORT " + [Int(a >> 24), Int(a >> 16 & 0xff), Int(a >> 8 & 0xff), Int(a & 0xff), Int(p >> 8), Int(p & 0xff)]
                .map { num($0, &r) }.joined(separator: sep)
        case 2:
            let a = address(&r, own: own, external: external), p = port(&r)
            let d = exact ? "|" : String(UnicodeScalar(r.u8() & 0x7f))
            let family = exact ? "1" : ["1", "2", "3", ""][Int(r.u8() & 3)]
            let host = family == "2" ? "::1" : dotted(a)
            line = "EPRT " + d + family + d + host + d + num(Int(p), &r) + d
        case 3:
            let a = address(&r, own: own, external: external), p = port(&r)
            line = "227 Entering Passive Mode (" + [Int(a >> 24), Int(a >> 16 & 0xff), Int(a >> 8 & 0xff), Int(a & 0xff), Int(p >> 8), Int(p & 0xff)]
                .map { num($0, &r) }.joined(separator: ",") + ")."
        case 4:
            let p = port(&r)
            line = "229 Entering Extended Passive Mode (|||" + num(Int(p), &r) + "|)"
        case 5, 6:
            let a = address(&r, own: own, external: external), p = port(&r)
            let b = r.u8()
            let prefix = ["", ":nick!user@host ", "@time=2024 :n!u@h ", "@a=b "][Int(b & 3)]
            let command = ["PRIVMSG", "NOTICE", "privmsg", "JOIN"][Int(b >> 2) & 3]
            let type = ["SEND file.txt", "CHAT chat", "ACCEPT file.txt", "RESUME file.txt", "TSEND f", "SCHAT chat", "MOVE f", "SEND \"a b\""][Int(b >> 4) & 7]
            let addressText = b & 0x80 != 0 ? dotted(a) : num(Int(a), &r)
            var body = "\u{1}DCC " + type + " "
            body += type.hasPrefix("ACCEPT") || type.hasPrefix("RESUME") ? num(Int(p), &r) + " 0" : addressText + " " + num(Int(p), &r) + " 1000"
            line = prefix + command + " bob :" + body + (exact || r.u8() & 1 == 0 ? "\u{1}" : "")
        default:
            let words = ["USER anonymous", "PASV", "EPSV", "220 ready", "200 PORT ok", "NICK bob", "GET / HTTP/1.1", "PING :x"]
            line = words[Int(sel >> 3) & 7]
            exact = true
        }
        var bytes = Array(line.utf8)
        let end = r.u8()
        switch end & 3 {
        case 0, 1: bytes += [13, 10]
        case 2: bytes += [10]
        default: break // unfinished
        }
        return bytes
    }
}

extension Text {
    /// A datagram for the UDP helpers: a SIP message (with or without SDP, compact or full
    /// names, folded, bad lengths), a TFTP request, or a stream line / raw bytes.
    static func datagram(_ r: inout Reader, own: UInt32, external: UInt32) -> [UInt8] {
        let sel = r.u8()
        switch sel & 3 {
        case 0: return sip(&r, own: own, external: external)
        case 1:
            var bytes: [UInt8] = [0, [1, 2, 1, 3, 4, 5, 6, 9][Int(sel >> 2) & 7]]
            bytes += Array(["boot.img", "", "a/b/c", String(repeating: "x", count: 300)][Int(sel >> 5) & 3].utf8)
            if r.u8() & 1 == 0 { bytes.append(0) }
            bytes += Array(["octet", "netascii", "MAIL", "binary", ""][Int(r.u8()) % 5].utf8)
            if r.u8() & 3 != 0 { bytes.append(0) }
            if r.u8() & 1 == 0 { bytes += Array("blksize\u{0}1428\u{0}".utf8) }
            return bytes
        default: return payload(&r, own: own, external: external)
        }
    }

    /// A PPTP control message (PPTPHelper): mostly well formed, the types that carry call IDs,
    /// call IDs from a small set (so requests, replies and GRE meet), some lengths or magic wrong.
    static func pptp(_ r: inout Reader) -> [UInt8] {
        let sel = r.u8()
        let type: UInt16 = [7, 8, 10, 11, 12, 14, 13, 1][Int(sel & 7)]
        let length = sel & 0x80 != 0 ? Int(r.u8()) : [168, 32, 28, 28, 16, 40, 148, 156][Int(sel & 7)]
        let ids: [UInt16] = [1, 2, 100, 101]
        let callID = ids[Int(r.u8() & 3)], peer = ids[Int(r.u8() & 3)]
        var m: [UInt8] = [UInt8(length >> 8 & 0xff), UInt8(length & 0xff), 0, 1, 0x1a, 0x2b, 0x3c, sel & 0x40 != 0 ? 0 : 0x4d,
                          UInt8(type >> 8), UInt8(type & 0xff), 0, 0, UInt8(callID >> 8), UInt8(callID & 0xff), UInt8(peer >> 8), UInt8(peer & 0xff)]
        if length > m.count { m += [UInt8](repeating: 0, count: min(length, 256) - m.count) }
        return m
    }

    static func sip(_ r: inout Reader, own: UInt32, external: UInt32) -> [UInt8] {
        let b = r.u8()
        let host = dotted(address(&r, own: own, external: external))
        let port = [5060, 5061, Int(r.u16()), 0][Int(b & 3)]
        let endpoint = port == 5060 && b & 4 != 0 ? host : host + ":" + number(&r, port)
        let starts = ["INVITE sip:bob@\(host) SIP/2.0", "REGISTER sip:example.com SIP/2.0", "SIP/2.0 200 OK", "SIP/2.0 180 Ringing",
                      "ACK sip:\(endpoint) SIP/2.0", "BYE sip:x@\(endpoint);transport=udp SIP/2.0", "SIP/2.0 99 x", "OPTIONS  SIP/2.0"]
        var lines = [starts[Int(b >> 3) & 7]]
        let compact = b & 0x40 != 0
        let folded = b & 0x80 != 0
        let fields = r.u8()
        for i in 0..<Int(fields & 7) + 1 {
            let f = r.u8()
            switch f & 7 {
            case 0: lines.append((compact ? "v: " : "Via: ") + "SIP/2.0/UDP" + (folded ? "\r\n " : " ") + endpoint + ";branch=z9hG4bK\(i);rport")
            case 1: lines.append((compact ? "m: " : "Contact: ") + "<sip:alice@\(endpoint)>;expires=60")
            case 2: lines.append((compact ? "f: " : "From: ") + "\"A\" <sip:alice@\(endpoint)>;tag=\(i)")
            case 3: lines.append((compact ? "t: " : "To: ") + "sip:bob@\(endpoint)")
            case 4: lines.append("Contact: <sip:a@\(endpoint)>, <sips:b@\(host):\(number(&r, 5062))>, *")
            case 5: lines.append("X-Junk: " + String(decoding: r.bytes(Int(r.u8() & 0x3f)), as: UTF8.self))
            case 6: lines.append("Call-ID: \(i)@\(host)")
            default: lines.append("no colon")
            }
        }
        var body = ""
        if fields & 0x08 != 0 {
            let media = Int(r.u16())
            body = "v=0\r\no=- 1 1 IN IP4 \(host)\r\ns=-\r\nc=IN IP4 \(host)\r\nt=0 0\r\n"
            for m in 0..<Int(fields >> 4 & 7) {
                body += "m=audio \(number(&r, media + 2 * m))\((fields & 0x80 != 0) ? "/2" : "") RTP/AVP 0\r\n"
                if r.u8() & 1 == 0 { body += "c=IN IP4 \(dotted(address(&r, own: own, external: external)))\r\n" }
                if r.u8() & 1 == 0 { body += "a=rtcp:\(number(&r, media + 2 * m + 1)) IN IP4 \(host)\r\n" }
            }
            lines.append((compact ? "c: " : "Content-Type: ") + "application/sdp")
        }
        let length = r.u8()
        switch length & 3 {
        case 0: lines.append((compact ? "l: " : "Content-Length: ") + String(body.utf8.count))
        case 1: lines.append("Content-Length: " + number(&r, body.utf8.count))
        default: break
        }
        return Array((lines.joined(separator: "\r\n") + (length & 4 == 0 ? "\r\n\r\n" : "\r\n") + body).utf8)
    }
}

// MARK: - the harness

enum Direction: Int { case outbound, inbound, hairpin }

extension Direction {
    var packetDirection: PacketDirection {
        switch self {
        case .outbound: .outbound
        case .inbound: .inbound
        case .hairpin: .hairpin
        }
    }
    static func from(_ bits: UInt8) -> Direction { [.outbound, .inbound, .hairpin, .outbound][Int(bits & 3)] }
}

/// The reassembler's key: the direction is part of it (issue #20 item 3).
struct FragmentKey: Equatable { var src: UInt32, dst: UInt32, id: UInt16, proto: UInt8, direction: Direction }
struct Endpoint: Hashable { var proto: UInt8, address: UInt32, port: UInt16 }
struct SessionKey: Hashable { var proto: UInt8, internalAddress: UInt32, internalPort: UInt16, remoteAddress: UInt32, remotePort: UInt16 }

/// A TCP connection through a helper port, tracked so its segments come in order.
struct Flow {
    enum Kind { case clientInside, serverInside, hairpin }
    let kind: Kind
    let client: UInt32
    let clientPort: UInt16
    let server: UInt32
    let serverPort: UInt16
    var clientNext: UInt32 = 0x1000
    var serverNext: UInt32 = 0x8000_0000
    /// What each side has received, in the numbers it saw (its ACK).
    var clientAck: UInt32 = 0
    var serverAck: UInt32 = 0
    /// The client's external port (client inside, hairpin), learned from a translated segment.
    var externalPort: UInt16 = 0
    var lastClient: (seq: UInt32, payload: [UInt8]) = (0, [])
    var lastServer: (seq: UInt32, payload: [UInt8]) = (0, [])

    static func initial() -> [Flow] {
        [
            Flow(kind: .clientInside, client: ip(192, 0, 2, 10), clientPort: 40010, server: ip(203, 0, 113, 2), serverPort: 21),
            Flow(kind: .clientInside, client: ip(192, 0, 2, 11), clientPort: 40011, server: ip(203, 0, 113, 3), serverPort: 21),
            Flow(kind: .clientInside, client: ip(192, 0, 2, 10), clientPort: 40012, server: ip(203, 0, 113, 2), serverPort: 2121),
            Flow(kind: .clientInside, client: ip(192, 0, 2, 10), clientPort: 40013, server: ip(203, 0, 113, 2), serverPort: 6667),
            Flow(kind: .serverInside, client: ip(203, 0, 113, 2), clientPort: 50014, server: ip(192, 0, 2, 10), serverPort: 21),
            Flow(kind: .serverInside, client: ip(203, 0, 113, 3), clientPort: 50015, server: ip(192, 0, 2, 11), serverPort: 2121),
            Flow(kind: .clientInside, client: ip(192, 0, 2, 11), clientPort: 40016, server: ip(203, 0, 113, 3), serverPort: 5060),
            Flow(kind: .hairpin, client: ip(192, 0, 2, 11), clientPort: 40017, server: ip(192, 0, 2, 10), serverPort: 21),
            Flow(kind: .clientInside, client: ip(192, 0, 2, 12), clientPort: 40018, server: ip(203, 0, 113, 2), serverPort: 1723),
        ]
    }
}

@inline(__always) func seqLT(_ a: UInt32, _ b: UInt32) -> Bool { Int32(bitPattern: a &- b) < 0 }

final class Harness {
    nonisolated(unsafe) static var resetEvery: Int = {
        if let e = getenv("FUZZ_RESET_EVERY"), let n = Int(String(cString: e)), n > 0 { return n }
        return 1000
    }()

    let translator: NATTranslator
    let reassembler: FragmentReassembler
    var now: UInt64 = 1000 * 1_000_000_000
    var nextToken: UInt32 = 1
    /// Tokens the reassembler holds, with their datagram's key.
    var held: [UInt32: FragmentKey] = [:]
    var flows = Flow.initial()
    /// Ports seen recently: external ports of translated packets and ports offered in
    /// rewritten helper lines (so expected connections can be dialled).
    var recentPorts: [UInt16] = [40000, 40001, 40002, 40003, 40004, 40005, 40006, 40007]
    var recentPortCursor = 0
    /// Recently delivered packets (after translation) and the direction they went.
    var delivered: [(bytes: [UInt8], direction: Direction)] = []
    var ops = 0
    /// Packets translated; every 16th is checked against the session table.
    var translations = 0
    /// The router's own ports last handed to the translator (localPortsOp).
    var localHeld = LocalPortSet()
    var localReserved: ClosedRange<UInt16>? = nil
    /// Mappings and sessions alive by the NAT events drained so far (checkEvents).
    var eventMappings = 0
    var eventSessions = 0
    /// Port blocks held by the events drained so far (allocated minus released).
    var eventBlocks = 0
    /// Address-only rows alive by the events (created minus removed).
    var eventAddressOnly = 0

    /// `portBlocks`: every other harness (chosen by the first input after a reset, so a
    /// replay of the same inputs picks the same) cuts the 128-port range into blocks of 16,
    /// two per host, so four hosts run them out.
    init(portBlocks: Bool = false) {
        var configuration = Setup.configuration()
        if portBlocks { configuration.portBlocks = PortBlockSettings(size: 16, maxPerHost: 2) }
        do { try configuration.validate() } catch { fail("configuration does not validate: \(error)") }
        translator = NATTranslator(configuration: configuration)
        reassembler = FragmentReassembler(limits: Setup.fragmentLimits, hashSeed: 0x1234_5678_9abc_def0)
        translator.enableEvents(capacity: 1 << 16, now: NATTime(nanoseconds: now))
        translator.recordsEstablishedSessions = true
    }

    var time: NATTime { NATTime(nanoseconds: now) }
    var external: UInt32 { translator.configuration.externalAddress?.value ?? Setup.external }

    func remember(port: UInt16) {
        recentPorts[recentPortCursor] = port
        recentPortCursor = (recentPortCursor + 1) & 7
    }

    // MARK: addresses and ports from fuzz bytes

    enum Role { case inside, outside, external }

    func roles(_ d: Direction) -> (Role, Role) {
        switch d {
        case .outbound: (.inside, .outside)
        case .inbound: (.outside, .external)
        case .hairpin: (.inside, .external)
        }
    }

    func address(_ role: Role, _ n: UInt8) -> UInt32 {
        switch n & 15 {
        case 0..<10:
            switch role {
            case .inside: return Setup.internalHosts[Int(n & 3)]
            case .outside: return Setup.remoteHosts[Int(n & 3)]
            case .external: return external
            }
        case 10: return external
        case 11: return Setup.internalHosts[0]
        case 12: return Setup.remoteHosts[0]
        case 13: return 0
        case 14: return Setup.otherExternal
        default: return ip(192, 0, 2, 255)
        }
    }

    func port(_ r: inout Reader) -> UInt16 {
        let p = r.u8()
        if p >= 0xc0 { return r.u16() }
        if p & 0x10 != 0 { return recentPorts[Int(p >> 5) & 7] }
        return Setup.ports[Int(p & 15)]
    }

    // MARK: translating, with every check

    /// Translates `bytes` (in an exactly sized buffer) and checks the verdict. Returns the
    /// bytes that would leave (nil when dropped).
    @discardableResult
    func translate(_ bytes: [UInt8], _ direction: Direction, notReady: Bool = false, gso: Bool = false) -> (TranslationVerdict, [UInt8]?) {
        let n = bytes.count
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: max(n, 1), alignment: 1)
        defer { buffer.deallocate() }
        bytes.withUnsafeBytes { if n > 0 { buffer.copyMemory(from: $0.baseAddress!, byteCount: n) } }
        let before = View(buffer, n)
        let headerValidBefore = before?.headerValid ?? false
        let l4ValidBefore = before?.l4Valid ?? false
        let proto = before?.proto ?? 0

        translations &+= 1
        let verdict = translator.translate(
            UnsafeMutableRawBufferPointer(start: buffer, count: n), direction: direction.packetDirection,
            checksum: PacketChecksumState(checksumNotReady: notReady, isGSO: gso), now: time)

        let after = UnsafeRawBufferPointer(start: buffer, count: n)
        switch verdict {
        case .accept: stats.verdicts["\(direction).accept", default: 0] += 1
        case .acceptRewritten: stats.verdicts["\(direction).rewritten", default: 0] += 1
        case .acceptReplaced: stats.verdicts["\(direction).replaced", default: 0] += 1
        case .drop(let reason): stats.drops[reason.rawValue] += 1
        }
        switch verdict {
        case .drop:
            return (verdict, nil)
        case .accept:
            check(after.elementsEqual(bytes), "an accepted packet was changed (\(direction))")
            guard let v = View(buffer, n) else { fail("an unparseable packet was accepted (\(direction))") }
            switch direction {
            case .outbound:
                check(!(isInternal(v.src) && v.src != external),
                      "an untranslated packet from inside (\(dotted(v.src))) was accepted outbound")
            case .inbound:
                check(!isInternal(v.dst), "an untranslated packet to inside (\(dotted(v.dst))) was accepted inbound")
            case .hairpin:
                break
            }
            return (verdict, bytes)
        case .acceptRewritten:
            guard let v = View(buffer, n) else { fail("a rewritten packet does not parse (\(direction))") }
            check(!headerValidBefore || v.headerValid, "IP header checksum broken by the rewrite (\(direction))")
            if proto != 0, let valid = v.l4Valid {
                let shouldBeValid = notReady ? !(gso && proto == 6) : l4ValidBefore
                check(!shouldBeValid || valid, "transport checksum (protocol \(proto)) broken by the rewrite (\(direction), notReady \(notReady), gso \(gso))")
            }
            checkAddresses(v, direction, replaced: false)
            let out = Array(after)
            if translations & 15 == 0 { checkAgainstSessions(bytes, out, direction) }
            noteDelivered(out, direction)
            return (verdict, out)
        case .acceptReplaced(let replaced):
            check(replaced.count >= 20 && replaced.count <= 65535, "replacement of \(replaced.count) bytes")
            guard let v = View(UnsafeRawPointer(replaced.baseAddress), replaced.count) else { fail("a replacement does not parse") }
            check(v.total == replaced.count, "replacement total length \(v.total) for \(replaced.count) bytes")
            check(v.headerValid, "replacement with a bad IP header checksum")
            check(!v.isFragment, "a replacement that is a fragment")
            if v.proto == 17 {
                // A datagram helper's edit: UDP length and checksum fixed; none stays none.
                check(v.l4Length >= 8 && Int(v.b16(v.ihl + 4)) == v.l4Length, "a UDP replacement whose length field is not its length")
                check(v.l4Valid == true, "replacement with a bad UDP checksum")
                let sentWithout = bytes.count >= 28 && bytes.be16(Int(bytes[0] & 0x0f) * 4 + 6) == 0 && !notReady
                check(!sentWithout || v.b16(v.ihl + 6) == 0, "a datagram sent without a checksum got one")
                checkAddresses(v, direction, replaced: true)
                let out = Array(UnsafeRawBufferPointer(replaced))
                if translations & 15 == 0 { checkAgainstSessions(bytes, out, direction) }
                noteDelivered(out, direction)
                stats.datagramRewrites += 1
                // Media ports offered in rewritten SDP: the m= lines' numbers.
                let text = out[(v.ihl + 8)...]
                if let m = text.firstRange(of: Array("m=audio ".utf8)) {
                    var value = 0
                    for b in text[m.upperBound...].prefix(5) where b >= 48 && b <= 57 { value = value * 10 + Int(b - 48) }
                    if value > 0, value < 65536 { remember(port: UInt16(value)) }
                }
                return (verdict, out)
            }
            check(v.proto == 6 && v.l4Length >= 20, "a replacement that is neither TCP nor UDP")
            let offset = Int(v.b8(v.ihl + 12) >> 4) * 4
            check(offset >= 20 && offset <= v.l4Length, "a replacement with a bad TCP data offset")
            check(v.l4Valid == true, "replacement with a bad TCP checksum")
            check(!v.isFragment, "a replacement that is a fragment")
            checkAddresses(v, direction, replaced: true)
            let out = Array(UnsafeRawBufferPointer(replaced))
            if translations & 15 == 0 { checkAgainstSessions(bytes, out, direction) }
            noteDelivered(out, direction)
            // Ports offered in rewritten lines: numbers, and pairs of comma-separated ones.
            let payload = out[(v.ihl + offset)...]
            var numbers: [Int] = []
            var current = -1
            for b in payload {
                if b >= 48 && b <= 57 { current = current < 0 ? Int(b - 48) : min(current * 10 + Int(b - 48), 1 << 20) } else {
                    if current >= 0 { numbers.append(current) }
                    current = -1
                }
            }
            if numbers.count >= 2, numbers[numbers.count - 1] < 256, numbers[numbers.count - 2] < 256 {
                remember(port: UInt16(numbers[numbers.count - 2] << 8 | numbers[numbers.count - 1]))
            } else if let last = numbers.last, last < 65536 {
                remember(port: UInt16(last))
            }
            return (verdict, out)
        }
    }

    /// The live sessions, by (protocol, internal endpoint, remote endpoint), with their
    /// external port; and the table's own consistency: one external port per internal
    /// endpoint, one internal endpoint per external port, no session twice.
    func liveSessions() -> [SessionKey: UInt16] {
        var sessions: [SessionKey: UInt16] = [:]
        var byInternal: [Endpoint: UInt16] = [:]
        var byExternal: [Endpoint: Endpoint] = [:]
        var addressOnlyRemotes = Set<Endpoint>()
        translator.forEachSession(now: time) { s in
            let key = SessionKey(proto: s.protocolNumber, internalAddress: s.internalAddress.value, internalPort: s.internalPort,
                                 remoteAddress: s.remoteAddress.value, remotePort: s.remotePort)
            check(sessions.updateValue(s.externalPort, forKey: key) == nil, "the same session twice: \(s)")
            if s.isAddressOnly {
                // One internal host per (protocol, remote); no ports at all.
                check(s.internalPort == 0 && s.externalPort == 0 && s.remotePort == 0, "an address-only flow with ports: \(s)")
                check(addressOnlyRemotes.insert(Endpoint(proto: s.protocolNumber, address: s.remoteAddress.value, port: 0)).inserted,
                      "two address-only flows with one (protocol, remote): \(s)")
                return
            }
            let inside = Endpoint(proto: s.protocolNumber, address: s.internalAddress.value, port: s.internalPort)
            if let port = byInternal.updateValue(s.externalPort, forKey: inside) {
                check(port == s.externalPort, "internal endpoint with two external ports \(port) and \(s.externalPort): \(s)")
            }
            if let owner = byExternal.updateValue(inside, forKey: Endpoint(proto: s.protocolNumber, address: 0, port: s.externalPort)) {
                check(owner == inside, "external port \(s.externalPort) of two internal endpoints: \(s)")
            }
        }
        return sessions
    }

    /// A translated packet agrees with the session that translated it (looked up from the
    /// outside, through the listing): the mapping the packet got is the one the table shows.
    func checkAgainstSessions(_ input: [UInt8], _ output: [UInt8], _ direction: Direction) {
        guard let i = input.withUnsafeBytes({ View($0.baseAddress, $0.count) }),
              let o = output.withUnsafeBytes({ View($0.baseAddress, $0.count) }) else { return }
        let proto = i.proto
        func ports(_ v: View, _ bytes: [UInt8]) -> (UInt16, UInt16)? {
            switch proto {
            case 6, 17: return v.l4Length >= 4 ? (bytes.be16(v.ihl), bytes.be16(v.ihl + 2)) : nil
            case 1:
                guard v.l4Length >= 8, bytes[v.ihl] == 0 || bytes[v.ihl] == 8 else { return nil } // echo only
                let id = bytes.be16(v.ihl + 4)
                return (id, id)
            default: return nil
            }
        }
        // Enhanced GRE may go by a PPTP call instead (GRECallTable): no address-only row then.
        let enhancedGRE = proto == 47 && i.l4Length >= 4 && input[i.ihl + 1] & 7 == 1
        if ![1, 6, 17].contains(proto), !enhancedGRE {
            // Address-only: the listing has the (protocol, internal host, remote) row that did it.
            let key: SessionKey
            switch direction {
            case .outbound: key = SessionKey(proto: proto, internalAddress: i.src, internalPort: 0, remoteAddress: i.dst, remotePort: 0)
            case .inbound: key = SessionKey(proto: proto, internalAddress: o.dst, internalPort: 0, remoteAddress: i.src, remotePort: 0)
            case .hairpin: fail("an address-only packet (protocol \(proto)) was hairpinned")
            }
            check(liveSessions()[key] != nil, "\(direction): no live address-only flow for protocol \(proto) \(dotted(key.internalAddress)) <-> \(dotted(key.remoteAddress))")
            return
        }
        if enhancedGRE { return }
        guard let (inSource, inDestination) = ports(i, input), let (outSource, outDestination) = ports(o, output) else { return }
        let query = proto == 1
        let sessions = liveSessions()
        func expect(_ internalAddress: UInt32, _ internalPort: UInt16, _ remote: UInt32, _ remotePort: UInt16, external: UInt16, _ what: String) {
            let key = SessionKey(proto: proto, internalAddress: internalAddress, internalPort: internalPort,
                                 remoteAddress: remote, remotePort: query ? 0 : remotePort)
            guard let port = sessions[key] else {
                fail("\(what): no live session \(dotted(internalAddress)):\(internalPort) <-> \(dotted(remote)):\(remotePort) (protocol \(proto))")
            }
            check(port == external, "\(what): translated with external port \(external), the session has \(port)")
        }
        switch direction {
        case .outbound:
            expect(i.src, inSource, i.dst, inDestination, external: outSource, "outbound")
        case .inbound:
            expect(o.dst, outDestination, i.src, inSource, external: inDestination, "inbound")
        case .hairpin:
            expect(i.src, inSource, external, inDestination, external: outSource, "hairpin sender")
            expect(o.dst, outDestination, external, outSource, external: inDestination, "hairpin target")
        }
    }

    func checkAddresses(_ v: View, _ direction: Direction, replaced: Bool) {
        switch direction {
        case .outbound:
            check(v.src == external, "outbound \(replaced ? "replacement" : "rewrite") leaves from \(dotted(v.src)), not the external address")
        case .inbound:
            check(isInternal(v.dst), "inbound \(replaced ? "replacement" : "rewrite") goes to \(dotted(v.dst)), not inside")
        case .hairpin:
            check(!replaced, "a hairpinned packet was replaced")
            check(v.src == external && isInternal(v.dst), "hairpin rewrite \(dotted(v.src)) -> \(dotted(v.dst))")
        }
    }

    func noteDelivered(_ out: [UInt8], _ direction: Direction) {
        if delivered.count >= 8 { delivered.removeFirst() }
        delivered.append((out, direction))
        guard let v = out.withUnsafeBytes({ View($0.baseAddress, $0.count) }), !v.isFragment else { return }
        if direction == .outbound || direction == .hairpin {
            switch v.proto {
            case 6 where v.l4Length >= 4, 17 where v.l4Length >= 4: remember(port: out.be16(v.ihl))
            case 1 where v.l4Length >= 8: remember(port: out.be16(v.ihl + 4))
            default: break
            }
        }
    }

    // MARK: invariants after every operation

    func checkInvariants(deep: Bool) {
        let t = translator
        let limits = t.configuration.helperLimits
        check(t.sessionCount >= 0 && t.sessionCount <= Setup.maxSessions, "sessionCount \(t.sessionCount) > \(Setup.maxSessions)")
        check(t.mappingCount <= Setup.maxMappings + Setup.staticMappings, "mappingCount \(t.mappingCount) over the caps")
        check(t.mappingCount >= Setup.staticMappings, "mappingCount \(t.mappingCount): a port forward's mapping is gone")
        check(t.helperConnectionCount <= limits.connections, "helper connections \(t.helperConnectionCount) > \(limits.connections)")
        check(t.helperConnectionCount <= t.sessionCount, "more helper connections than sessions")
        check(t.pendingExpectationCount <= limits.expectations, "expectations \(t.pendingExpectationCount) > \(limits.expectations)")
        check(t.addressOnlyFlowCount <= t.configuration.maxAddressOnlyFlows, "address-only flows \(t.addressOnlyFlowCount) over the cap")
        check(t.greCallCount <= limits.greCalls, "PPTP calls \(t.greCallCount) over the cap")

        let c = reassembler.counters
        let fl = reassembler.limits
        check(c.bytesHeld >= 0 && c.bytesHeld <= fl.maxBytes, "reassembler bytesHeld \(c.bytesHeld) > maxBytes \(fl.maxBytes)")
        check(c.fragmentsHeld <= fl.maxFragmentsHeld, "fragments held \(c.fragmentsHeld) > \(fl.maxFragmentsHeld)")
        check(c.datagramsInProgress <= fl.maxDatagrams, "datagrams \(c.datagramsInProgress) > \(fl.maxDatagrams)")
        check(c.fragmentsHeld == held.count, "reassembler holds \(c.fragmentsHeld) fragments, the caller \(held.count) tokens")
        check((c.fragmentsHeld == 0) == (c.datagramsInProgress == 0), "held fragments \(c.fragmentsHeld) vs datagrams \(c.datagramsInProgress)")
        check(c.bytesHeld == 0 || c.fragmentsHeld > 0, "bytes held without fragments")
        if let deadline = reassembler.nextDeadline {
            check(deadline.nanoseconds <= now &+ fl.timeout.nanoseconds, "a datagram deadline beyond now + timeout")
        }

        if deep {
            var perHost = [Int](repeating: 0, count: 256)
            var live = 0
            t.forEachSession(now: time) { s in
                live += 1
                if s.isAddressOnly { return } // capped on their own (below), not per host
                check(isInternal(s.internalAddress.value), "a session of \(s.internalAddress), not inside")
                check(s.externalAddress.value == external, "a session via \(s.externalAddress)")
                check(s.expiresIn.nanoseconds > 0, "a listed session has expired")
                perHost[Int(s.internalAddress.value & 0xff)] += 1
            }
            check(live <= t.sessionCount + t.addressOnlyFlowCount, "\(live) live flows listed, \(t.sessionCount) sessions and \(t.addressOnlyFlowCount) address-only")
            checkNoSessionOnLocalPorts()
            _ = liveSessions()
            for (host, n) in perHost.enumerated() where n > Setup.maxSessionsPerHost {
                fail("192.0.2.\(host) has \(n) sessions > \(Setup.maxSessionsPerHost)")
            }
        }
        checkEvents()
    }

    /// NAT events (NATEvent.swift), drained after every operation: while none was lost, the
    /// creations minus the removals are exactly the mappings and sessions in the tables (so
    /// no path makes or frees a row unrecorded), and each reason belongs to its kind.
    func checkEvents() {
        translator.drainEvents { e in
            if e.kind.isPortBlock {
                eventBlocks += e.kind == .portBlockAllocated ? 1 : -1
                check(translator.configuration.portBlocks != nil, "a port block event with blocks off")
                check(e.kind.isCreation == (e.reason.rawValue < 16), "event \(e.kind) with reason \(e.reason)")
                // The event's ports are the block: inside the 40000-40127 range, one block long.
                let size = translator.configuration.portBlocks?.size ?? 1
                let first = Int(e.externalPort), last = Int(e.remotePort)
                check(first >= 40000 && (first - 40000) % size == 0 && last == first + size - 1 && last <= 40127,
                      "a port block event for \(first)-\(last)")
                check(e.protocolNumber == 0 && e.internalPort == 0 && e.internalAddress & 0xffff_ff00 == ip(192, 0, 2, 0),
                      "a port block event of protocol \(e.protocolNumber), internal \(e.internalAddress):\(e.internalPort)")
                return
            }
            if e.kind.isAddressOnly {
                eventAddressOnly += e.kind == .addressOnlyCreated ? 1 : -1
                check(e.kind.isCreation == (e.reason.rawValue < 16), "event \(e.kind) with reason \(e.reason)")
                check(![IPProtocolNumber.tcp, IPProtocolNumber.udp, IPProtocolNumber.icmp].contains(e.protocolNumber),
                      "an address-only event of protocol \(e.protocolNumber)")
                check(e.internalPort == 0 && e.externalPort == 0 && e.remotePort == 0, "an address-only event with a port")
                check(isInternal(e.internalAddress), "an address-only event of \(e.internalAddress)")
                check(e.externalAddress == Setup.external || e.externalAddress == Setup.otherExternal,
                      "an address-only event via \(e.externalAddress)")
                return
            }
            switch e.kind {
            case .mappingCreated: eventMappings += 1
            case .mappingRemoved: eventMappings -= 1
            case .sessionCreated: eventSessions += 1
            case .sessionRemoved: eventSessions -= 1
            case .sessionEstablished, .portBlockAllocated, .portBlockReleased, .addressOnlyCreated, .addressOnlyRemoved, .helperStateChanged: break
            case .redirectCreated, .redirectRemoved: fail("a redirect event from a translator without --redirect")
            }
            check((e.kind.isCreation || e.kind == .sessionEstablished || e.kind == .helperStateChanged) == (e.reason.rawValue < 16), "event \(e.kind) with reason \(e.reason)")
            // The fast path's cue: only plain TCP/UDP sessions, never ICMP.
            check(e.kind != .sessionEstablished || e.protocolNumber != IPProtocolNumber.icmp, "an established event for ICMP")
            check([IPProtocolNumber.tcp, IPProtocolNumber.udp, IPProtocolNumber.icmp].contains(e.protocolNumber),
                  "an event of protocol \(e.protocolNumber)")
            check(e.kind.isSession || (e.remoteAddress == 0 && e.remotePort == 0), "a mapping event with a remote")
        }
        guard translator.counters[.natEventsLost] == 0 else { return }
        check(eventMappings == translator.mappingCount, "events say \(eventMappings) mappings, the table has \(translator.mappingCount)")
        check(eventSessions == translator.sessionCount, "events say \(eventSessions) sessions, the table has \(translator.sessionCount)")
        check(eventAddressOnly == translator.addressOnlyFlowCount,
              "events say \(eventAddressOnly) address-only rows, the table has \(translator.addressOnlyFlowCount)")
        check(eventBlocks == translator.portBlockCount,
              "events say \(eventBlocks) port blocks, the table has \(translator.portBlockCount)")
    }

    /// The router's own ports (issue #20 item 1): a socket table in the kernel's text (lines
    /// built from fields, cut short, or raw bytes) and an ip_local_port_range text, parsed by
    /// LocalSocketTable and handed to the translator, which must then have no dynamic session
    /// on any of them (checked here and in every deep check after).
    func localPortsOp(_ r: inout Reader, _ mods: UInt8) {
        currentOp = "local-ports"
        let v6 = mods & 8 != 0
        func word(_ a: UInt32, upper: Bool) -> String {
            let hex = String(UInt32(bigEndian: a), radix: 16, uppercase: upper)
            return String(repeating: "0", count: 8 - hex.count) + hex
        }
        var text: [UInt8] = []
        var lineCount = 0
        for i in 0..<Int(r.u8() & 15) {
            lineCount += 1
            let b = r.u8()
            if b & 0x80 != 0 {
                text += r.bytes(Int(r.u8() & 0x7f)) + [10]
                continue
            }
            let address = [external, 0, Setup.otherExternal, ip(127, 0, 0, 1)][Int(b & 3)]
            let upper = b & 0x20 == 0
            let local = v6 ? "0000000000000000" + (b & 4 != 0 ? word(0x0000_ffff, upper: upper) : "00000000") + word(address, upper: upper)
                : word(address, upper: upper)
            let p = String(port(&r), radix: 16)
            var line = Array("  \(i): \(local):\(String(repeating: "0", count: 4 - p.count) + p) 00000000:0000 \(b & 8 != 0 ? "0A" : "07") 00000000:00000000 00:00000000 00000000     0        0 1 2\n".utf8)
            if b & 0x40 != 0 { line = Array(line.prefix(Int(r.u8()) % line.count)) }
            text += line
        }
        var set = LocalPortSet()
        let protocolNumber = mods & 16 != 0 ? IPProtocolNumber.udp : IPProtocolNumber.tcp
        let outcome = text.withUnsafeBytes {
            LocalSocketTable.addHeldPorts($0, family: v6 ? .ipv6 : .ipv4, protocolNumber: protocolNumber, address: IPv4Address(external), into: &set)
        }
        let lines = text.split(separator: 10, omittingEmptySubsequences: false).count
        check(outcome.held <= outcome.sockets && outcome.sockets + outcome.malformed <= max(lines, lineCount + 1),
              "socket table: \(outcome) from \(lines) lines")
        check(set.count(protocolNumber: protocolNumber) <= outcome.held, "more ports held than sockets read")
        let rangeBytes: [UInt8]
        switch r.u8() & 3 {
        case 0: rangeBytes = []
        case 1: rangeBytes = r.bytes(Int(r.u8() & 15))
        default: rangeBytes = Array("\(port(&r))\t\(port(&r))\n".utf8)
        }
        let reserved = rangeBytes.withUnsafeBytes { LocalSocketTable.parsePortRange($0) }
        if let reserved { check(reserved.lowerBound >= 1, "a reserved range from port 0") }
        translator.setLocalPorts(set, reserved: reserved)
        localHeld = set
        localReserved = reserved
        checkNoSessionOnLocalPorts()
    }

    func checkNoSessionOnLocalPorts() {
        translator.forEachSession(now: time) { s in
            guard s.protocolNumber == IPProtocolNumber.tcp || s.protocolNumber == IPProtocolNumber.udp else { return }
            let local = localHeld.contains(protocolNumber: s.protocolNumber, port: s.externalPort)
                || localReserved?.contains(s.externalPort) == true
            let forwarded = Setup.forwards.contains { $0.protocolNumber == s.protocolNumber && $0.externalPorts.contains(s.externalPort) }
            check(!local || forwarded, "a dynamic session on the router's own port \(s.protocolNumber)/\(s.externalPort)")
        }
    }

    // MARK: fragments

    func offer(_ fragment: [UInt8], direction: Direction) {
        let token = nextToken
        nextToken &+= 1
        if nextToken == 0 { nextToken = 1 }
        var dropped: [UInt32] = []
        let n = fragment.count
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: max(n, 1), alignment: 1)
        defer { buffer.deallocate() }
        fragment.withUnsafeBytes { if n > 0 { buffer.copyMemory(from: $0.baseAddress!, byteCount: n) } }
        let key: FragmentKey? = n >= 20 ? FragmentKey(src: fragment.be32(12), dst: fragment.be32(16), id: fragment.be16(4), proto: fragment[9],
                                                      direction: direction) : nil
        // As the engine does (PacketPath): the header-only spoofing checks come first.
        if n >= 20, fragment[0] >> 4 == 4,
           let reason = translator.screenFragment(UnsafeMutableRawBufferPointer(start: buffer, count: n), direction: direction.packetDirection) {
            check(direction == .inbound && [.spoofedSource, .martianSource, .inboundToInternalAddress].contains(reason), "screenFragment dropped a \(direction) fragment: \(reason)")
            stats.fragmentOutcomes["screened_\(reason)", default: 0] += 1
            return
        }
        let outcome = reassembler.offer(UnsafeRawBufferPointer(start: buffer, count: n), token: token, direction: direction.packetDirection,
                                        now: time) { dropped.append($0) }
        check(UnsafeRawBufferPointer(start: buffer, count: n).elementsEqual(fragment), "offer changed the fragment")

        var seen = Set<UInt32>()
        for t in dropped {
            check(seen.insert(t).inserted, "token \(t) reported twice")
            if t == token { continue }
            check(held.removeValue(forKey: t) != nil, "dropToken reported \(t), which is not held")
        }
        switch outcome {
        case .held: stats.fragmentOutcomes["held", default: 0] += 1
        case .complete: stats.fragmentOutcomes["complete", default: 0] += 1
        case .drop(let reason): stats.fragmentOutcomes["\(reason)", default: 0] += 1
        }
        switch outcome {
        case .held:
            check(!seen.contains(token), "a held fragment was also reported dropped")
            guard let key else { fail("an unparseable fragment is held") }
            held[token] = key
        case .drop:
            check(!seen.contains(token), "the offered token was reported through dropToken on .drop")
        case .complete(let datagram, let acceptToken):
            if acceptToken == token {
                check(!seen.contains(token), "the accepted token was also dropped")
            } else {
                check(seen.contains(token), "the offered fragment was neither accepted nor reported dropped")
                check(held.removeValue(forKey: acceptToken) != nil, "acceptToken \(acceptToken) is not held")
            }
            guard let key else { fail("an unparseable fragment completed a datagram") }
            check(!held.values.contains(key), "tokens of a completed datagram are still held")
            check(datagram.count >= 20 && datagram.count <= 65535, "datagram of \(datagram.count) bytes")
            guard let v = View(UnsafeRawPointer(datagram.baseAddress), datagram.count) else { fail("reassembled datagram does not parse") }
            check(v.total == datagram.count, "datagram total length \(v.total) for \(datagram.count) bytes")
            check(v.headerValid, "datagram with a bad header checksum")
            check(v.b16(6) & 0x3fff == 0, "a reassembled datagram is still a fragment")
            check(FragmentKey(src: v.src, dst: v.dst, id: v.b16(4), proto: v.proto, direction: direction) == key, "datagram of another key")
            let whole = Array(UnsafeRawBufferPointer(datagram))
            // As the engine does: translate the datagram (here a copy in an exact buffer).
            translate(whole, direction)
        }
    }

    func fragments(of packet: [UInt8], unit: Int) -> [[UInt8]] {
        guard packet.count >= 20 else { return [packet] }
        let ihl = min(max(Int(packet[0] & 0x0f) * 4, 20), packet.count)
        let header = Array(packet[0..<ihl])
        let payload = Array(packet[ihl...])
        var pieces: [[UInt8]] = []
        var offset = 0
        repeat {
            let end = min(offset + unit, payload.count)
            var h = header
            h.put16(UInt16(truncatingIfNeeded: ihl + end - offset), at: 2)
            let more: UInt16 = end < payload.count ? 0x2000 : 0
            h.put16((header.be16(6) & 0x4000) | more | UInt16(truncatingIfNeeded: offset / 8), at: 6)
            h.put16(0, at: 10)
            h.put16(checksum(h, from: 0, count: ihl), at: 10)
            pieces.append(h + payload[offset..<end])
            offset = end
        } while offset < payload.count
        return pieces
    }

    // MARK: operations

    func run(_ r: inout Reader) {
        var count = 0
        while !r.exhausted && count < 400 {
            count += 1
            ops += 1
            let op = r.u8()
            let mods = op >> 3
            now &+= 1_000_000
            switch op & 7 {
            case 0: rawPacket(&r, mods)
            case 1: craftedPacket(&r, mods)
            case 2: flowSegment(&r, mods)
            case 3: fragmentOp(&r, mods)
            case 4: timeOp(&r, mods)
            case 5: replyOp(&r, mods)
            case 6: flood(&r, mods)
            default: control(&r, mods)
            }
            checkInvariants(deep: ops & 7 == 0)
        }
    }

    func rawPacket(_ r: inout Reader, _ mods: UInt8) {
        currentOp = "raw"
        let direction = Direction.from(mods)
        var bytes = r.bytes(Int(r.u16() & 0x7ff))
        if mods & 4 != 0 { setRoleAddresses(&bytes, direction, sel: r.u8()) }
        translate(bytes, direction, notReady: mods & 8 != 0, gso: mods & 16 != 0)
    }

    /// Raw `bytes` (padded to an IPv4 header) made to carry the addresses of the direction's
    /// roles that `sel` picks (low nibble source, high nibble destination), no fragment bits
    /// but DF, checksums fixed: so that raw garbage reaches the tables.
    func setRoleAddresses(_ bytes: inout [UInt8], _ direction: Direction, sel: UInt8) {
        if bytes.count < 20 { bytes += [UInt8](repeating: 0, count: 20 - bytes.count) }
        let (a, b) = roles(direction)
        bytes.put32(address(a, sel & 15), at: 12)
        bytes.put32(address(b, sel >> 4), at: 16)
        bytes.put16(bytes.be16(6) & 0x4000, at: 6)
        Build.fix(&bytes)
    }

    /// A packet built from fields: addresses and ports from small sets, valid checksums
    /// unless asked otherwise, application payloads, ICMP errors quoting live flows.
    func craft(_ r: inout Reader, _ direction: Direction) -> [UInt8] {
        let b1 = r.u8()
        let sel = r.u8()
        let (roleA, roleB) = roles(direction)
        let src = address(roleA, sel & 15)
        let dst = address(roleB, sel >> 4)
        let sum: L4Sum = [.valid, .valid, .pseudo, .garbage(0xdead)][Int(b1 >> 2) & 3]
        let weird = b1 & 0x80 != 0 ? r.u8() : 0
        var tcpOptions: [UInt8] = []
        if weird & 0x80 != 0 { tcpOptions = r.bytes(Int(r.u8() % 41)) }
        let own = direction == .inbound ? dst : src
        var l4: [UInt8]
        var proto: UInt8
        switch b1 & 3 {
        case 0:
            proto = 6
            let sport = port(&r), dport = port(&r)
            let flags = r.u8()
            let seq = r.u32(), ack = r.u32()
            let payload = b1 & 0x10 != 0 ? Text.payload(&r, own: own, external: external) : (b1 & 0x20 != 0 ? r.bytes(Int(r.u8())) : [])
            l4 = Build.tcp(src, sport, dst, dport, flags: flags, seq: seq, ack: ack, options: tcpOptions, payload: payload, sum: sum)
        case 1:
            proto = 17
            let sport = port(&r), dport = port(&r)
            let payload = b1 & 0x10 != 0 ? Text.datagram(&r, own: own, external: external) : r.bytes(Int(r.u8()))
            l4 = Build.udp(src, sport, dst, dport, payload: payload, sum: sum)
            if weird & 0x10 != 0 { l4.put16(r.u16(), at: 4) }
        case 2:
            proto = 1
            let t = r.u8()
            let type: UInt8 = [8, 0, 3, 11, 12, 5, 13, 3][Int(t & 7)]
            let code = t >> 3 == 31 ? r.u8() : (t >> 3) & 7
            if type == 3 || type == 11 || type == 12 {
                // An error quoting a packet of a flow: a delivered one, or one crafted here.
                let quote: [UInt8]
                let q = r.u8()
                if q & 1 == 0, !delivered.isEmpty {
                    quote = delivered[Int(q >> 1) % delivered.count].bytes
                } else {
                    // Inbound errors quote what we sent (from the external address); outbound
                    // ones quote what an inside host received.
                    let qsel = r.u8()
                    let qsrc = direction == .inbound ? external : address(.outside, qsel & 15)
                    let qdst = direction == .inbound ? address(.outside, qsel >> 4) : address(.inside, qsel >> 4)
                    let qp = [UInt8(6), 17, 1, 17, 50, 47, 33, 253][Int(q >> 1) & 7]
                    let sp = port(&r), dp = port(&r)
                    let inner: [UInt8] = switch qp {
                    case 6: Build.tcp(qsrc, sp, qdst, dp, flags: 0x02, seq: 1, ack: 0)
                    case 17: Build.udp(qsrc, sp, qdst, dp, payload: [1, 2, 3, 4])
                    case 1: Build.icmp(type: q & 0x10 != 0 ? 0 : 8, code: 0, rest: UInt32(sp) << 16 | 1, payload: [])
                    default: r.bytes(8) // address-only: ESP, GRE, DCCP, 253
                    }
                    quote = Build.packet(qsrc, qdst, proto: qp, l4: inner)
                }
                let keep = min(quote.count, 28 + Int(r.u8() & 0x3f))
                l4 = Build.icmp(type: type, code: code, rest: 0, payload: Array(quote[0..<keep]), sum: sum)
            } else {
                let id = port(&r)
                l4 = Build.icmp(type: type, code: code, rest: UInt32(id) << 16 | UInt32(r.u8()), payload: r.bytes(Int(r.u8() & 0x3f)), sum: sum)
            }
        default:
            // Protocols without ports (address-only NAT), and the port protocols with junk.
            proto = [47, 50, 132, 0, 6, 17, 1, 255, 33, 136, 253, 51][Int(b1 >> 4) % 12]
            l4 = r.bytes(Int(r.u8()))
            if proto == 47, b1 & 0x08 != 0 {
                // Enhanced GRE (PPTP) with a call ID the control connection may have set up.
                let callID: UInt16 = [1, 2, 100, 101][Int(r.u8() & 3)]
                l4 = [0x30, 0x01, 0x88, 0x0b, 0, UInt8(min(l4.count, 255)), UInt8(callID >> 8), UInt8(callID & 0xff), 0, 0, 0, 1] + l4
            }
        }
        var options: [UInt8] = []
        if weird & 1 != 0 { options = r.bytes(Int(r.u8() & 0x0f) * 4); while options.count % 4 != 0 { options.append(1) } }
        var frag: UInt16 = 0x4000
        if weird & 2 != 0 { frag = r.u16() }
        var packet = Build.ipv4(src: src, dst: dst, proto: proto, l4: l4, id: UInt16(r.u8()), frag: frag, ttl: 64, options: options)
        if weird & 4 != 0 { packet[11] ^= 0x5a } // bad header checksum
        if weird & 8 != 0 { packet += r.bytes(Int(r.u8() & 0x0f)) } // link-layer padding
        if weird & 0x20 != 0 { packet[0] = r.u8() }
        if weird & 0x40 != 0 { packet.put16(r.u16(), at: 2) }
        return packet
    }

    func craftedPacket(_ r: inout Reader, _ mods: UInt8) {
        currentOp = "craft"
        let direction = Direction.from(mods)
        let packet = craft(&r, direction)
        translate(packet, direction, notReady: mods & 4 != 0, gso: mods & 8 != 0)
    }

    /// A segment of one of the tracked helper connections, in order unless asked otherwise.
    func flowSegment(_ r: inout Reader, _ mods: UInt8) {
        currentOp = "flow"
        let b = r.u8()
        let index = Int(b & 7) == 7 && mods & 0x40 != 0 ? 8 : Int(b & 7) // 8: the PPTP control connection
        let fromServer = b & 8 != 0
        let action = (b >> 4) & 7
        let notReady = b & 0x80 != 0
        var f = flows[index]
        var flags: UInt8 = 0x10
        var seq = fromServer ? f.serverNext : f.clientNext
        var payload: [UInt8] = []
        var options: [UInt8] = []
        var pieces = 1
        switch action {
        case 0:
            seq = r.u32()
            flags = fromServer ? 0x12 : 0x02
            if fromServer { f.serverNext = seq &+ 1 } else {
                f.clientNext = seq &+ 1
                f.clientAck = 0
            }
        case 1, 2:
            flags = 0x18
            let own = fromServer ? f.server : f.client
            // SIP over TCP on 5060 (messages, several in a row, cut anywhere by `pieces`).
            func text(_ r: inout Reader) -> [UInt8] {
                f.serverPort == 5060 ? Text.sip(&r, own: own, external: self.external)
                    : f.serverPort == 1723 ? Text.pptp(&r) : Text.payload(&r, own: own, external: self.external)
            }
            payload = text(&r)
            if mods & 1 != 0 { payload += text(&r) }
            if mods & 2 != 0 { pieces = 2 + Int(mods >> 2 & 1) }
        case 3:
            if mods & 1 != 0 {
                // A SACK block around what this side has received.
                let ack = fromServer ? f.serverAck : f.clientAck
                let l = ack &+ UInt32(r.u8()) &* 8, rr = l &+ UInt32(r.u8()) &* 8
                options = [1, 1, 5, 10]
                options.append32(l); options.append32(rr)
            }
        case 4: flags = 0x11
        case 5: flags = r.u8() & 1 == 0 ? 0x04 : 0x14
        case 6:
            let last = fromServer ? f.lastServer : f.lastClient
            seq = last.seq
            payload = last.payload
            flags = 0x18
        default:
            let shift = Int32(Int8(bitPattern: r.u8())) * (mods & 1 != 0 ? 8 : 1)
            seq = seq &+ UInt32(bitPattern: shift)
            payload = Text.payload(&r, own: fromServer ? f.server : f.client, external: external)
            flags = 0x18
        }
        let ack = fromServer ? f.serverAck : f.clientAck
        if action != 0 && action != 6 && action != 7 {
            if fromServer { f.lastServer = (seq, payload) } else { f.lastClient = (seq, payload) }
        }
        // Advance the sender's stream past what it sends now (SYN and FIN count one).
        let advance = UInt32(payload.count) &+ (flags & 0x01 != 0 ? 1 : 0)
        if action != 0 && action != 6 && action != 7 {
            if fromServer { f.serverNext = seq &+ advance } else { f.clientNext = seq &+ advance }
        }

        // Who sends to whom, which way.
        let src, dst: UInt32
        let sport, dport: UInt16
        let direction: Direction
        switch (f.kind, fromServer) {
        case (.clientInside, false): (src, sport, dst, dport, direction) = (f.client, f.clientPort, f.server, f.serverPort, .outbound)
        case (.clientInside, true):
            (src, sport, dst, dport, direction) = (f.server, f.serverPort, external, f.externalPort != 0 ? f.externalPort : f.clientPort, .inbound)
        case (.serverInside, false): (src, sport, dst, dport, direction) = (f.client, f.clientPort, external, f.serverPort, .inbound)
        case (.serverInside, true): (src, sport, dst, dport, direction) = (f.server, f.serverPort, f.client, f.clientPort, .outbound)
        case (.hairpin, false): (src, sport, dst, dport, direction) = (f.client, f.clientPort, external, f.serverPort, .hairpin)
        case (.hairpin, true):
            (src, sport, dst, dport, direction) = (f.server, f.serverPort, external, f.externalPort != 0 ? f.externalPort : f.clientPort, .hairpin)
        }

        // Send the payload in `pieces` segments (a line split across segments).
        var cuts: [Int] = [0]
        if pieces > 1, payload.count > 1 {
            for _ in 1..<pieces { cuts.append(Int(r.u8()) % payload.count) }
        }
        cuts.append(payload.count)
        cuts.sort()
        for i in 0..<(cuts.count - 1) {
            let part = Array(payload[cuts[i]..<cuts[i + 1]])
            if i > 0 && part.isEmpty { continue }
            let last = i == cuts.count - 2
            let segmentFlags = last ? flags : flags & ~0x01
            let withAck = segmentFlags & 0x02 != 0 && segmentFlags & 0x10 == 0 ? 0 : ack
            let tcp = Build.tcp(src, sport, dst, dport, flags: segmentFlags, seq: seq &+ UInt32(cuts[i]), ack: withAck,
                                options: options, payload: part, sum: notReady ? .pseudo : .valid)
            let packet = Build.packet(src, dst, proto: 6, l4: tcp)
            let (_, out) = translate(packet, direction, notReady: notReady)
            guard let out, let v = out.withUnsafeBytes({ View($0.baseAddress, $0.count) }), v.proto == 6, v.l4Length >= 20 else { continue }
            // The receiver now has the bytes up to the end of what was delivered.
            let outSeq = out.be32(v.ihl + 4)
            let outFlags = out[v.ihl + 13]
            let dataLength = v.l4Length - Int(out[v.ihl + 12] >> 4) * 4
            let end = outSeq &+ UInt32(max(dataLength, 0)) &+ (outFlags & 0x03 != 0 ? 1 : 0)
            if fromServer {
                if f.clientAck == 0 || seqLT(f.clientAck, end) { f.clientAck = end }
            } else {
                if f.serverAck == 0 || seqLT(f.serverAck, end) { f.serverAck = end }
                if f.kind != .serverInside { f.externalPort = out.be16(v.ihl) }
            }
        }
        flows[index] = f
    }

    func fragmentOp(_ r: inout Reader, _ mods: UInt8) {
        currentOp = "fragment"
        let direction = Direction.from(mods >> 2)
        switch mods & 3 {
        case 0:
            offer(r.bytes(Int(r.u16() & 0x7ff)), direction: direction)
        case 1:
            let sel = r.u8()
            let b = r.u8()
            let (ra, rb) = roles(direction)
            let id: UInt16 = b & 4 != 0 ? r.u16() : [1, 2, 3, 4][Int(b & 3)]
            let proto: UInt8 = [17, 6, 1, 47][Int(b >> 3) & 3]
            let o = r.u8()
            let offset: UInt16 = o == 0xff ? r.u16() & 0x1fff : UInt16(o & 0x7f)
            let len = r.u8()
            var length = Int(len & 0x7f) * 8
            if len & 0x80 != 0 { length += Int(r.u8() & 7) }
            var payload = r.bytes(length)
            payload += [UInt8](repeating: 0x41, count: length - payload.count)
            let flags: UInt16 = (b & 0x20 != 0 ? 0x2000 : 0) | (b & 0x40 != 0 ? 0x4000 : 0)
            let fragment = Build.ipv4(src: address(ra, sel & 15), dst: address(rb, sel >> 4), proto: proto, l4: payload,
                                      id: id, frag: flags | offset, options: b & 0x80 != 0 ? [1, 1, 1, 0] : [])
            offer(fragment, direction: direction)
        default:
            var packet: [UInt8]
            if mods & 1 == 0 {
                packet = r.bytes(Int(r.u16() & 0x7ff))
                setRoleAddresses(&packet, direction, sel: r.u8())
            } else {
                packet = craft(&r, direction)
            }
            let plan = r.u8()
            var pieces = fragments(of: packet, unit: (Int(plan & 15) + 1) * 8)
            switch (plan >> 4) & 7 {
            case 1: pieces.reverse()
            case 2: if pieces.count > 1 { pieces.append(pieces[0]) } // a duplicate
            case 3: if pieces.count > 2 { pieces.remove(at: 1) } // one lost
            case 4: if pieces.count > 1 { pieces.swapAt(0, pieces.count - 1) }
            case 5:
                if pieces.count > 1 { // an overlapping copy with other bytes
                    var copy = pieces[0]
                    copy[copy.count - 1] ^= 0xff
                    pieces.insert(copy, at: 1)
                }
            case 6: if !pieces.isEmpty { pieces.removeLast() } // never completes
            default: break
            }
            for piece in pieces.prefix(32) { offer(piece, direction: direction) }
        }
    }

    func timeOp(_ r: inout Reader, _ mods: UInt8) {
        currentOp = "time"
        let table: [UInt64] = [0, 1, 100, 1000, 5000, 10_000, 20_000, 29_999, 30_001, 60_000, 121_000, 240_000, 300_000, 600_000, 7_441_000]
        let i = Int(mods & 15)
        let ms: UInt64 = i < table.count ? table[i] : UInt64(r.u32() & 0x0fff_ffff)
        now &+= ms * 1_000_000
        if mods & 16 != 0 {
            let budgets = [0, 1, 7, 64, 256, 4096, -5, Int.max]
            let b = r.u8()
            let budget = budgets[Int(b & 7)]
            let removed = translator.expire(now: time, budget: budget)
            check(removed >= 0 && removed <= max(0, min(budget, Setup.maxSessions)), "expire removed \(removed) with budget \(budget)")
            if budget >= Setup.maxSessions {
                // A full sweep leaves nothing expired behind.
                let again = translator.expire(now: time, budget: Setup.maxSessions)
                check(again == 0, "a second full sweep removed \(again) more")
            }
            var dropped: [UInt32] = []
            let fragmentBudget = [1, 2, 64, 0][Int(b >> 3) & 3]
            reassembler.expire(now: time, budget: fragmentBudget) { dropped.append($0) }
            for t in dropped { check(held.removeValue(forKey: t) != nil, "expire reported \(t), which is not held") }
            if fragmentBudget >= Setup.fragmentLimits.maxDatagrams, let deadline = reassembler.nextDeadline {
                check(deadline.nanoseconds > now, "a timed-out datagram survived a full expire")
            }
        }
    }

    /// A reply to a delivered packet (addresses and ports swapped, the other way), or an
    /// ICMP error about it, or the same packet again.
    func replyOp(_ r: inout Reader, _ mods: UInt8) {
        currentOp = "reply"
        guard !delivered.isEmpty else { return }
        let (out, was) = delivered[Int(mods & 7) % delivered.count]
        guard let v = out.withUnsafeBytes({ View($0.baseAddress, $0.count) }) else { return }
        let back: Direction = was == .outbound ? .inbound : (was == .inbound ? .outbound : .hairpin)
        let src = v.dst, dst = v.src
        let l4 = Array(out[v.ihl..<v.total])
        switch mods >> 3 {
        case 0, 2:
            var reply: [UInt8]
            switch v.proto {
            case 6 where l4.count >= 20:
                let flags = mods >> 3 == 2 ? r.u8() : 0x12
                let ack = l4.be32(4) &+ UInt32(max(0, l4.count - Int(l4[12] >> 4) * 4)) &+ 1
                reply = Build.tcp(src, l4.be16(2), dst, l4.be16(0), flags: flags, seq: r.u32(), ack: ack, payload: r.bytes(Int(r.u8() & 0x3f)))
            case 17 where l4.count >= 8:
                reply = Build.udp(src, l4.be16(2), dst, l4.be16(0), payload: r.bytes(Int(r.u8())))
            case 1 where l4.count >= 8:
                let type: UInt8 = l4[0] == 8 ? 0 : (l4[0] == 0 ? 8 : l4[0])
                reply = Build.icmp(type: type, code: 0, rest: l4.be32(4), payload: Array(l4[8...]))
            default:
                return
            }
            translate(Build.packet(src, dst, proto: v.proto, l4: reply), back, notReady: r.u8() & 1 != 0)
        case 1:
            // An ICMP error about it, from its destination (or, outbound, from the router).
            let keep = min(v.total, v.ihl + 8 + Int(r.u8() & 0x1f))
            let type: UInt8 = [3, 11, 12, 3][Int(r.u8() & 3)]
            let errorSource = back == .outbound && r.u8() & 1 != 0 ? external : src
            let icmp = Build.icmp(type: type, code: type == 3 ? 4 : 0, rest: 1400, payload: Array(out[0..<keep]))
            translate(Build.packet(errorSource, dst, proto: 1, l4: icmp), back)
        default:
            // The same packet again, as it was delivered (a packet looping back).
            translate(out, Direction.from(r.u8()))
        }
    }

    func flood(_ r: inout Reader, _ mods: UInt8) {
        currentOp = "flood"
        let n = Int(r.u8() & 63) + 1
        let sel = r.u8()
        let base = r.u16()
        for i in 0..<n {
            let p = base &+ UInt16(i)
            let inside = Setup.internalHosts[Int(sel & 3)]
            let remote = Setup.remoteHosts[Int(sel >> 2) & 3]
            switch mods & 7 {
            case 0: translate(Build.packet(inside, remote, proto: 17, l4: Build.udp(inside, p, remote, 53, payload: [1])), .outbound)
            case 1: translate(Build.packet(inside, remote, proto: 6, l4: Build.tcp(inside, p, remote, 80, flags: 0x02, seq: UInt32(p), ack: 0)), .outbound)
            case 2: translate(Build.packet(inside, remote, proto: 1, l4: Build.icmp(type: 8, code: 0, rest: UInt32(p) << 16, payload: [])), .outbound)
            case 3:
                let forward = UInt16(5000 + i % 4)
                translate(Build.packet(remote, external, proto: 17, l4: Build.udp(remote, p, external, forward, payload: [2])), .inbound)
            case 4:
                let target: UInt16 = sel & 0x40 != 0 ? 8080 : 5000
                let proto: UInt8 = target == 8080 ? 6 : 17
                let l4 = proto == 6 ? Build.tcp(inside, p, external, target, flags: 0x02, seq: 1, ack: 0) : Build.udp(inside, p, external, target, payload: [3])
                translate(Build.packet(inside, external, proto: proto, l4: l4), .hairpin)
            case 5:
                let frag = Build.ipv4(src: ip(198, 51, 100, UInt8(truncatingIfNeeded: i & 7)), dst: external, proto: 17,
                                      l4: [UInt8](repeating: UInt8(i), count: 8 * (1 + Int(sel & 31))), id: p, frag: 0x2000)
                offer(frag, direction: .inbound)
            case 6:
                let host = ip(192, 0, 2, UInt8(truncatingIfNeeded: Int(sel) + i))
                translate(Build.packet(host, remote, proto: 17, l4: Build.udp(host, 40000, remote, 53, payload: [4])), .outbound)
            default:
                let dport = 1 &+ UInt16(truncatingIfNeeded: Int(base) + i)
                translate(Build.packet(inside, remote, proto: 17, l4: Build.udp(inside, 40050, remote, dport, payload: [5])), .outbound)
            }
        }
    }

    func control(_ r: inout Reader, _ mods: UInt8) {
        currentOp = "control"
        switch mods & 7 {
        case 0:
            translator.setExternalAddress(IPv4Address(Setup.external))
            check(translator.configuration.externalAddress?.value == Setup.external, "external address not set")
        case 1:
            let before = translator.configuration.externalAddress
            translator.setExternalAddress(IPv4Address(Setup.otherExternal))
            if before?.value != Setup.otherExternal {
                check(translator.sessionCount == 0, "sessions survived a WAN address change")
                check(translator.addressOnlyFlowCount == 0, "address-only flows survived a WAN address change")
                check(translator.greCallCount == 0, "PPTP calls survived a WAN address change")
                check(translator.mappingCount == Setup.staticMappings, "dynamic mappings survived a WAN address change")
                check(translator.pendingExpectationCount == 0 && translator.helperConnectionCount == 0, "helper state survived a WAN address change")
            }
        case 2:
            if mods & 8 != 0 { translator.setExternalAddress(nil) }
        case 3:
            var dropped: [UInt32] = []
            reassembler.removeAll { dropped.append($0) }
            check(Set(dropped) == Set(held.keys) && dropped.count == held.count, "removeAll did not report exactly the held tokens")
            held.removeAll()
            check(reassembler.bytesHeld == 0 && reassembler.datagramsInProgress == 0, "removeAll left state behind")
        case 4:
            localPortsOp(&r, mods)
        case 5:
            newFlowRateOp(&r, mods)
        case 6:
            redirectOp(&r, mods)
        default:
            checkInvariants(deep: true)
        }
    }

    /// `--max-new-flows-per-host` text through NewFlowRate's parser; a rate it accepts (or
    /// none) becomes the translator's by reconfiguration, so floods meet the limit too.
    func newFlowRateOp(_ r: inout Reader, _ mods: UInt8) {
        currentOp = "new-flow-rate"
        let text: [UInt8]
        switch r.u8() & 3 {
        case 0: text = r.bytes(Int(r.u8() & 15))
        case 1: text = Array("\(Text.number(&r, Int(r.u8() & 31)))/s".utf8)
        default: text = Array("\(r.u8() & 7)/s".utf8)
        }
        let rate = NewFlowRate(String(decoding: text, as: UTF8.self))
        if let rate {
            check((1...NewFlowRate.maximumPerSecond).contains(rate.perSecond) && rate.burst == rate.perSecond
                  && rate.interval > 0 && rate.tolerance == UInt64(rate.burst - 1) * rate.interval, "new-flow rate out of range: \(rate)")
            check(NewFlowRate(rate.description) == rate, "new-flow rate does not round-trip: \(rate)")
        }
        var configuration = translator.configuration
        configuration.newFlowsPerHost = mods & 8 != 0 ? nil : rate
        do {
            _ = try translator.reconfigure(configuration, now: time)
        } catch {
            fail("changing only the new-flow rate was refused: \(error)")
        }
        check(translator.configuration.newFlowsPerHost == configuration.newFlowsPerHost, "the new-flow rate did not take")
    }
}

// MARK: - transparent redirect (--redirect), on a translator of its own

/// Redirects tcp:80 and tcp:8080 to 3128 on 192.0.2.1 (interface 1); at most 8 connections.
nonisolated(unsafe) var redirectTranslator: NATTranslator? = nil
/// Redirected connections alive by its events (created minus removed).
nonisolated(unsafe) var redirectEvents = 0

extension Harness {
    /// A client packet (before routing, from interface 1 or an unknown one) or a proxy reply
    /// (OUTPUT), crafted or raw. Accepted packets are unchanged; a redirected client packet
    /// goes to 192.0.2.1:3128 with its source kept and its original destination recorded; a
    /// rewritten reply comes from the recorded original destination; checksums stay valid.
    func redirectOp(_ r: inout Reader, _ mods: UInt8) {
        currentOp = "redirect"
        if redirectTranslator == nil {
            var c = NATConfiguration(externalAddress: IPv4Address(Setup.external), internalPrefixes: [IPv4Prefix("192.0.2.0/24")!])
            c.maxSessions = 64
            c.maxMappings = 64
            c.redirects = [TransparentRedirect(port: 80, localPort: 3128), TransparentRedirect(port: 8080, localPort: 3128)]
            c.maxRedirectSessions = 8
            redirectTranslator = NATTranslator(configuration: c)
            redirectTranslator!.setInterfaceAddresses([InterfaceAddress(interfaceIndex: 1, address: IPv4Address(ip(192, 0, 2, 1))),
                                                      InterfaceAddress(interfaceIndex: 2, address: IPv4Address(Setup.external))])
            redirectTranslator!.enableEvents(capacity: 256, now: time)
        }
        let nat = redirectTranslator!
        let fromClient = mods & 8 == 0
        let routerLAN = ip(192, 0, 2, 1)
        var bytes: [UInt8]
        if mods & 16 != 0 {
            bytes = r.bytes(Int(r.u16() & 0x7ff))
        } else {
            let sel = r.u8(), flags = r.u8()
            let client = Setup.internalHosts[Int(sel & 3)]
            let clientPort = [UInt16(40000), 40001, 40002, 0][Int(sel >> 2) & 3]
            let far = [Setup.remoteHosts[0], Setup.remoteHosts[1], routerLAN, Setup.external][Int(sel >> 4) & 3]
            let farPort = [UInt16(80), 8080, 443, 3128][Int(sel >> 6) & 3]
            let sum: L4Sum = flags & 0x40 != 0 ? .pseudo : .valid
            if fromClient {
                bytes = Build.packet(client, far, proto: 6, l4: Build.tcp(client, clientPort, far, farPort, flags: flags & 0x3f,
                                                                         seq: r.u32(), ack: r.u32(), sum: sum))
            } else {
                let local = flags & 0x80 != 0 ? routerLAN : far
                bytes = Build.packet(local, client, proto: 6, l4: Build.tcp(local, farPort == 443 ? 3128 : farPort, client, clientPort,
                                                                           flags: flags & 0x3f, seq: r.u32(), ack: r.u32(), sum: sum))
            }
        }
        let notReady = mods & 4 != 0
        let n = bytes.count
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: max(n, 1), alignment: 1)
        defer { buffer.deallocate() }
        bytes.withUnsafeBytes { if n > 0 { buffer.copyMemory(from: $0.baseAddress!, byteCount: n) } }
        let before = View(buffer, n)
        let l4ValidBefore = before?.l4Valid ?? false
        // The view reads the buffer, which the translator rewrites: keep what it said now.
        let old = before.map { v in (src: v.src, dst: v.dst, sport: v.l4Length >= 4 ? v.b16(v.ihl) : 0, dport: v.l4Length >= 4 ? v.b16(v.ihl + 2) : 0) }
        // What the table says about the reply's client before the packet touches it.
        var recorded: RedirectSnapshot? = nil
        if !fromClient, let v = before, v.proto == 6, v.l4Length >= 4 {
            recorded = nat.originalDestination(clientAddress: IPv4Address(v.dst), clientPort: v.b16(v.ihl + 2), now: time)
        }
        let packet = UnsafeMutableRawBufferPointer(start: buffer, count: n)
        let checksum = PacketChecksumState(checksumNotReady: notReady)
        // A client packet the redirect does not take goes the hairpin way, which may rewrite it too.
        let redirectedBefore = nat.counters[.redirectedToProxy]
        let verdict = fromClient
            ? nat.translate(packet, direction: .hairpin, checksum: checksum, now: time, inputInterface: mods & 2 != 0 ? 9 : 1)
            : nat.translateRedirectReply(packet, checksum: checksum, now: time)
        let after = UnsafeRawBufferPointer(start: buffer, count: n)
        stats.verdicts["redirect.\(fromClient ? "client" : "proxy").\(verdict)", default: 0] += 1
        switch verdict {
        case .accept, .drop:
            if case .accept = verdict { check(after.elementsEqual(bytes), "an accepted redirect-path packet was changed") }
        case .acceptReplaced:
            fail("the redirect path replaced a packet")
        case .acceptRewritten:
            guard let v = View(buffer, n), let old else { fail("a rewritten redirect-path packet does not parse") }
            check(v.headerValid, "IP header checksum broken by the redirect")
            check(!(l4ValidBefore || notReady) || v.l4Valid == true, "TCP checksum broken by the redirect (notReady \(notReady))")
            if fromClient, nat.counters[.redirectedToProxy] != redirectedBefore {
                check(v.dst == routerLAN && v.b16(v.ihl + 2) == 3128 && v.src == old.src && v.b16(v.ihl) == old.sport,
                      "a redirected client packet not sent to 192.0.2.1:3128 from its own source")
                let found = nat.originalDestination(clientAddress: IPv4Address(v.src), clientPort: v.b16(v.ihl), now: time)
                check(found?.originalAddress.value == old.dst && found?.originalPort == old.dport,
                      "the original destination of a redirected packet was not recorded")
            } else if !fromClient {
                check(recorded != nil && v.src == recorded!.originalAddress.value && v.b16(v.ihl) == recorded!.originalPort
                      && v.dst == old.dst && v.b16(v.ihl + 2) == old.dport,
                      "a proxy reply not sent as from the recorded original destination")
            }
        }
        check(nat.redirectSessionCount <= 8, "the redirect table went past its cap")
        if mods & 1 != 0 { nat.expire(now: time, budget: 4) }
        // Every redirected connection made or removed has its event, with the row's fields.
        nat.drainEvents { e in
            guard e.kind.isRedirect else { return }
            redirectEvents += e.kind == .redirectCreated ? 1 : -1
            check(e.kind.isCreation == (e.reason.rawValue < 16), "event \(e.kind) with reason \(e.reason)")
            check(e.protocolNumber == 6 && e.externalAddress == routerLAN && e.externalPort == 3128 && isInternal(e.internalAddress)
                  && (e.remotePort == 80 || e.remotePort == 8080), "a redirect event \(e)")
        }
        check(nat.counters[.natEventsLost] > 0 || redirectEvents == nat.redirectSessionCount,
              "events say \(redirectEvents) redirected connections, the table has \(nat.redirectSessionCount)")
    }
}

// MARK: - libFuzzer entry points

nonisolated(unsafe) var harness: Harness?
nonisolated(unsafe) var inputsSinceReset = 0

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    if harness == nil { installCrashHooks() }
    if harness == nil || inputsSinceReset >= Harness.resetEvery {
        if let old = harness { stats.absorb(old.translator) }
        stats.resets += 1
        harness = nil
        // Every other harness (by the first input after a reset) with port blocks on.
        harness = Harness(portBlocks: size > 0 && data![0] & 0x80 != 0)
        inputsSinceReset = 0
        history.removeAll(keepingCapacity: true)
    }
    inputsSinceReset += 1
    let bytes = UnsafeBufferPointer(start: data, count: data == nil ? 0 : size)
    history.append(Array(bytes))
    var reader = Reader(data: bytes)
    harness!.run(&reader)
    return 0
}

@_cdecl("LLVMFuzzerInitialize")
public func fuzzInitialize(_ argc: UnsafeMutablePointer<Int32>?, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>?) -> Int32 {
    if let e = getenv("FUZZ_WRITE_SEEDS") {
        Seeds.write(to: String(cString: e))
        exit(0)
    }
    if getenv("FUZZ_STATS") != nil {
        atexit {
            if let h = harness { stats.absorb(h.translator) }
            stats.print()
        }
    }
    return 0
}

// MARK: - seed corpus

enum Seeds {
    static func raw(_ direction: Direction, _ packet: [UInt8], notReady: Bool = false) -> [UInt8] {
        var op: [UInt8] = [UInt8(direction.rawValue) << 3 | (notReady ? 8 << 3 : 0)]
        op.append16(UInt16(packet.count))
        return op + packet
    }

    static func all() -> [String: [UInt8]] {
        let a = Setup.internalHosts[0], b = Setup.internalHosts[1], remote = Setup.remoteHosts[0], ext = Setup.external
        var seeds: [String: [UInt8]] = [:]
        // TCP handshake out and back.
        let syn = Build.packet(a, remote, proto: 6, l4: Build.tcp(a, 40000, remote, 80, flags: 0x02, seq: 100, ack: 0))
        let synAck = Build.packet(remote, ext, proto: 6, l4: Build.tcp(remote, 80, ext, 40000, flags: 0x12, seq: 900, ack: 101))
        seeds["tcp-syn"] = raw(.outbound, syn) + raw(.inbound, synAck)
        // UDP and its reply; then an ICMP error quoting the translated UDP packet.
        let udp = Build.packet(a, remote, proto: 17, l4: Build.udp(a, 40001, remote, 53, payload: Array("query".utf8)))
        let udpTranslated = Build.packet(ext, remote, proto: 17, l4: Build.udp(ext, 40001, remote, 53, payload: Array("query".utf8)))
        let reply = Build.packet(remote, ext, proto: 17, l4: Build.udp(remote, 53, ext, 40001, payload: Array("answer".utf8)))
        let error = Build.packet(remote, ext, proto: 1, l4: Build.icmp(type: 3, code: 4, rest: 1400, payload: udpTranslated))
        seeds["udp"] = raw(.outbound, udp) + raw(.inbound, reply)
        seeds["icmp-error-udp"] = raw(.outbound, udp) + raw(.inbound, error)
        // ICMP echo and reply.
        let echo = Build.packet(a, remote, proto: 1, l4: Build.icmp(type: 8, code: 0, rest: 0x0777_0001, payload: Array("abcdefgh".utf8)))
        let echoReply = Build.packet(remote, ext, proto: 1, l4: Build.icmp(type: 0, code: 0, rest: 0x0777_0001, payload: Array("abcdefgh".utf8)))
        seeds["icmp-echo"] = raw(.outbound, echo) + raw(.inbound, echoReply)
        // Fragments: a 600-byte UDP datagram in two pieces, then split by the harness.
        let big = Build.packet(a, remote, proto: 17, l4: Build.udp(a, 40002, remote, 5001, payload: [UInt8](repeating: 0x55, count: 600)))
        let h = Harness.fragmentsStatic(of: big, unit: 304)
        seeds["fragments"] = h.map { frag -> [UInt8] in
            var op: [UInt8] = [3 | 0 << 3]
            op.append16(UInt16(frag.count))
            return op + frag
        }.reduce([], +)
        var split: [UInt8] = [3 | (2 << 3)]
        split.append16(UInt16(big.count))
        split += big + [0x70, 0x27]
        seeds["fragments-split"] = split
        // An FTP PORT segment from inside (the helper attaches on the first segment).
        let port = Build.packet(a, remote, proto: 6, l4: Build.tcp(a, 40003, remote, 21, flags: 0x18, seq: 5000, ack: 1,
                                                                   payload: Array("PORT 192,0,2,10,156,100\r\n".utf8)))
        seeds["ftp-port"] = raw(.outbound, port)
        // A whole FTP control connection through the tracked-flow op: SYN, SYN-ACK, ACK, PORT, reply.
        var ftp: [UInt8] = []
        ftp += [2, 0x00, 0, 0, 0x10, 0] // client SYN (flow 0)
        ftp += [2, 0x08, 0x20, 0, 0, 0] // server SYN-ACK
        ftp += [2, 0x30] // client ACK
        ftp += [2, 0x18, 0x1f, 0] // server "220 ready": an FTP session starts with the greeting (FTPStreamCheck)
        ftp += [2, 0x10, 1, 0, 0x04, 0] // client PORT line
        ftp += [2, 0x18, 0x27, 0] // server "200 PORT ok"
        ftp += [1 | 1 << 3, 0x00, 0x00, 0x0f, 0x10, 0x02, 0, 0, 0, 1, 0, 0, 0, 0, 5] // inbound SYN to the offered port
        seeds["ftp-flow"] = ftp
        // Server inside behind the forward: 227 reply.
        var pasv: [UInt8] = []
        pasv += [2, 0x04, 0, 0, 0x20, 0]
        pasv += [2, 0x0c, 0, 0, 0, 1]
        pasv += [2, 0x34]
        pasv += [2, 0x1c, 0x1f, 0] // the inside server's "220 ready"
        pasv += [2, 0x1c, 3, 0, 0x04, 0]
        seeds["ftp-pasv"] = pasv
        // IRC DCC offer from inside.
        var irc: [UInt8] = []
        irc += [2, 0x03, 0, 0, 0x30, 0]
        irc += [2, 0x0b, 0, 0, 0, 7]
        irc += [2, 0x13, 5, 0, 0x04, 0x10, 0]
        seeds["irc-dcc"] = irc
        // Hairpin to a forward; a flood; a time jump with a sweep.
        let hairpin = Build.packet(b, ext, proto: 6, l4: Build.tcp(b, 40004, ext, 8080, flags: 0x02, seq: 1, ack: 0))
        seeds["hairpin"] = raw(.hairpin, hairpin)
        seeds["flood-expire"] = [6, 63, 0, 0x9c, 0x40, 4 | (9 | 16) << 3, 4]
        // The router's own ports: UDP 40000 held, a reserved range; then a LAN host's packet from 40000.
        seeds["local-ports"] = [7 | (4 | 16) << 3, 1, 0x00, 0x19, 0x01, 11] + Array("32768\t60999".utf8) + raw(.outbound, udp)
        // Datagram helpers: a TFTP read request and the server's answer from a new port; a SIP
        // INVITE with SDP from inside, its answer, and RTP to the offered port.
        let rrq = Build.packet(a, remote, proto: 17, l4: Build.udp(a, 40005, remote, 69, payload: [0, 1] + Array("boot.img\u{0}octet\u{0}".utf8)))
        let data = Build.packet(remote, ext, proto: 17, l4: Build.udp(remote, 50001, ext, 40005, payload: [0, 3, 0, 1, 0x41]))
        seeds["tftp"] = raw(.outbound, rrq) + raw(.inbound, data)
        let sdp = "v=0\r\no=- 1 1 IN IP4 192.0.2.10\r\ns=-\r\nc=IN IP4 192.0.2.10\r\nt=0 0\r\nm=audio 40006 RTP/AVP 0\r\na=rtcp:40007\r\n"
        let invite = "INVITE sip:bob@203.0.113.2 SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK1\r\n"
            + "From: <sip:alice@192.0.2.10>;tag=1\r\nTo: <sip:bob@203.0.113.2>\r\nCall-ID: 1\r\nCSeq: 1 INVITE\r\n"
            + "Contact: <sip:alice@192.0.2.10:5060>\r\nContent-Type: application/sdp\r\nContent-Length: \(sdp.utf8.count)\r\n\r\n" + sdp
        let answer = "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 203.0.113.1:5060;branch=z9hG4bK1\r\nContent-Type: application/sdp\r\n"
            + "Content-Length: 60\r\n\r\nv=0\r\nc=IN IP4 198.51.100.7\r\nm=audio 7000 RTP/AVP 0\r\n" + String(repeating: " ", count: 8)
        let sipOut = Build.packet(a, remote, proto: 17, l4: Build.udp(a, 5060, remote, 5060, payload: Array(invite.utf8)))
        let sipIn = Build.packet(remote, ext, proto: 17, l4: Build.udp(remote, 5060, ext, 5060, payload: Array(answer.utf8)))
        let rtp = Build.packet(Setup.remoteHosts[2], ext, proto: 17, l4: Build.udp(Setup.remoteHosts[2], 7000, ext, 40006, payload: [0x80, 0, 0, 1]))
        seeds["sip-call"] = raw(.outbound, sipOut) + raw(.inbound, sipIn) + raw(.inbound, rtp)
        // Transparent redirect (control op 5): a client SYN to remote:80, the proxy's SYN-ACK
        // from 192.0.2.1:3128, the client's ACK.
        seeds["redirect"] = [47, 0, 0x02, 0, 0, 0, 100, 0, 0, 0, 0, 111, 128, 0x92, 0, 0, 0, 50, 0, 0, 0, 101,
                             47, 0, 0x10, 0, 0, 0, 101, 0, 0, 0, 51]
        return seeds
    }

    static func write(to dir: String) {
        mkdir(dir, 0o755)
        for (name, bytes) in all() {
            let fd = open(dir + "/seed-" + name, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
            guard fd >= 0 else { continue }
            bytes.withUnsafeBytes { b in _ = Glibc.write(fd, b.baseAddress, b.count) }
            close(fd)
        }
    }
}

extension Harness {
    static func fragmentsStatic(of packet: [UInt8], unit: Int) -> [[UInt8]] {
        let ihl = Int(packet[0] & 0x0f) * 4
        var pieces: [[UInt8]] = []
        var offset = 0
        let payload = Array(packet[ihl...])
        while offset < payload.count {
            let end = min(offset + unit, payload.count)
            var h = Array(packet[0..<ihl])
            h.put16(UInt16(ihl + end - offset), at: 2)
            h.put16((end < payload.count ? 0x2000 : 0) | UInt16(offset / 8), at: 6)
            h.put16(0, at: 10)
            h.put16(checksum(h, from: 0, count: ihl), at: 10)
            pieces.append(h + payload[offset..<end])
            offset = end
        }
        return pieces
    }
}
