import NATCore
import PacketTestSupport
import Testing

// The helper shown in README.md ("Writing a helper"), verbatim, so the example stays true:
// it must compile against the public API and do what the README says.

public final class AnnounceHelper: ApplicationHelper {
    public let name = "announce"
    public init() {}

    public func inspect(_ data: HelperData, _ context: inout HelperContext) -> HelperVerdict {
        guard context.senderIsInternal else { return .pass }
        let bytes = data.bytes
        var lineStart = 0
        for i in 0..<bytes.count where bytes[i] == UInt8(ascii: "\n") {
            // "ME " followed by the address, up to the end of the line.
            if i - lineStart > 3, bytes[lineStart] == UInt8(ascii: "M"), bytes[lineStart + 1] == UInt8(ascii: "E"),
               bytes[lineStart + 2] == UInt8(ascii: " ") {
                let external = context.externalAddress
                if context.replace(lineStart + 3..<i, { $0.write(address: external, separator: UInt8(ascii: ".")) }) {
                    context.count(.rewrite)
                }
            }
            lineStart = i + 1
        }
        // Hold an unfinished last line so it is rewritten whole.
        return lineStart < bytes.count ? .holdFrom(lineStart) : .pass
    }
}

@Suite("README example helper")
struct ReadmeExampleHelperTests {
    @Test("ME lines from inside name the WAN address, even split across segments; the SEQ of later data follows")
    func announceRewrites() {
        var configuration = NATConfiguration(externalAddress: Net.external.address, internalPrefixes: [IPv4Prefix("192.0.2.0/24")!])
        configuration.maxSessions = 64
        configuration.maxMappings = 64
        configuration.helpers = [HelperRegistration(helper: AnnounceHelper(), ports: [7777])]
        let nat = NATTranslator(configuration: configuration)
        let link = clientInsideLink(nat, serverPort: 7777)
        var seq = insideISN + 1
        let first = link.fromInside("hi\nME 192.0.2.10\n", seq: seq, ack: outsideISN + 1)
        expectWellFormed(first)
        #expect(first.text == "hi\nME 203.0.113.1\n")
        #expect(first.seq == seq)
        seq += UInt32("hi\nME 192.0.2.10\n".utf8.count)
        // Split: "ME 192.0" + ".2.10\n": the first part is held, the rewrite comes whole.
        let part1 = link.fromInside("ME 192.0", seq: seq, ack: outsideISN + 1)
        #expect(part1.payload.isEmpty)
        let part2 = link.fromInside(".2.10\n", seq: seq + 8, ack: outsideISN + 1)
        expectWellFormed(part2)
        #expect(part2.text == "ME 203.0.113.1\n")
        // The rewrites grew the stream by 1 byte each ("192.0.2.10" → "203.0.113.1").
        #expect(part2.seq == seq &+ 1)
        #expect(nat.counters.helperEvents(helper: 0, .rewrite) == 2)
    }
}
