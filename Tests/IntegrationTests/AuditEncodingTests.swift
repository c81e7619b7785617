import NATCore
import Testing
@testable import Masqd

// The audit outputs without a network: IPFIX messages byte by byte (written out here by hand
// from RFC 7011 §3 and RFC 8158, not by the encoder), the journal line, and the options.

@Suite("Audit encoding")
struct AuditEncodingTests {
    static let inside = IPv4Address(192, 0, 2, 10).value      // c0 00 02 0a
    static let wan = IPv4Address(203, 0, 113, 1).value        // cb 00 71 01
    static let remote = IPv4Address(198, 51, 100, 5).value    // c6 33 64 05

    static func record(_ kind: NATEventKind, proto: UInt8 = 6, ms: UInt64 = 0x0000_018C_1234_5678) -> IPFIXEncoder.Record {
        let session = kind.isSession
        return .init(event: NATEvent(timeNanoseconds: 99, kind: kind, reason: .outbound, protocolNumber: proto,
                                     internalAddress: inside, internalPort: 40000, externalAddress: wan, externalPort: 40001,
                                     remoteAddress: session ? remote : 0, remotePort: session ? 80 : 0),
                     milliseconds: ms)
    }

    static func hex(_ text: String) -> [UInt8] {
        let digits = text.filter { !$0.isWhitespace && $0 != "|" }
        return stride(from: 0, to: digits.count, by: 2).map {
            let start = digits.index(digits.startIndex, offsetBy: $0)
            return UInt8(digits[start...digits.index(after: start)], radix: 16)!
        }
    }

    static let templateSet = hex("""
        0002 0078
        0100 000b  0143 0008  00e6 0001  0004 0001  0008 0004  0007 0002  00e1 0004  00e3 0002
                   000c 0004  000b 0002  00e2 0004  00e4 0002
        0101 0007  0143 0008  00e6 0001  0004 0001  0008 0004  0007 0002  00e1 0004  00e3 0002
        0102 0008  0143 0008  00e6 0001  0008 0004  00e1 0004  0169 0002  016a 0002  016b 0002  016c 0002
        """)

    @Test("the template message: header, set 2, templates 256 (11 fields), 257 (7 fields) and 258 (port blocks, 8 fields)")
    func templateMessage() {
        var encoder = IPFIXEncoder(domainID: 7)
        let messages = encoder.messages([IPFIXEncoder.Record](), exportTime: 0x5F00_0102, templates: true)
        #expect(messages.count == 1)
        #expect(messages.first?.bytes == Self.hex("000a 0088 5f000102 00000000 00000007") + Self.templateSet)
        #expect(messages.first?.records == 0)
        #expect(encoder.sequenceNumber == 0) // templates do not count
        // Nothing to send and no templates due: no message at all.
        #expect(encoder.messages([IPFIXEncoder.Record](), exportTime: 1, templates: false).isEmpty)
    }

