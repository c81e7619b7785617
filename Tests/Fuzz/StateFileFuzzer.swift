// libFuzzer harness for the state file (issue #20 item 9): any bytes as a state file are
// decoded; one that decodes must encode back to the same bytes, restore into a fresh
// translator (with the FTP, TFTP and SIP helpers a saved file may name) or be refused by
// name, and then every packet the rest of the input describes — aimed at the restored flows,
// TCP sequence numbers near the streams' saved ones, so retransmissions, held bytes and the
// edit log are reached — must translate without a trap, and what leaves must be a whole
// packet. ASan turns any out-of-bounds copy from a crafted record into a crash.
//
// Input: [flags][state length, 2 bytes][state file][packet ops, 8 bytes each + payload].
// Flag bit 0: reseal — the trailing FNV-1a checksum is recomputed first, so mutations reach
// the field checks behind it. Flag bit 1: the "file" is a helper connection's state as the HA
// increments carry it (NATStateSnapshot-HelperState.swift): applied by a NATReplica of the
// seed file to its FTP control connection (refused by name, or then the copy's snapshot is
// the file, and its resumed streams get the packets). FUZZ_WRITE_SEEDS=DIR writes seeds (a file saved from a real
// FTP session with a rewritten PORT and a held unfinished line, with replays) and exits.
//
// Built by Tests/Fuzz/run-fuzz.sh (swiftc -sanitize=fuzzer,address -parse-as-library).

#if canImport(Glibc)
import Glibc
#endif
import NATCore
import NATHelpers

func fail(_ message: String) -> Never {
    say("state-fuzz: INVARIANT BROKEN: \(message)")
    fatalError(message)
}

/// What the inputs met, over the whole run (printed at exit when FUZZ_STATS is set): shows
/// how far past the decoder the fuzzer gets.
struct RunStats {
    var refused = [String: Int]()
    var decoded = 0, restored = 0, importRefused = 0, flows = 0, helperConnections = 0
    var verdicts = [String: Int]()

    func print() {
        let text = "state-fuzz stats: \(decoded) decoded, \(restored) restored (\(flows) flows, \(helperConnections) helper connections), \(importRefused) restores refused\n"
            + "  refusals: " + refused.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ") + "\n"
            + "  verdicts: " + verdicts.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        say(text)
    }
}

nonisolated(unsafe) var stats = RunStats()

let external = IPv4Address(203, 0, 113, 1)
let t0 = NATTime.seconds(1000)

func configuration() -> NATConfiguration {
    var c = NATConfiguration(externalAddress: external)
    c.maxSessions = 1024
    c.maxMappings = 1024
    c.helpers = [
        HelperRegistration(helper: FTPHelper(), ports: [21]),
        HelperRegistration(helper: TFTPHelper(), ports: [.udp(69)]),
        HelperRegistration(helper: SIPHelper(), ports: [.udp(5060), .tcp(5060)]),
    ]
    c.hashSeed = 0x5eed_5747_e000_0001
    c.redirects = [TransparentRedirect(port: 80, localPort: 3128)]
    return c
}

/// The router's LAN address for redirected connections (interface 1).
let routerLAN = IPv4Address(192, 0, 2, 1)

/// A translator of `configuration()` that knows the router's interface addresses.
func makeTranslator() -> NATTranslator {
    let nat = NATTranslator(configuration: configuration())
    nat.setInterfaceAddresses([InterfaceAddress(interfaceIndex: 1, address: routerLAN)])
    return nat
}

// MARK: - bytes

