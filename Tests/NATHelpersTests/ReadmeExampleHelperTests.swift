import NATCore
import NATTestKit
import Testing

// The helper shown in README.md ("Writing a helper"), verbatim, so the example stays true:
// it must compile against the public API and do what the README says.

public final class AnnounceHelper: ApplicationHelper {
    public let name = "announce"
    public init() {}

    public func inspect(_ data: HelperData, _ context: inout HelperContext) -> HelperVerdict {
        guard context.senderIsInternal else { return .pass }
        let bytes = data.bytes
        // Finding lines, holding an unfinished one and remembering where the stream stopped
        // between calls is the reader's job (8 bytes of state per direction).
        let reader = HelperLineReader(context: context.state, offset: data.direction == .fromClient ? 0 : 8, needed: 16)
        return reader.read(bytes, line: { line in
            // "ME " followed by the address, up to the end of the line.
            guard line.length > 3, bytes[line.start] == UInt8(ascii: "M"), bytes[line.start + 1] == UInt8(ascii: "E"),
                  bytes[line.start + 2] == UInt8(ascii: " ") else { return }
            let external = context.externalAddress
            if context.replace(line.start + 3..<line.end, { $0.write(address: external, separator: UInt8(ascii: ".")) }) {
                context.count(.rewrite)
            }
        }, holdTail: { start in
            bytes.count - start < 64 // a short unfinished line is held, to be rewritten whole
        })
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

        // A long unfinished line is not held: it passes, and its rest is not taken for a line
        // start even though it reads "ME …". The line after it is rewritten.
        seq = insideISN + 1 + UInt32("hi\nME 192.0.2.10\n".utf8.count + "ME 192.0.2.10\n".utf8.count) // the client's numbering
        let long = String(repeating: "x", count: 70)
        let head = link.fromInside(long, seq: seq, ack: outsideISN + 1)
        #expect(head.text == long)
        seq += UInt32(long.utf8.count)
        let tail = link.fromInside("ME 192.0.2.10\r\nME 192.0.2.10\r\n", seq: seq, ack: outsideISN + 1)
        expectWellFormed(tail)
        #expect(tail.text == "ME 192.0.2.10\r\nME 203.0.113.1\r\n")
        #expect(nat.counters.helperEvents(helper: 0, .rewrite) == 3)
    }
}