    @Test("data records: one set per run of a template, every field, the sequence counts records before the message")
    func dataRecords() {
        var encoder = IPFIXEncoder(domainID: 0x0102_0304)
        let first = encoder.messages([Self.record(.mappingCreated), Self.record(.sessionCreated)], exportTime: 0x6000_0000, templates: false)
        #expect(first.count == 1 && first.first?.records == 2)
        #expect(first.first?.bytes == Self.hex("""
            000a 0050 60000000 00000000 01020304
            0101 001a  0000018c12345678 08 06 c000020a 9c40 cb007101 9c41
            0100 0026  0000018c12345678 04 06 c000020a 9c40 cb007101 9c41 c6336405 0050 c6336405 0050
            """))
        #expect(encoder.sequenceNumber == 2)
        let second = encoder.messages([Self.record(.sessionRemoved, proto: 17, ms: 1), Self.record(.mappingRemoved, proto: 17, ms: 2)],
                                      exportTime: 0x6000_0001, templates: true)
        #expect(second.first?.bytes == Self.hex("000a 00c8 60000001 00000002 01020304") + Self.templateSet + Self.hex("""
            0100 0026  0000000000000001 05 11 c000020a 9c40 cb007101 9c41 c6336405 0050 c6336405 0050
            0101 001a  0000000000000002 09 11 c000020a 9c40 cb007101 9c41
            """))
        #expect(encoder.sequenceNumber == 4)
    }

    @Test("many records: messages of at most 1400 bytes, each with its own sequence number")
    func splitAcrossMessages() {
        var encoder = IPFIXEncoder(domainID: 1)
        let records = (0..<100).map { Self.record(.sessionCreated, ms: UInt64($0)) }
        let messages = encoder.messages(records, exportTime: 5, templates: false)
        // 16 + 4 + 40 × 34 = 1380; a 41st would make 1414.
        #expect(messages.map(\.records) == [40, 40, 20])
        #expect(messages.map(\.bytes.count) == [1380, 1380, 700])
        for (message, sequence) in zip(messages, [0, 40, 80] as [UInt32]) {
            let b = message.bytes
            #expect(Int(b[2]) << 8 | Int(b[3]) == b.count)
            #expect(Array(b[8..<12]) == [UInt8(sequence >> 24), UInt8(sequence >> 16 & 0xff), UInt8(sequence >> 8 & 0xff), UInt8(sequence & 0xff)])
            #expect(Array(b[16..<20]) == [0x01, 0x00, UInt8((b.count - 16) >> 8), UInt8((b.count - 16) & 0xff)])
        }
        // The last record of the second message is record 79: its time is 79 ms.
        #expect(Array(messages[1].bytes[(1380 - 34)..<(1380 - 26)]) == [0, 0, 0, 0, 0, 0, 0, 79])
        #expect(encoder.sequenceNumber == 100)
        // With the templates in front, the first message holds 37: 16 + 120 + 4 + 37 × 34 = 1398.
        var fresh = IPFIXEncoder(domainID: 1)
        #expect(fresh.messages(records, exportTime: 5, templates: true).map(\.records) == [37, 40, 23])
    }

    static func block(_ kind: NATEventKind, first: UInt16, last: UInt16, ms: UInt64) -> IPFIXEncoder.Record {
        .init(event: NATEvent(timeNanoseconds: 1, kind: kind, reason: .outbound, protocolNumber: 0, internalAddress: inside, internalPort: 0,
                              externalAddress: wan, externalPort: first, remotePort: last),
              milliseconds: ms)
    }

    @Test("port blocks: RFC 8158 natEvent 16 and 17 with portRangeStart, End, StepSize 1 and NumPorts, in template 258")
    func portBlockRecords() {
        var encoder = IPFIXEncoder(domainID: 9)
        let messages = encoder.messages([Self.block(.portBlockAllocated, first: 1088, last: 1151, ms: 3),
                                         Self.block(.portBlockReleased, first: 1088, last: 1151, ms: 4)],
                                        exportTime: 0x6000_0002, templates: false)
        // 16 + 4 + 2 × 25 = 70.
        #expect(messages.first?.bytes == Self.hex("""
            000a 0046 60000002 00000000 00000009
            0102 0036  0000000000000003 10 c000020a cb007101 0440 047f 0001 0040
                       0000000000000004 11 c000020a cb007101 0440 047f 0001 0040
            """))
        #expect(encoder.sequenceNumber == 2)
        let ms: UInt64 = 1_700_000_000_123
        var released = Self.block(.portBlockReleased, first: 1088, last: 1151, ms: 0).event
        released.reason = .expired
        #expect(AuditLine.text(released, milliseconds: ms)
            == "nat-event port-block-released internal=192.0.2.10 external=203.0.113.1:1088-1151 reason=expired time=2023-11-14T22:13:20.123Z")
        // With port blocks, `mappings` logs the blocks only; `sessions` logs everything.
        #expect(AuditLogLevel.mappings.logs(.portBlockAllocated, portBlocks: true))
        #expect(!AuditLogLevel.mappings.logs(.mappingCreated, portBlocks: true) && !AuditLogLevel.mappings.logs(.sessionCreated, portBlocks: true))
        #expect(AuditLogLevel.sessions.logs(.mappingCreated, portBlocks: true) && AuditLogLevel.sessions.logs(.portBlockReleased, portBlocks: true))
    }

    static let routerLAN = IPv4Address(192, 0, 2, 1).value    // c0 00 02 01

    /// An ESP row (no ports) and a redirect of 192.0.2.10:40000 to 198.51.100.5:80, delivered to 192.0.2.1:3128.
    static let espRow = NATEvent(timeNanoseconds: 1, kind: .addressOnlyCreated, reason: .outbound, protocolNumber: 50,
                                 internalAddress: inside, internalPort: 0, externalAddress: wan, externalPort: 0,
                                 remoteAddress: remote, remotePort: 0)
    static let redirect = NATEvent(timeNanoseconds: 1, kind: .redirectCreated, reason: .outbound, protocolNumber: 6,
                                   internalAddress: inside, internalPort: 40000, externalAddress: routerLAN, externalPort: 3128,
                                   remoteAddress: remote, remotePort: 80)

    @Test("address-only rows and redirects: NAT44 sessions (natEvent 4/5, template 256); ports 0 for ESP, the redirect's post-NAT destination is the proxy")
    func addressOnlyAndRedirectRecords() {
        var removedRow = Self.espRow, removedRedirect = Self.redirect
        removedRow.kind = .addressOnlyRemoved
        removedRedirect.kind = .redirectRemoved
        var encoder = IPFIXEncoder(domainID: 3)
        let messages = encoder.messages([Self.espRow, removedRow, Self.redirect, removedRedirect].enumerated().map {
            IPFIXEncoder.Record(event: $0.element, milliseconds: UInt64($0.offset))
        }, exportTime: 0x6000_0003, templates: false)
        // 16 + 4 + 4 × 34 = 156. The redirect's source is not translated (post-NAT source = the client).
        #expect(messages.first?.bytes == Self.hex("""
            000a 009c 60000003 00000000 00000003
            0100 008c  0000000000000000 04 32 c000020a 0000 cb007101 0000 c6336405 0000 c6336405 0000
                       0000000000000001 05 32 c000020a 0000 cb007101 0000 c6336405 0000 c6336405 0000
                       0000000000000002 04 06 c000020a 9c40 c000020a 9c40 c6336405 0050 c0000201 0c38
                       0000000000000003 05 06 c000020a 9c40 c000020a 9c40 c6336405 0050 c0000201 0c38
            """))
        let ms: UInt64 = 1_700_000_000_123
        removedRow.reason = .addressChanged
        #expect(AuditLine.text(removedRow, milliseconds: ms)
            == "nat-event address-only-removed proto=esp internal=192.0.2.10 external=203.0.113.1 remote=198.51.100.5 reason=address-changed time=2023-11-14T22:13:20.123Z")
        var unnamed = Self.espRow
        unnamed.protocolNumber = 253
        #expect(AuditLine.text(unnamed, milliseconds: ms)
            == "nat-event address-only-created proto=253 internal=192.0.2.10 external=203.0.113.1 remote=198.51.100.5 reason=outbound time=2023-11-14T22:13:20.123Z")
        removedRedirect.reason = .tcpClosed
        #expect(AuditLine.text(removedRedirect, milliseconds: ms)
            == "nat-event redirect-removed proto=tcp internal=192.0.2.10:40000 external=192.0.2.1:3128 remote=198.51.100.5:80 reason=tcp-closed time=2023-11-14T22:13:20.123Z")
    }

    @Test("which events are audited: one rule for the journal's two levels and IPFIX, with and without port blocks")
    func auditedKinds() {
        let all: [NATEventKind] = [.mappingCreated, .mappingRemoved, .sessionCreated, .sessionRemoved, .sessionEstablished,
                                   .portBlockAllocated, .portBlockReleased, .addressOnlyCreated, .addressOnlyRemoved,
                                   .redirectCreated, .redirectRemoved]
        func settings(_ level: AuditLogLevel?, ipfix: Bool, portBlocks: Bool) -> AuditSettings {
            var s = AuditSettings()
            s.journal = level
            s.ipfix = ipfix ? IPFIXSettings(collector: MetricsEndpoint("192.0.2.50:4739")!, domainID: 1) : nil
            s.portBlocks = portBlocks
            return s
        }
        func journaled(_ s: AuditSettings) -> [NATEventKind] { all.filter { s.journals($0) } }
        func exported(_ s: AuditSettings) -> [NATEventKind] { all.filter { s.exports($0) } }
        // Address-only rows at the mapping level, with or without blocks; redirects with the sessions.
        #expect(journaled(settings(.mappings, ipfix: false, portBlocks: false))
            == [.mappingCreated, .mappingRemoved, .portBlockAllocated, .portBlockReleased, .addressOnlyCreated, .addressOnlyRemoved])
        #expect(journaled(settings(.mappings, ipfix: false, portBlocks: true))
            == [.portBlockAllocated, .portBlockReleased, .addressOnlyCreated, .addressOnlyRemoved])
        #expect(journaled(settings(.sessions, ipfix: false, portBlocks: true)) == all.filter { $0 != .sessionEstablished })
        #expect(exported(settings(.sessions, ipfix: false, portBlocks: false)).isEmpty)
        #expect(journaled(settings(nil, ipfix: true, portBlocks: false)).isEmpty)
        #expect(exported(settings(nil, ipfix: true, portBlocks: false)) == all.filter { $0 != .sessionEstablished })
        #expect(exported(settings(.sessions, ipfix: true, portBlocks: true))
            == [.portBlockAllocated, .portBlockReleased, .addressOnlyCreated, .addressOnlyRemoved])
    }

    @Test("the journal line of a mapping and of a session")
    func journalLines() {
        let ms: UInt64 = 1_700_000_000_123
        #expect(AuditLine.utcTimestamp(milliseconds: ms) == "2023-11-14T22:13:20.123Z")
        #expect(AuditLine.utcTimestamp(milliseconds: 1_000_000_000_007) == "2001-09-09T01:46:40.007Z")
        #expect(AuditLine.text(Self.record(.mappingCreated).event, milliseconds: ms)
            == "nat-event mapping-created proto=tcp internal=192.0.2.10:40000 external=203.0.113.1:40001 reason=outbound time=2023-11-14T22:13:20.123Z")
        var removed = Self.record(.sessionRemoved, proto: 17).event
        removed.reason = .tcpReset
        #expect(AuditLine.text(removed, milliseconds: ms)
            == "nat-event session-removed proto=udp internal=192.0.2.10:40000 external=203.0.113.1:40001 remote=198.51.100.5:80 reason=tcp-reset time=2023-11-14T22:13:20.123Z")
        #expect(AuditLogLevel.mappings.logs(.mappingRemoved) && !AuditLogLevel.mappings.logs(.sessionCreated))
        #expect(AuditLogLevel.sessions.logs(.mappingRemoved) && AuditLogLevel.sessions.logs(.sessionCreated))
    }

    static func settings(_ args: [String]) throws -> EngineSettings {
        try OptionCheck.settings(["--wan", "eth0", "--queue", "3"] + args)
    }

    static func failure(_ args: [String]) -> String { OptionCheck.message(["--wan", "eth0", "--queue", "3"] + args) }

    @Test("the options: defaults, values, and a one-line error naming each bad value")
    func options() throws {
        #expect(try Self.settings([]).audit == AuditSettings())
        let both = try Self.settings(["--audit-log", "sessions", "--ipfix-collector", "192.0.2.50:4739"]).audit
        #expect(both.journal == .sessions)
        #expect(both.ipfix == IPFIXSettings(collector: MetricsEndpoint(address: IPv4Address(192, 0, 2, 50), port: 4739), domainID: 3))
        #expect(try Self.settings(["--ipfix-collector", "192.0.2.50:4739", "--ipfix-domain-id", "4294967295"]).audit.ipfix?.domainID == 4_294_967_295)
        #expect(Self.failure(["--audit-log", "all"]) == "--audit-log all: expected mappings or sessions")
        #expect(Self.failure(["--ipfix-collector", "collector:4739"])
            == "--ipfix-collector collector:4739: expected ADDR:PORT with an IPv4 address and a UDP port 1-65535, e.g. 192.0.2.50:4739")
        #expect(Self.failure(["--ipfix-collector", "192.0.2.50:0"]).hasPrefix("--ipfix-collector 192.0.2.50:0: expected ADDR:PORT"))
        #expect(Self.failure(["--ipfix-collector", "192.0.2.50:4739", "--ipfix-domain-id", "4294967296"])
            == "--ipfix-domain-id 4294967296: expected a number from 0 to 4294967295")
        #expect(Self.failure(["--ipfix-domain-id", "5"]) == "--ipfix-domain-id 5: needs --ipfix-collector")
    }

    @Test("a reload may not change them: each is named with its old and new value")
    func fixedWhileRunning() throws {
        let old = try Self.settings(["--audit-log", "mappings"])
        let new = try Self.settings(["--audit-log", "sessions", "--ipfix-collector", "192.0.2.50:4739"])
        let fixed = Engine.unchangeable(old, new).map { "\($0.key) \($0.old) -> \($0.new)" }
        #expect(fixed == ["audit-log mappings -> sessions", "ipfix-collector off -> 192.0.2.50:4739", "ipfix-domain-id off -> 3"])
        #expect(Engine.unchangeable(new, try Self.settings(["--audit-log", "sessions", "--ipfix-collector", "192.0.2.50:4739"])).isEmpty)
    }
}