func fnv1a64(_ bytes: ArraySlice<UInt8>) -> UInt64 {
    var hash: UInt64 = 0xcbf2_9ce4_8422_2325
    for byte in bytes { hash = (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01b3 }
    return hash
}

func resealed(_ bytes: [UInt8]) -> [UInt8] {
    guard bytes.count >= 8 else { return bytes }
    var out = bytes
    let sum = fnv1a64(bytes[0..<(bytes.count - 8)])
    for i in 0..<8 { out[bytes.count - 8 + i] = UInt8(truncatingIfNeeded: sum >> (56 - 8 * UInt64(i))) }
    return out
}

func be16(_ b: [UInt8], _ at: Int) -> Int { at + 2 <= b.count ? Int(b[at]) << 8 | Int(b[at + 1]) : 0 }
func be32(_ b: [UInt8], _ at: Int) -> UInt32 {
    at + 4 <= b.count ? UInt32(b[at]) << 24 | UInt32(b[at + 1]) << 16 | UInt32(b[at + 2]) << 8 | UInt32(b[at + 3]) : 0
}

/// The saved streams' next sequence numbers, read from a file that decoded (layout as in
/// NATStateSnapshot.encoded: header 56, mappings 12, sessions 24, then helper records).
func streamSequences(_ file: [UInt8]) -> [UInt32] {
    let held = be16(file, 10), editLog = Int(file[12]), maxReplacement = Int(file[13]), stateBytes = be16(file, 14)
    let mappings = Int(be32(file, 40)), sessions = Int(be32(file, 44)), helpers = Int(be32(file, 48))
    let stream = 20 + editLog * (13 + maxReplacement) + held
    let record = 16 + 4 + 2 * stream + stateBytes
    var out: [UInt32] = []
    for h in 0..<min(helpers, 16) {
        let start = 56 + mappings * 12 + sessions * 24 + h * record + 20
        out.append(be32(file, start))
        out.append(be32(file, start + stream))
    }
    return out
}

func sum16(_ bytes: ArraySlice<UInt8>, _ initial: UInt32 = 0) -> UInt16 {
    var total = initial
    var i = bytes.startIndex
    while i + 1 < bytes.endIndex { total += UInt32(bytes[i]) << 8 | UInt32(bytes[i + 1]); i += 2 }
    if i < bytes.endIndex { total += UInt32(bytes[i]) << 8 }
    while total > 0xffff { total = (total & 0xffff) + (total >> 16) }
    return UInt16(total)
}

/// An IPv4 packet with a TCP (flags given) or UDP header and `payload`, checksums right.
func packet(tcp: Bool, from source: IPv4Address, _ sourcePort: UInt16, to destination: IPv4Address, _ destinationPort: UInt16,
            seq: UInt32, ack: UInt32, flags: UInt8, payload: [UInt8]) -> [UInt8] {
    var l4: [UInt8]
    if tcp {
        l4 = [UInt8(sourcePort >> 8), UInt8(sourcePort & 0xff), UInt8(destinationPort >> 8), UInt8(destinationPort & 0xff),
              UInt8(seq >> 24), UInt8(seq >> 16 & 0xff), UInt8(seq >> 8 & 0xff), UInt8(seq & 0xff),
              UInt8(ack >> 24), UInt8(ack >> 16 & 0xff), UInt8(ack >> 8 & 0xff), UInt8(ack & 0xff),
              0x50, flags, 0xff, 0xff, 0, 0, 0, 0] + payload
    } else {
        let length = 8 + payload.count
        l4 = [UInt8(sourcePort >> 8), UInt8(sourcePort & 0xff), UInt8(destinationPort >> 8), UInt8(destinationPort & 0xff),
              UInt8(length >> 8), UInt8(length & 0xff), 0, 0] + payload
    }
    let total = 20 + l4.count
    var ip: [UInt8] = [0x45, 0, UInt8(total >> 8), UInt8(total & 0xff), 0x12, 0x34, 0x40, 0, 64, tcp ? 6 : 17, 0, 0]
    for a in [source.value, destination.value] { ip += [UInt8(a >> 24), UInt8(a >> 16 & 0xff), UInt8(a >> 8 & 0xff), UInt8(a & 0xff)] }
    let h = ~sum16(ip[...])
    ip[10] = UInt8(h >> 8); ip[11] = UInt8(h & 0xff)
    let pseudo = Array(ip[12..<20]) + [0, tcp ? 6 : 17, UInt8(l4.count >> 8), UInt8(l4.count & 0xff)]
    var c = ~sum16((pseudo + l4)[...])
    if !tcp, c == 0 { c = 0xffff }
    let at = tcp ? 16 : 6
    l4[at] = UInt8(c >> 8); l4[at + 1] = UInt8(c & 0xff)
    return ip + l4
}

/// Translates a copy; checks that what leaves is a whole IPv4 packet.
@discardableResult
func translate(_ nat: NATTranslator, _ bytes: [UInt8], _ direction: PacketDirection, now: NATTime) -> [UInt8]? {
    let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: bytes.count, alignment: 4)
    defer { buffer.deallocate() }
    buffer.copyBytes(from: bytes)
    switch nat.translate(buffer, direction: direction, checksum: PacketChecksumState(), now: now) {
    case .accept:
        stats.verdicts["accept", default: 0] += 1
        return Array(buffer)
    case .acceptRewritten:
        stats.verdicts["rewritten", default: 0] += 1
        return Array(buffer)
    case .acceptReplaced(let out):
        stats.verdicts["replaced", default: 0] += 1
        check(out.count >= 40 && out.count <= 65535, "a replacement of \(out.count) bytes")
        check(Int(out[2]) << 8 | Int(out[3]) == out.count, "a replacement whose total length is not its size")
        return Array(out)
    case .drop(let reason):
        stats.verdicts["drop_\(reason)", default: 0] += 1
        return nil
    }
}

