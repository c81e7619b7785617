import NATTestKit
import Testing
@testable import NATCore

// The harness of MalformedCorpusTests: one translator set up so that a well-formed packet
// would be translated in every direction, the outcome a case expects per direction, and the
// check that exactly the expected counter moved.

/// What a direction must do with a corpus packet.
enum CorpusOutcome: CustomStringConvertible {
    /// `.acceptRewritten`; addresses as the direction rewrites them, every checksum verified
    /// with RefChecksum, the direction's translated counter up by one, no drop or pass counter moved.
    case rewritten
    /// `.accept`, bytes unchanged, exactly this pass counter up by one, no drop counter moved.
    case passed(CorpusPassCounter)
    /// `.drop(reason)`, bytes unchanged, exactly this drop counter up by one, nothing else moved.
    case dropped(DropReason)

    var description: String {
        switch self {
        case .rewritten: "rewritten"
        case .passed(let counter): "passed (\(counter.rawValue))"
        case .dropped(let reason): "dropped (drop_\(reason))"
        }
    }
}

/// The counters that explain a packet passed unchanged.
enum CorpusPassCounter: String {
    case inboundUnmatched = "inbound_unmatched"
    case inboundNotForUs = "inbound_not_for_us"
    case hairpinPassed = "hairpin_passed"
    case outboundNotInternal = "outbound_not_internal"
}

/// The two ends of a corpus packet sent in one direction, and what an ICMP error sent that
/// way quotes (a packet of a live session, as it crossed the NAT the other way).
struct CorpusEnds {
    let direction: PacketDirection
    let source: IPv4Bytes
    let sourcePort: UInt16
    let destination: IPv4Bytes
    let destinationPort: UInt16
    /// Echo identifier and type that match a live echo session in this direction.
    let icmpID: UInt16
    let icmpType: UInt8
    let quoted: [UInt8]
    /// The same for hostA's TCP session.
    let quotedTCP: [UInt8]

    func tcp(flags: UInt8 = TCPFlag.syn, options: [UInt8] = [], payload: [UInt8] = [], checksum: L4Checksum = .valid,
             ip: IPv4Fields = IPv4Fields()) -> [UInt8] {
        PacketBuilder.tcp(source, sourcePort, destination, destinationPort, flags: flags, options: options, payload: payload,
                          checksum: checksum, ip: ip)
    }

    func udp(payload: [UInt8] = Array("hello".utf8), checksum: L4Checksum = .valid, extra: [UInt8] = [], lengthField: Int? = nil,
             ip: IPv4Fields = IPv4Fields()) -> [UInt8] {
        PacketBuilder.udp(source, sourcePort, destination, destinationPort, payload: payload, checksum: checksum, extra: extra,
                          lengthField: lengthField, ip: ip)
    }

    func echo(payload: [UInt8] = Array("abcdefghijklmnop".utf8), ip: IPv4Fields = IPv4Fields()) -> [UInt8] {
        PacketBuilder.icmp(source, destination, type: icmpType, identifier: icmpID, payload: payload, ip: ip)
    }

    /// An ICMP error from this side quoting `inner` (the unused word is zero).
    func icmpError(type: UInt8 = 3, code: UInt8 = 3, inner: [UInt8]) -> [UInt8] {
        PacketBuilder.icmpError(type: type, code: code, from: source, to: destination, quoting: inner)
    }

    /// `transport` as the protocol's bytes after a plain IP header.
    func ipv4(protocolNumber: UInt8, transport: [UInt8], ip: IPv4Fields = IPv4Fields()) -> [UInt8] {
        PacketBuilder.ipv4(source: source, destination: destination, protocolNumber: protocolNumber, transport: transport, fields: ip)
    }
}

/// One corpus entry: a packet built for each direction, and what each direction must do.
struct CorpusCase {
    let name: String
    let outbound: CorpusOutcome
    let inbound: CorpusOutcome
    let hairpin: CorpusOutcome
    /// For rewritten packets: more to check on (before, after), e.g. untouched options.
    var extra: ((_ before: [UInt8], _ after: [UInt8]) -> Bool)? = nil
    /// False for a packet that arrives with a wrong IP header checksum: it must stay wrong.
    var headerChecksumValid = true
    let build: (CorpusEnds) -> [UInt8]

    init(_ name: String, outbound: CorpusOutcome, inbound: CorpusOutcome, hairpin: CorpusOutcome,
         headerChecksumValid: Bool = true,
         extra: ((_ before: [UInt8], _ after: [UInt8]) -> Bool)? = nil, build: @escaping (CorpusEnds) -> [UInt8]) {
        self.name = name
        self.outbound = outbound
        self.inbound = inbound
        self.hairpin = hairpin
        self.headerChecksumValid = headerChecksumValid
        self.extra = extra
        self.build = build
    }

    /// The same outcome in all three directions.
    init(_ name: String, all outcome: CorpusOutcome, build: @escaping (CorpusEnds) -> [UInt8]) {
        self.init(name, outbound: outcome, inbound: outcome, hairpin: outcome, build: build)
    }
}

