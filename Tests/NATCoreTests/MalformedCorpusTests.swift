import NATTestKit
import Testing
@testable import NATCore

// A table of malformed and unusual packets, each run in every direction (outbound from hostA,
// inbound from the remote to a port forward, hairpin from hostB to the same forward) on a
// translator where the well-formed packet would be translated (MalformedCorpus.swift). Each
// case names its outcome per direction; the harness checks the verdict, that exactly the one
// expected counter moved, and that dropped or passed packets are byte-for-byte unchanged.
// MalformedPacketTests has the outbound basics; this table adds the other directions and
// the cases around them.
//
// The policy:
//
// | packet                                   | outbound                 | inbound (WAN)        | hairpin            |
// |------------------------------------------|--------------------------|----------------------|--------------------|
// | IP header unreadable: < 20 bytes, version| drop malformed_ipv4      | drop malformed_ipv4  | drop malformed_ipv4|
// |   ≠ 4, IHL < 5 or beyond the buffer,     |                          |                      |                    |
// |   total length < IHL or > buffer         |                          |                      |                    |
// | transport header unreadable (cut short,  | drop malformed_transport | pass inbound_unmatched| pass hairpin_passed|
// |   TCP data offset < 5 or beyond the      |                          |                      |                    |
// |   segment, UDP length < 8 or beyond)     |                          |                      |                    |
// | ICMP error not about a live session, or  | drop icmp_unsupported    | pass inbound_unmatched| pass hairpin_passed|
// |   with an unreadable quote (too short,   |                          |                      |                    |
// |   bad inner IHL/version, inner fragment, |                          |                      |                    |
// |   inner error = nested error), unknown   |                          |                      |                    |
// |   ICMP types                             |                          |                      |                    |
// | protocol without ports (GRE, ESP, 253, …)| translated (address only)| pass inbound_unmatched| pass hairpin_passed|
// |   any payload, even none                 |                          |   (no row for it)    |                    |
// | DCCP, UDP-Lite cut before their checksum | drop malformed_transport | pass inbound_unmatched| pass hairpin_passed|
// | port 0                                   | drop zero_port           | pass inbound_unmatched| drop zero_port     |
// | fragment reaching the translator         | drop fragment_unsupported| drop fragment_unsupp.| drop fragment_uns. |
// | IP options, valid or garbage; link       | translated, options and  | translated           | translated         |
// |   padding after total length; UDP length |   padding untouched      |                      |                    |
// |   < IP payload; zero-length payloads     |                          |                      |                    |
//
// Why: outbound, anything not translated would leave with an internal address, so it is
// dropped (README "Behaviour"). Inbound and hairpin packets that masqd does not translate go
// to the router's own stack unchanged, which judges junk addressed to it the way it always
// does (and drops it); masqd never delivers them to a LAN host. An unreadable IP header is
// dropped in every direction: the kernel already checked the header before the hook
// (ip_rcv_core), so only a corrupted queue copy could look like that. Port 0 from inside is
// dropped in both inside directions (the mapping would need a port 0). Fragments are
// reassembled before translation by the engine; one that reaches the translator anyway
// cannot be matched (only the first has ports), so it is dropped. IP options are not
// interpreted: the kernel validates them itself (ip_rcv_options, after PREROUTING, for
// inbound and hairpin; on input for forwarded outbound packets), and the translator only
// needs IHL to find the transport header. A wrong IP header checksum is not repaired (the
// incremental update keeps it wrong) for the same reason.

@Suite("Malformed packet corpus")
struct MalformedCorpusTests {
    static let badTransport = (outbound: CorpusOutcome.dropped(.malformedTransport), inbound: CorpusOutcome.passed(.inboundUnmatched),
                               hairpin: CorpusOutcome.passed(.hairpinPassed))
    static let icmpNotTranslated = (outbound: CorpusOutcome.dropped(.icmpUnsupported), inbound: CorpusOutcome.passed(.inboundUnmatched),
                                    hairpin: CorpusOutcome.passed(.hairpinPassed))

    static func badTransportCase(_ name: String, _ build: @escaping (CorpusEnds) -> [UInt8]) -> CorpusCase {
        CorpusCase(name, outbound: badTransport.outbound, inbound: badTransport.inbound, hairpin: badTransport.hairpin, build: build)
    }

    static func icmpNotTranslatedCase(_ name: String, _ build: @escaping (CorpusEnds) -> [UInt8]) -> CorpusCase {
        CorpusCase(name, outbound: icmpNotTranslated.outbound, inbound: icmpNotTranslated.inbound, hairpin: icmpNotTranslated.hairpin,
                   build: build)
    }