/// A refusal's case (and record kind), for the run's statistics.
func kind(of error: NATStateError) -> String {
    switch error {
    case .truncated: "truncated"
    case .trailingBytes: "trailing_bytes"
    case .notAStateFile: "not_a_state_file"
    case .unsupportedVersion: "version"
    case .checksumMismatch: "checksum"
    case .invalidHeader: "header"
    case .invalidRecord(let kind, _, _): "record_" + kind.replacingSpaces()
    default: "other"
    }
}

extension String {
    fileprivate func replacingSpaces() -> String { String(map { $0 == " " ? "_" : $0 }) }
}

// MARK: - one input

/// The seed file's copy on a standby (NATReplica) with `helperState` applied to its FTP
/// control connection, as a file; nil (counted) when the replica refuses the state.
func replicatedFile(helperState: [UInt8]) -> [UInt8]? {
    guard let base = try? NATStateSnapshot(decoding: StateSeeds.savedFile()) else { fail("the seed file does not decode") }
    var replica = NATReplica(base)
    let event = NATEvent(timeNanoseconds: 0, kind: .helperStateChanged, reason: .outbound, protocolNumber: 6,
                         internalAddress: StateSeeds.client.value, internalPort: 40000, externalAddress: 0, externalPort: 0,
                         remoteAddress: StateSeeds.server.value, remotePort: 21)
    guard replica.applyHelperState(event, state: helperState, wallClock: base.savedAt) else {
        stats.refused["helper_state", default: 0] += 1
        return nil
    }
    let copy = replica.snapshot(savedAt: base.savedAt, minimumRemaining: .seconds(60))
    check(copy.sessionCount == base.sessionCount && copy.helperConnectionCount == 1, "the replica lost a flow or the helper connection")
    return copy.encoded()
}