/// A translator in which well-formed corpus packets are translated in every direction:
/// forwards tcp/udp 8080 → hostA:80 (inbound from the remote, hairpin from hostB), and hostA's
/// live sessions (UDP and TCP 40000 → remote:8080, echo id 7) for replies and ICMP errors.
struct CorpusRig {
    let nat: NATTranslator
    let ends: [CorpusEnds]

    static let forwardPort: UInt16 = 8080
    static let internalPort: UInt16 = 80

    init() {
        nat = makeTranslator {
            $0.forwards = [PortForward("tcp:8080=192.0.2.10:80")!, PortForward("udp:8080=192.0.2.10:80")!]
        }
        var udp = PacketBuilder.udp(Net.hostA, 40000, Net.remote, 8080)
        var tcp = PacketBuilder.tcp(Net.hostA, 40000, Net.remote, 8080)
        var echo = PacketBuilder.icmp(Net.hostA, Net.remote, identifier: 7)
        for (i, packet) in [udp, tcp, echo].enumerated() {
            var p = packet
            let verdict = nat.run(&p, .outbound)
            precondition(verdict == .acceptRewritten, "corpus rig seed \(i): \(verdict)")
            switch i {
            case 0: udp = p
            case 1: tcp = p
            default: echo = p
            }
        }
        let udpPort = sourcePort(udp)
        let tcpPort = sourcePort(tcp)
        let echoID = sourcePort(echo)
        ends = [
            CorpusEnds(direction: .outbound, source: Net.hostA, sourcePort: 40001, destination: Net.remote, destinationPort: 8080,
                       icmpID: 7, icmpType: ICMPHeader.echoRequest,
                       // hostA got this reply from the remote through the NAT; hostA's error quotes it.
                       quoted: PacketBuilder.udp(Net.remote, 8080, Net.hostA, 40000),
                       quotedTCP: PacketBuilder.tcp(Net.remote, 8080, Net.hostA, 40000, flags: TCPFlag.syn | TCPFlag.ack)),
            CorpusEnds(direction: .inbound, source: Net.remote, sourcePort: 8080, destination: Net.external, destinationPort: Self.forwardPort,
                       icmpID: echoID, icmpType: ICMPHeader.echoReply,
                       // What the remote received from hostA's mapping; the remote's error quotes it.
                       quoted: PacketBuilder.udp(Net.external, udpPort, Net.remote, 8080),
                       quotedTCP: PacketBuilder.tcp(Net.external, tcpPort, Net.remote, 8080)),
            CorpusEnds(direction: .hairpin, source: Net.hostB, sourcePort: 40002, destination: Net.external, destinationPort: Self.forwardPort,
                       icmpID: 9, icmpType: ICMPHeader.echoRequest,
                       quoted: PacketBuilder.udp(Net.external, Self.forwardPort, Net.hostB, 40002),
                       quotedTCP: PacketBuilder.tcp(Net.external, Self.forwardPort, Net.hostB, 40002)),
        ]
    }
}

enum Corpus {
    /// Every counter that explains a packet, by its `masqd stats` name.
    static func tally(_ c: NATCounters) -> [String: UInt64] {
        var t: [String: UInt64] = [
            "translated_outbound": c[.outboundTranslated], "translated_inbound": c[.inboundTranslated],
            "hairpin_translated": c[.hairpinTranslated],
            CorpusPassCounter.inboundUnmatched.rawValue: c[.inboundUnmatched],
            CorpusPassCounter.inboundNotForUs.rawValue: c[.inboundNotForUs],
            CorpusPassCounter.hairpinPassed.rawValue: c[.hairpinPassed],
            CorpusPassCounter.outboundNotInternal.rawValue: c[.outboundNotInternal],
        ]
        for reason in DropReason.allCases { t["drop_\(reason)"] = c.drops(reason) }
        return t
    }

    static func translatedCounter(_ direction: PacketDirection) -> String {
        switch direction {
        case .outbound: "translated_outbound"
        case .inbound: "translated_inbound"
        case .hairpin: "hairpin_translated"
        }
    }

    /// Runs every case in every direction on a fresh rig and checks its outcome.
    static func check(_ cases: [CorpusCase], notReady: Bool = false, sourceLocation: SourceLocation = #_sourceLocation) {
        for corpusCase in cases {
            for direction in [PacketDirection.outbound, .inbound, .hairpin] {
                let rig = CorpusRig()
                let ends = rig.ends.first { $0.direction == direction }!
                let expected = switch direction {
                case .outbound: corpusCase.outbound
                case .inbound: corpusCase.inbound
                case .hairpin: corpusCase.hairpin
                }
                check(corpusCase, direction: direction, expected: expected, packet: corpusCase.build(ends), rig: rig,
                      notReady: notReady, sourceLocation: sourceLocation)
            }
        }
    }