    /// ICMP echo and errors about live sessions: translated both ways; hairpinned ICMP goes to the router.
    static func icmpTranslatedCase(_ name: String, extra: ((_ before: [UInt8], _ after: [UInt8]) -> Bool)? = nil,
                                   _ build: @escaping (CorpusEnds) -> [UInt8]) -> CorpusCase {
        CorpusCase(name, outbound: .rewritten, inbound: .rewritten, hairpin: .passed(.hairpinPassed), extra: extra, build: build)
    }

    // MARK: byte surgery (the IP header checksum is kept right unless a case says otherwise)

    static func put16(_ p: inout [UInt8], _ offset: Int, _ value: Int) {
        p[offset] = UInt8(value >> 8 & 0xff)
        p[offset + 1] = UInt8(value & 0xff)
    }

    /// Recomputes the IP header checksum over the claimed header, as far as the bytes go.
    static func fixIPChecksum(_ p: [UInt8]) -> [UInt8] {
        guard p.count >= 20 else { return p }
        var q = p
        let ihl = min(max(Int(q[0] & 0x0f) * 4, 20), q.count)
        put16(&q, 10, 0)
        put16(&q, 10, Int(RefChecksum.checksum(Array(q[0..<ihl]))))
        return q
    }

    static func patched(_ p: [UInt8], _ edits: [(Int, UInt8)]) -> [UInt8] {
        var q = p
        for (offset, value) in edits { q[offset] = value }
        return fixIPChecksum(q)
    }

    static func withTotalLength(_ p: [UInt8], _ total: Int) -> [UInt8] {
        var q = p
        put16(&q, 2, total)
        return fixIPChecksum(q)
    }

    /// `quoted` rebuilt with other IP fields (options, fragment bits), its UDP part unchanged.
    static func requoteUDP(_ quoted: [UInt8], ip: IPv4Fields) -> [UInt8] {
        PacketBuilder.udp(sourceAddress(quoted), Verify.be16(quoted, 20), destinationAddress(quoted), Verify.be16(quoted, 22), ip: ip)
    }

    static func optionsUnchanged(_ before: [UInt8], _ after: [UInt8]) -> Bool {
        let ihl = Verify.headerLength(before)
        return Verify.headerLength(after) == ihl && before[20..<ihl] == after[20..<ihl]
    }

    // MARK: the IP header

    @Test("unreadable IP headers are dropped in every direction")
    func ipHeader() {
        var cases: [CorpusCase] = [CorpusCase("empty buffer", all: .dropped(.malformedIPv4)) { _ in [] }]
        for keep in 1..<20 {
            cases.append(CorpusCase("IP header cut at \(keep) bytes", all: .dropped(.malformedIPv4)) { Array($0.udp().prefix(keep)) })
        }
        for version: UInt8 in [0, 5, 6, 15] {
            cases.append(CorpusCase("version \(version)", all: .dropped(.malformedIPv4)) { Self.patched($0.udp(), [(0, version << 4 | 5)]) })
        }
        for ihl: UInt8 in 0..<5 {
            cases.append(CorpusCase("IHL \(ihl)", all: .dropped(.malformedIPv4)) { Self.patched($0.udp(), [(0, 0x40 | ihl)]) })
        }
        cases += [
            CorpusCase("IHL 15 beyond a 33-byte buffer", all: .dropped(.malformedIPv4)) { Self.patched($0.udp(), [(0, 0x4f)]) },
            CorpusCase("IHL 6 with total length 20 (header longer than the packet)", all: .dropped(.malformedIPv4)) {
                Self.withTotalLength(Self.patched($0.udp(), [(0, 0x46)]), 20)
            },
            CorpusCase("total length one beyond the buffer", all: .dropped(.malformedIPv4)) { let p = $0.udp(); return Self.withTotalLength(p, p.count + 1) },
            CorpusCase("total length 65535 on a 33-byte buffer", all: .dropped(.malformedIPv4)) { Self.withTotalLength($0.udp(), 65535) },
        ]
        for total in [0, 1, 19] {
            cases.append(CorpusCase("total length \(total), below the header", all: .dropped(.malformedIPv4)) { Self.withTotalLength($0.udp(), total) })
        }
        // The buffer cut short of a correct total length, at every length past the header.
        for keep in 20..<43 {
            cases.append(CorpusCase("TCP packet cut at \(keep) of 43 bytes", all: .dropped(.malformedIPv4)) {
                Array($0.tcp(payload: [1, 2, 3]).prefix(keep))
            })
        }
        Corpus.check(cases)
    }