func run(_ input: [UInt8]) {
    guard input.count >= 3 else { return }
    let flags = input[0]
    let length = min(Int(input[1]) << 8 | Int(input[2]), input.count - 3)
    var file = Array(input[3..<(3 + length)])
    if flags & 1 != 0 { file = resealed(file) }
    if flags & 2 != 0 {
        guard let replicated = replicatedFile(helperState: file) else { return }
        file = replicated
    }
    let snapshot: NATStateSnapshot
    do {
        snapshot = try NATStateSnapshot(decoding: file)
    } catch {
        check(!error.description.isEmpty, "an empty refusal")
        stats.refused[kind(of: error), default: 0] += 1
        return
    }
    stats.decoded += 1
    check(snapshot.encoded() == file, "a file that decodes does not encode back to its bytes")
    let nat = makeTranslator()
    do {
        let summary = try nat.importState(snapshot, downtime: .seconds(UInt64(flags >> 4)), now: t0)
        stats.restored += 1
        stats.helperConnections += summary.helperConnectionsRestored
    } catch {
        check(!error.description.isEmpty, "an empty refusal")
        stats.importRefused += 1
        return
    }
    // Restored redirected connections: the proxy's reply and the client's next segment.
    var redirected: [RedirectSnapshot] = []
    nat.forEachRedirect(now: t0) { if redirected.count < 8 { redirected.append($0) } }
    for r in redirected {
        var reply = packet(tcp: true, from: r.localAddress, r.localPort, to: r.clientAddress, r.clientPort, seq: 1, ack: 1, flags: 0x10, payload: [])
        let verdict = reply.withUnsafeMutableBytes { nat.translateRedirectReply($0, checksum: PacketChecksumState(), now: t0) }
        check(verdict == .acceptRewritten && be32(reply, 12) == r.originalAddress.value, "a restored redirect did not translate the proxy's reply")
        var segment = packet(tcp: true, from: r.clientAddress, r.clientPort, to: r.originalAddress, r.originalPort, seq: 1, ack: 1, flags: 0x10, payload: [])
        _ = segment.withUnsafeMutableBytes {
            nat.translate($0, direction: .hairpin, checksum: PacketChecksumState(), now: t0, inputInterface: 1)
        }
    }
    var flows: [SessionSnapshot] = []
    nat.forEachSession(now: t0) { if flows.count < 32 { flows.append($0) } }
    stats.flows += flows.count
    let sequences = streamSequences(file)
    guard !flows.isEmpty else { return }

    // Ops: [flow, kind, seq base, delta (2), ack base, tcp flags, payload length].
    var at = 3 + length
    var now = t0
    var ops = 0
    while at + 8 <= input.count, ops < 64 {
        ops += 1
        let op = Array(input[at..<(at + 8)])
        at += 8
        let payloadLength = min(Int(op[7]), input.count - at)
        let payload = Array(input[at..<(at + payloadLength)])
        at += payloadLength
        let flow = flows[Int(op[0]) % flows.count]
        let outbound = op[1] & 1 == 0
        let delta = Int16(bitPattern: UInt16(op[3]) << 8 | UInt16(op[4]))
        let base = sequences.isEmpty ? UInt32(op[2]) << 8 : sequences[Int(op[2]) % sequences.count]
        let ackBase = sequences.isEmpty ? 0 : sequences[Int(op[5]) % sequences.count]
        let seq = base &+ UInt32(bitPattern: Int32(delta))
        let ack = ackBase &+ UInt32(op[1] >> 1)
        let tcp = flow.protocolNumber == 6
        guard tcp || flow.protocolNumber == 17 else { continue }
        let bytes = outbound
            ? packet(tcp: tcp, from: flow.internalAddress, flow.internalPort, to: flow.remoteAddress, flow.remotePort,
                     seq: seq, ack: ack, flags: op[6] | 0x10, payload: payload)
            : packet(tcp: tcp, from: flow.remoteAddress, flow.remotePort, to: external, flow.externalPort,
                     seq: seq, ack: ack, flags: op[6] | 0x10, payload: payload)
        translate(nat, bytes, outbound ? .outbound : .inbound, now: now)
        now = now + NATDuration(nanoseconds: UInt64(op[1] >> 4) * 1_000_000)
    }
    _ = nat.expire(now: now + .seconds(400), budget: 4096)
}

@_cdecl("LLVMFuzzerTestOneInput")
public func stateFuzzTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    run(data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? [])
    return 0
}

@_cdecl("LLVMFuzzerInitialize")
public func stateFuzzInitialize(_ argc: UnsafeMutablePointer<Int32>?,
                                _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>?) -> Int32 {
    if let directory = getenv("FUZZ_WRITE_SEEDS") {
        StateSeeds.write(to: String(cString: directory))
        exit(0)
    }
    if getenv("FUZZ_STATS") != nil { atexit { stats.print() } }
    return 0
}