    private static func check(_ corpusCase: CorpusCase, direction: PacketDirection, expected: CorpusOutcome, packet: [UInt8],
                              rig: CorpusRig, notReady: Bool, sourceLocation: SourceLocation) {
        let label = "\(corpusCase.name) [\(direction)] expected \(expected)"
        let before = tally(rig.nat.counters)
        let sessions = rig.nat.sessionCount
        var p = packet
        let verdict = rig.nat.run(&p, direction, notReady: notReady)
        let after = tally(rig.nat.counters)
        var moved: [String: UInt64] = [:]
        for (name, value) in after where value != before[name] { moved[name] = value - (before[name] ?? 0) }

        switch expected {
        case .dropped(let reason):
            #expect(verdict == .drop(reason), "\(label): got \(verdict)", sourceLocation: sourceLocation)
            #expect(p == packet, "\(label): a dropped packet was modified", sourceLocation: sourceLocation)
            #expect(moved == ["drop_\(reason)": 1], "\(label): counters moved \(moved)", sourceLocation: sourceLocation)
            #expect(rig.nat.sessionCount == sessions, "\(label): a dropped packet made a session", sourceLocation: sourceLocation)
        case .passed(let counter):
            #expect(verdict == .accept, "\(label): got \(verdict)", sourceLocation: sourceLocation)
            #expect(p == packet, "\(label): a packet passed unchanged was modified", sourceLocation: sourceLocation)
            #expect(moved == [counter.rawValue: 1], "\(label): counters moved \(moved)", sourceLocation: sourceLocation)
        case .rewritten:
            #expect(verdict == .acceptRewritten, "\(label): got \(verdict)", sourceLocation: sourceLocation)
            #expect(p.count == packet.count, "\(label): length changed", sourceLocation: sourceLocation)
            let translated = translatedCounter(direction)
            #expect(moved[translated] == 1, "\(label): \(translated) did not move: \(moved)", sourceLocation: sourceLocation)
            #expect(!moved.keys.contains { $0.hasPrefix("drop_") || CorpusPassCounter(rawValue: $0) != nil },
                    "\(label): counters moved \(moved)", sourceLocation: sourceLocation)
            guard verdict == .acceptRewritten, p.count == packet.count else { return }
            checkRewritten(label, direction: direction, before: packet, after: p, headerChecksumValid: corpusCase.headerChecksumValid,
                           sourceLocation: sourceLocation)
            if let extra = corpusCase.extra {
                #expect(extra(packet, p), "\(label): extra check failed", sourceLocation: sourceLocation)
            }
        }
    }

    /// Addresses as the direction rewrites them, and every checksum, verified independently.
    private static func checkRewritten(_ label: String, direction: PacketDirection, before: [UInt8], after p: [UInt8],
                                       headerChecksumValid: Bool, sourceLocation: SourceLocation) {
        #expect(Verify.ipHeaderChecksumValid(p) == headerChecksumValid, "\(label): IP header checksum valid must be \(headerChecksumValid)",
                sourceLocation: sourceLocation)
        let ihl = Verify.headerLength(p)
        let isError = p[9] == 1 && ![0, 8].contains(p[ihl])
        switch direction {
        case .outbound: #expect(sourceAddress(p) == Net.external, "\(label): source", sourceLocation: sourceLocation)
        case .inbound: #expect(destinationAddress(p) == Net.hostA, "\(label): destination", sourceLocation: sourceLocation)
        case .hairpin:
            #expect(sourceAddress(p) == Net.external && destinationAddress(p) == Net.hostA, "\(label): addresses",
                    sourceLocation: sourceLocation)
        }
        let udpWithoutChecksum = p[9] == 17 && Verify.be16(p, ihl + 6) == 0
        // Address-only NAT (no ports, no pseudo-header checksum: GRE, ESP, SCTP, 253...): the
        // transport bytes are not touched at all.
        let addressOnly = ![1, 6, 17, 33, 136].contains(p[9])
        if addressOnly {
            #expect(Array(p[ihl...]) == Array(before[ihl...]), "\(label): transport bytes changed", sourceLocation: sourceLocation)
        } else if udpWithoutChecksum {
            #expect(Verify.be16(before, ihl + 6) == 0, "\(label): UDP checksum became 0", sourceLocation: sourceLocation)
        } else {
            #expect(Verify.transportChecksumValid(p), "\(label): transport checksum", sourceLocation: sourceLocation)
        }
        if isError {
            // The quoted header: its own checksum, and the address that was translated.
            let inner = Array(p[(ihl + 8)..<Verify.totalLength(p)])
            let innerIHL = Verify.headerLength(inner)
            #expect(RefChecksum.sum(Array(inner[0..<innerIHL])) == 0xffff, "\(label): quoted IP header checksum",
                    sourceLocation: sourceLocation)
            switch direction {
            case .outbound: #expect(destinationAddress(inner) == Net.external, "\(label): quoted destination", sourceLocation: sourceLocation)
            case .inbound: #expect(sourceAddress(inner) == Net.hostA, "\(label): quoted source", sourceLocation: sourceLocation)
            case .hairpin: break
            }
        }
    }
}