    @Test("IHL 6 without options: the header swallows the UDP ports and the rest is not a UDP header")
    func headerLengthTooLongForTheHeader() {
        // The UDP length field becomes "he" (0x6865), far beyond the 9 bytes left.
        Corpus.check([Self.badTransportCase("IHL 6 on a 20-byte header") { Self.patched($0.udp(), [(0, 0x46)]) }])
    }

    @Test("a wrong IP header checksum is not the translator's to judge, and is not repaired")
    func wrongHeaderChecksum() {
        Corpus.check([
            CorpusCase("IP header checksum off by one", outbound: .rewritten, inbound: .rewritten, hairpin: .rewritten,
                       headerChecksumValid: false) { ends in
                var p = ends.udp()
                p[11] &+= 1
                return p
            },
        ])
    }

    // MARK: TCP

    @Test("TCP: cut headers, bad data offsets, and what is fine")
    func tcp() {
        var cases: [CorpusCase] = []
        for keep in 0..<20 {
            cases.append(Self.badTransportCase("TCP header cut at \(keep) bytes") { ends in
                ends.ipv4(protocolNumber: 6, transport: Array(ends.tcp()[20..<(20 + keep)]))
            })
            // The same cut made by the total length, the rest of the bytes still in the buffer (link padding).
            cases.append(Self.badTransportCase("total length cuts the TCP header at \(keep) bytes") { ends in
                Self.withTotalLength(ends.tcp(payload: [1, 2, 3]), 20 + keep)
            })
        }
        for offset: UInt8 in 0..<5 {
            cases.append(Self.badTransportCase("TCP data offset \(offset)") { Self.patched($0.tcp(payload: [1, 2, 3]), [(32, offset << 4)]) })
        }
        cases += [
            Self.badTransportCase("TCP data offset 6 in a 23-byte segment") { Self.patched($0.tcp(payload: [1, 2, 3]), [(32, 0x60)]) },
            Self.badTransportCase("TCP data offset 15 in a 20-byte segment") { Self.patched($0.tcp(), [(32, 0xf0)]) },
            CorpusCase("TCP data offset 15, 40 bytes of options", all: .rewritten) { $0.tcp(options: [UInt8](repeating: 1, count: 40)) },
            CorpusCase("TCP SYN, no payload", all: .rewritten) { $0.tcp() },
            CorpusCase("TCP FIN|ACK, no payload", all: .rewritten) { $0.tcp(flags: TCPFlag.fin | TCPFlag.ack) },
            CorpusCase("TCP with link padding after the total length", outbound: .rewritten, inbound: .rewritten, hairpin: .rewritten,
                       extra: { before, after in before.suffix(6) == after.suffix(6) }) {
                $0.tcp(payload: [1, 2, 3], ip: IPv4Fields(trailing: [0xde, 0xad, 0xbe, 0xef, 0, 0]))
            },
            CorpusCase("TCP source port 0", outbound: .dropped(.zeroPort), inbound: .passed(.inboundUnmatched), hairpin: .dropped(.zeroPort)) {
                Self.patched($0.tcp(), [(20, 0), (21, 0)])
            },
            CorpusCase("TCP destination port 0", outbound: .dropped(.zeroPort), inbound: .passed(.inboundUnmatched), hairpin: .dropped(.zeroPort)) {
                PacketBuilder.tcp($0.source, $0.sourcePort, $0.destination, 0)
            },
        ]
        Corpus.check(cases)
    }

    // MARK: UDP