// MARK: - seeds

enum StateSeeds {
    static let client = IPv4Address(192, 0, 2, 10)
    static let server = IPv4Address(198, 51, 100, 5)

    /// A saved FTP control connection: `PORT` rewritten (an edit), then an unfinished line
    /// held; a UDP flow beside it.
    static func savedFile() -> [UInt8] {
        let nat = NATTranslator(configuration: configuration())
        func send(_ bytes: [UInt8], _ direction: PacketDirection) { translate(nat, bytes, direction, now: t0) }
        send(packet(tcp: true, from: client, 40000, to: server, 21, seq: 1000, ack: 0, flags: 0x02, payload: []), .outbound)
        send(packet(tcp: true, from: server, 21, to: external, 40000, seq: 5000, ack: 1001, flags: 0x12, payload: []), .inbound)
        send(packet(tcp: true, from: client, 40000, to: server, 21, seq: 1001, ack: 5001, flags: 0x10, payload: []), .outbound)
        let port = Array("PORT 192,0,2,10,156,65\r\n".utf8)
        send(packet(tcp: true, from: client, 40000, to: server, 21, seq: 1001, ack: 5001, flags: 0x18, payload: port), .outbound)
        send(packet(tcp: true, from: client, 40000, to: server, 21, seq: 1001 + UInt32(port.count), ack: 5001, flags: 0x18,
                    payload: Array("PORT 192,0".utf8)), .outbound)
        send(packet(tcp: false, from: client, 5353, to: server, 53, seq: 0, ack: 0, flags: 0, payload: [1, 2, 3]), .outbound)
        return nat.exportState(now: t0, savedAt: 1_700_000_000_000_000_000).encoded()
    }

    /// Version 3: a UDP flow and an address-only (ESP) row.
    static func savedFileWithAddressOnly() -> [UInt8] {
        let nat = NATTranslator(configuration: configuration())
        translate(nat, packet(tcp: false, from: client, 5353, to: server, 53, seq: 0, ack: 0, flags: 0, payload: [1, 2, 3]), .outbound, now: t0)
        var esp: [UInt8] = [0x45, 0, 0, 28, 0x12, 0x34, 0x40, 0, 64, 50, 0, 0]
        for a in [client.value, server.value] { esp += [UInt8(a >> 24), UInt8(a >> 16 & 0xff), UInt8(a >> 8 & 0xff), UInt8(a & 0xff)] }
        let h = ~sum16(esp[...])
        esp[10] = UInt8(h >> 8); esp[11] = UInt8(h & 0xff)
        translate(nat, esp + [0, 0, 0x10, 0x01, 0, 0, 0, 1], .outbound, now: t0)
        return nat.exportState(now: t0, savedAt: 1_700_000_000_000_000_000).encoded()
    }

    /// A client's connection to server:80 redirected to 192.0.2.1:3128 and answered, and a UDP flow.
    static func savedRedirectFile() -> [UInt8] {
        let nat = makeTranslator()
        var syn = packet(tcp: true, from: client, 40001, to: server, 80, seq: 100, ack: 0, flags: 0x02, payload: [])
        _ = syn.withUnsafeMutableBytes { nat.translate($0, direction: .hairpin, checksum: PacketChecksumState(), now: t0, inputInterface: 1) }
        var synAck = packet(tcp: true, from: routerLAN, 3128, to: client, 40001, seq: 900, ack: 101, flags: 0x12, payload: [])
        _ = synAck.withUnsafeMutableBytes { nat.translateRedirectReply($0, checksum: PacketChecksumState(), now: t0) }
        translate(nat, packet(tcp: false, from: client, 5353, to: server, 53, seq: 0, ack: 0, flags: 0, payload: [1]), .outbound, now: t0)
        let file = nat.exportState(now: t0, savedAt: 1_700_000_000_000_000_000).encoded()
        check(file[9] == 4, "the redirect seed is not a version 4 file")
        return file
    }