    @Test("UDP: cut headers, every wrong length field, and what is fine")
    func udp() {
        var cases: [CorpusCase] = []
        for keep in 0..<8 {
            cases.append(Self.badTransportCase("UDP header cut at \(keep) bytes") { ends in
                ends.ipv4(protocolNumber: 17, transport: Array(ends.udp()[20..<(20 + keep)]))
            })
            cases.append(Self.badTransportCase("total length cuts the UDP header at \(keep) bytes") { Self.withTotalLength($0.udp(), 20 + keep) })
        }
        for field in [0, 1, 7, 14, 65535] { // the datagram is 13 bytes
            cases.append(Self.badTransportCase("UDP length field \(field) for 13 bytes") { $0.udp(lengthField: field) })
        }
        cases += [
            Self.badTransportCase("total length cuts the UDP datagram short of its length field") { Self.withTotalLength($0.udp(), 32) },
            CorpusCase("UDP length shorter than the IP payload (bytes after the datagram)", outbound: .rewritten, inbound: .rewritten,
                       hairpin: .rewritten, extra: { before, after in before.suffix(4) == after.suffix(4) }) { $0.udp(extra: [9, 9, 9, 9]) },
            CorpusCase("UDP without payload", all: .rewritten) { $0.udp(payload: []) },
            CorpusCase("UDP with checksum 0 (none)", all: .rewritten) { $0.udp(checksum: .zero) },
            CorpusCase("UDP with link padding", outbound: .rewritten, inbound: .rewritten, hairpin: .rewritten,
                       extra: { before, after in before.suffix(2) == after.suffix(2) }) { $0.udp(ip: IPv4Fields(trailing: [0x55, 0xaa])) },
            CorpusCase("UDP source port 0", outbound: .dropped(.zeroPort), inbound: .passed(.inboundUnmatched), hairpin: .dropped(.zeroPort)) {
                PacketBuilder.udp($0.source, 0, $0.destination, $0.destinationPort)
            },
        ]
        Corpus.check(cases)
    }

    // MARK: ICMP, no transport, other protocols

    @Test("ICMP queries, empty transports and protocols without ports")
    func icmpAndOthers() {
        var cases: [CorpusCase] = []
        for keep in 0..<8 {
            cases.append(Self.badTransportCase("ICMP header cut at \(keep) bytes") { ends in
                ends.ipv4(protocolNumber: 1, transport: Array(ends.echo()[20..<(20 + keep)]))
            })
        }
        for protocolNumber: UInt8 in [1, 6, 17] {
            cases.append(Self.badTransportCase("protocol \(protocolNumber) with no transport bytes") {
                $0.ipv4(protocolNumber: protocolNumber, transport: [])
            })
        }
        cases += [
            Self.icmpTranslatedCase("echo without data") { $0.echo(payload: []) },
            Self.icmpTranslatedCase("echo with 1 byte of data") { $0.echo(payload: [0x7f]) },
            Self.icmpNotTranslatedCase("ICMP type 42") { PacketBuilder.icmp($0.source, $0.destination, type: 42, identifier: $0.icmpID) },
            Self.icmpNotTranslatedCase("ICMP redirect (type 5)") { PacketBuilder.icmp($0.source, $0.destination, type: 5, identifier: 0) },
            // Address-only NAT: outbound they are translated whatever they carry; inbound, no
            // row exists on a fresh rig, so they go to the router's stack.
            CorpusCase("GRE with no transport bytes", outbound: .rewritten, inbound: .passed(.inboundUnmatched),
                       hairpin: .passed(.hairpinPassed)) { $0.ipv4(protocolNumber: 47, transport: []) },
            CorpusCase("SCTP-numbered junk", outbound: .rewritten, inbound: .passed(.inboundUnmatched),
                       hairpin: .passed(.hairpinPassed)) { $0.ipv4(protocolNumber: 132, transport: [UInt8](repeating: 0xee, count: 12)) },
            CorpusCase("protocol 253 with one byte", outbound: .rewritten, inbound: .passed(.inboundUnmatched),
                       hairpin: .passed(.hairpinPassed)) { $0.ipv4(protocolNumber: 253, transport: [0x01]) },
            CorpusCase("protocol 255 (reserved)", outbound: .rewritten, inbound: .passed(.inboundUnmatched),
                       hairpin: .passed(.hairpinPassed)) { $0.ipv4(protocolNumber: 255, transport: [UInt8](repeating: 0, count: 8)) },
        ]
        // Their checksum covers the pseudo-header, so it must be there to be fixed.
        for protocolNumber: UInt8 in [33, 136] {
            for keep in [0, 4, 7] {
                cases.append(Self.badTransportCase("protocol \(protocolNumber) cut at \(keep) bytes") {
                    $0.ipv4(protocolNumber: protocolNumber, transport: [UInt8](repeating: 0x42, count: keep))
                })
            }
        }
        Corpus.check(cases)
    }

    // MARK: fragments that reach the translator

    @Test("fragments that reach the translator (the engine reassembles first) are dropped in every direction")
    func fragments() {
        var cases: [CorpusCase] = []
        for (name, bits) in [("first fragment (MF)", UInt16(0x2000)), ("middle fragment", 0x2000 | 185), ("last fragment", 185),
                             ("DF and an offset", 0x4000 | 1), ("MF on a TCP SYN", 0x2000)] {
            cases.append(CorpusCase(name, all: .dropped(.fragmentUnsupported)) { ends in
                name.contains("TCP") ? ends.tcp(ip: IPv4Fields(flagsAndFragment: bits)) : ends.udp(ip: IPv4Fields(flagsAndFragment: bits))
            })
        }
        Corpus.check(cases)
    }

    // MARK: IP options

    static let validOptions: [(String, [UInt8])] = [
        ("NOP NOP NOP EOL", [1, 1, 1, 0]),
        ("router alert", [148, 4, 0, 0]),
        ("record route, 2 slots + NOP", [7, 11, 4, 0, 0, 0, 0, 0, 0, 0, 0, 1]),
        ("timestamp, 2 slots", [68, 12, 5, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
        ("record route filling 40 bytes", [7, 39, 4] + [UInt8](repeating: 0, count: 36) + [0]),
    ]

    static var garbageOptions: [(String, [UInt8])] {
        var rng = SeededRNG(seed: 0x0b7_1045)
        return [
            ("option length 0", [0xff, 0x00, 0x12, 0x34]),
            ("timestamp longer than the header", [68, 64, 5, 0]),
            ("unknown option 0x9e", [0x9e, 0x08, 1, 2, 3, 4, 5, 6]),
            ("20 random bytes", rng.bytes(20)),
            ("40 random bytes", rng.bytes(40)),
        ]
    }

    @Test("IP options, valid or garbage, are carried through untouched; every checksum verifies")
    func ipOptions() {
        var cases: [CorpusCase] = []
        for (name, options) in Self.validOptions + Self.garbageOptions {
            let ip = IPv4Fields(options: options)
            cases += [
                CorpusCase("TCP, options: \(name)", outbound: .rewritten, inbound: .rewritten, hairpin: .rewritten,
                           extra: Self.optionsUnchanged) { $0.tcp(payload: [1, 2, 3], ip: ip) },
                CorpusCase("UDP, options: \(name)", outbound: .rewritten, inbound: .rewritten, hairpin: .rewritten,
                           extra: Self.optionsUnchanged) { $0.udp(ip: ip) },
                Self.icmpTranslatedCase("echo, options: \(name)", extra: Self.optionsUnchanged) { $0.echo(ip: ip) },
                Self.badTransportCase("UDP cut after its ports, options: \(name)") { ends in
                    ends.ipv4(protocolNumber: 17, transport: [0x9c, 0x41, 0x1f, 0x90], ip: ip)
                },
            ]
        }
        Corpus.check(cases)
    }

    @Test("IP options with checksums the kernel left unfinished (CHECKSUM_PARTIAL): the full sum is written")
    func ipOptionsChecksumNotReady() {
        var cases: [CorpusCase] = []
        for (name, options) in Self.validOptions {
            let ip = IPv4Fields(options: options)
            cases += [
                CorpusCase("TCP not ready, options: \(name)", outbound: .rewritten, inbound: .rewritten, hairpin: .rewritten,
                           extra: Self.optionsUnchanged) { $0.tcp(payload: [1, 2, 3], checksum: .notReady, ip: ip) },
                CorpusCase("UDP not ready, options: \(name)", outbound: .rewritten, inbound: .rewritten, hairpin: .rewritten,
                           extra: Self.optionsUnchanged) { $0.udp(checksum: .notReady, ip: ip) },
            ]
        }
        Corpus.check(cases, notReady: true)
    }

    // MARK: ICMP errors

    @Test("ICMP errors about live sessions are translated, quotes of every readable shape")
    func icmpErrorsTranslated() {
        Corpus.check([
            Self.icmpTranslatedCase("port unreachable quoting 28 bytes") { $0.icmpError(inner: Array($0.quoted.prefix(28))) },
            Self.icmpTranslatedCase("port unreachable quoting the whole datagram") { $0.icmpError(inner: $0.quoted) },
            Self.icmpTranslatedCase("fragmentation needed quoting TCP cut after 8 bytes (no checksum quoted)") {
                $0.icmpError(code: 4, inner: Array($0.quotedTCP.prefix(28)))
            },
            Self.icmpTranslatedCase("time exceeded quoting the whole TCP header") { $0.icmpError(type: 11, code: 0, inner: $0.quotedTCP) },
            Self.icmpTranslatedCase("parameter problem") { $0.icmpError(type: 12, code: 0, inner: Array($0.quoted.prefix(28))) },
            Self.icmpTranslatedCase("quoted header with IP options") { ends in
                ends.icmpError(inner: Self.requoteUDP(ends.quoted, ip: IPv4Fields(options: [1, 1, 1, 0])))
            },
            Self.icmpTranslatedCase("quoted header with 40 bytes of options, 8 bytes of UDP") { ends in
                ends.icmpError(inner: Array(Self.requoteUDP(ends.quoted, ip: IPv4Fields(options: Self.validOptions[4].1)).prefix(68)))
            },
        ])
    }

    @Test("ICMP errors with garbage, cut or nested quotes are not translated")
    func icmpErrorsWithGarbageQuotes() {
        var rng = SeededRNG(seed: 0x1c3b_0e77)
        let randomQuotes = (0..<8).map { _ in [0x45] + rng.bytes(27) }
        var cases: [CorpusCase] = [
            Self.icmpNotTranslatedCase("error with no quote") { $0.icmpError(inner: []) },
            Self.icmpNotTranslatedCase("quote of 10 bytes") { $0.icmpError(inner: Array($0.quoted.prefix(10))) },
            Self.icmpNotTranslatedCase("quote of 27 bytes (one short of IP header + 8)") { $0.icmpError(inner: Array($0.quoted.prefix(27))) },
            Self.icmpNotTranslatedCase("quote with version 6") { ends in
                var inner = Array(ends.quoted.prefix(28))
                inner[0] = 0x65
                return ends.icmpError(inner: inner)
            },
            Self.icmpNotTranslatedCase("quote with IHL 4") { ends in
                var inner = Array(ends.quoted.prefix(28))
                inner[0] = 0x44
                return ends.icmpError(inner: inner)
            },
            Self.icmpNotTranslatedCase("quote with IHL 15 beyond the quote") { ends in
                var inner = Array(ends.quoted.prefix(28))
                inner[0] = 0x4f
                return ends.icmpError(inner: inner)
            },
            Self.icmpNotTranslatedCase("quote with IHL 6 leaving 4 transport bytes") { ends in
                ends.icmpError(inner: Array(Self.requoteUDP(ends.quoted, ip: IPv4Fields(options: [1, 1, 1, 0])).prefix(28)))
            },
            Self.icmpNotTranslatedCase("quote of a non-first fragment") { ends in
                ends.icmpError(inner: Array(Self.requoteUDP(ends.quoted, ip: IPv4Fields(flagsAndFragment: 0x2000 | 3)).prefix(28)))
            },
            Self.icmpNotTranslatedCase("quote of a GRE packet") { ends in
                var inner = Array(ends.quoted.prefix(28))
                inner[9] = 47
                return ends.icmpError(inner: Self.fixIPChecksum(inner))
            },
            Self.icmpNotTranslatedCase("nested: an error quoting an error about the session") { ends in
                let quoted = ends.quoted
                let innerError = PacketBuilder.icmp(sourceAddress(quoted), destinationAddress(quoted), type: 3, code: 3, identifier: 0,
                                                    sequence: 0, payload: Array(quoted.prefix(28)))
                return ends.icmpError(inner: innerError)
            },
            Self.icmpNotTranslatedCase("nested, cut: an error quoting the first 28 bytes of an error") { ends in
                let quoted = ends.quoted
                let innerError = PacketBuilder.icmp(sourceAddress(quoted), destinationAddress(quoted), type: 11, code: 0, identifier: 0,
                                                    sequence: 0, payload: Array(quoted.prefix(28)))
                return ends.icmpError(type: 11, code: 0, inner: Array(innerError.prefix(28)))
            },
            Self.icmpNotTranslatedCase("quote of an echo no session knows") { ends in
                ends.icmpError(type: 11, code: 0, inner: Array(PacketBuilder.icmp(sourceAddress(ends.quoted), destinationAddress(ends.quoted),
                                                                                   identifier: 999).prefix(28)))
            },
            Self.icmpNotTranslatedCase("quote of the session's ports with another remote") { ends in
                var inner = Array(ends.quoted.prefix(28))
                let remoteAt = ends.direction == .inbound ? 16 : 12 // the remote is the quoted destination inbound, the source outbound
                inner[remoteAt + 3] = 3 // 203.0.113.2 → 203.0.113.3
                return ends.icmpError(inner: Self.fixIPChecksum(inner))
            },
        ]
        for (i, quote) in randomQuotes.enumerated() {
            cases.append(Self.icmpNotTranslatedCase("random quote \(i)") { $0.icmpError(inner: quote) })
        }
        Corpus.check(cases)
    }
}