    /// The state `helperState(of:)` reads from the seed's FTP control connection after its PORT.
    static func helperStateAfterPORT() -> [UInt8]? {
        let nat = NATTranslator(configuration: configuration())
        func send(_ bytes: [UInt8], _ direction: PacketDirection) { translate(nat, bytes, direction, now: t0) }
        send(packet(tcp: true, from: client, 40000, to: server, 21, seq: 1000, ack: 0, flags: 0x02, payload: []), .outbound)
        send(packet(tcp: true, from: server, 21, to: external, 40000, seq: 5000, ack: 1001, flags: 0x12, payload: []), .inbound)
        send(packet(tcp: true, from: server, 21, to: external, 40000, seq: 5001, ack: 1001, flags: 0x18,
                    payload: Array("220 ready\r\n".utf8)), .inbound) // the greeting: else the helper abandons the stream
        send(packet(tcp: true, from: client, 40000, to: server, 21, seq: 1001, ack: 5012, flags: 0x18,
                    payload: Array("PORT 192,0,2,10,156,65\r\n".utf8)), .outbound)
        let event = NATEvent(timeNanoseconds: 0, kind: .helperStateChanged, reason: .outbound, protocolNumber: 6,
                             internalAddress: client.value, internalPort: 40000, externalAddress: 0, externalPort: 0,
                             remoteAddress: server.value, remotePort: 21)
        guard case .found(let bytes)? = nat.helperState(of: event, maxBytes: 4096) else { return nil }
        return bytes
    }

    static func input(_ file: [UInt8], flags: UInt8, ops: [[UInt8]]) -> [UInt8] {
        [flags, UInt8(file.count >> 8), UInt8(file.count & 0xff)] + file + ops.flatMap { $0 }
    }

    static func write(to directory: String) {
        mkdir(directory, 0o755)
        let file = savedFile()
        // A retransmission of the PORT segment, the rest of the held line, the server's ACK.
        let retransmit: [UInt8] = [0, 0, 0, 0xff, 0xe0, 1, 0x18, 24] + Array("PORT 192,0,2,10,156,65\r\n".utf8)
        let rest: [UInt8] = [0, 0, 0, 0, 0, 1, 0x18, 12] + Array(",2,10,4,1\r\n\n".utf8).prefix(12)
        let ack: [UInt8] = [0, 1, 1, 0, 0, 0, 0x10, 0]
        var seeds: [[UInt8]] = [
            input(file, flags: 0, ops: [retransmit, rest, ack]),
            input(file, flags: 1, ops: [ack, retransmit]),
        ]
        // The crafted case of issue #20 item 9: the held bytes made to cover the edit (the
        // decoder must refuse it), resealed so only that check stands in the way.
        let helperStart = 56 + Int(be32(file, 40)) * 12 + Int(be32(file, 44)) * 24
        if be32(file, 48) == 1, file.count > helperStart + 40 {
            var crafted = file
            crafted[helperStart + 20 + 12] = 0 // stream 0's held length: 40
            crafted[helperStart + 20 + 13] = 40
            seeds.append(input(crafted, flags: 1, ops: [retransmit, ack]))
        }
        seeds.append(input(savedFileWithAddressOnly(), flags: 0, ops: [ack]))
        // The FTP connection's helper state as an increment carries it (read after the PORT
        // was rewritten), replayed onto the seed's copy.
        if let state = helperStateAfterPORT() { seeds.append(input(state, flags: 2, ops: [retransmit, rest, ack])) }
        // A redirected connection (format version 4) beside a UDP flow.
        seeds.append(input(savedRedirectFile(), flags: 0, ops: [ack]))
        for (i, seed) in seeds.enumerated() {
            let path = directory + "/seed-\(i)"
            guard let f = fopen(path, "wb") else { continue }
            _ = seed.withUnsafeBytes { fwrite($0.baseAddress, 1, $0.count, f) }
            fclose(f)
        }
    }
}
