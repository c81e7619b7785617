import NATTestKit
import Testing
@testable import NATCore

// Nonsense offered to the FragmentReassembler, as a table: each entry is a short sequence of
// fragments; the last one's outcome and the one counter it moves are named, and afterwards
// nothing of a discarded datagram is left (no held fragment, no byte, no deadline) and
// every held token was handed back for a DROP verdict. FragmentReassemblerTests covers the
// rules one by one with completed datagrams; this covers leftovers after refusals.

@Suite("Fragment nonsense")
struct FragmentNonsenseTests {
    static let source = IPv4Bytes(198, 51, 100, 7)
    static let destination = IPv4Bytes(203, 0, 113, 1)

    /// One fragment: `payload` at byte `offset` of datagram `id`, checksummed by RefChecksum.
    static func fragment(id: UInt16 = 0x1234, offset: Int, more: Bool, payload: [UInt8], protocolNumber: UInt8 = 17,
                         options: [UInt8] = []) -> [UInt8] {
        precondition(offset % 8 == 0)
        let bits = UInt16(offset / 8) | (more ? 0x2000 : 0)
        return PacketBuilder.ipv4(source: source, destination: destination, protocolNumber: protocolNumber, transport: payload,
                                  fields: IPv4Fields(identification: id, flagsAndFragment: bits, options: options))
    }

    static func patched(_ p: [UInt8], _ edits: [(Int, UInt8)]) -> [UInt8] {
        var q = p
        for (offset, value) in edits { q[offset] = value }
        return q
    }

    /// A UDP header claiming `length` bytes, then filler, `count` bytes in all.
    static func udpStart(_ count: Int, length: Int = 64) -> [UInt8] {
        [0x9c, 0x40, 0x00, 0x35, UInt8(length >> 8), UInt8(length & 0xff), 0, 0] + [UInt8](repeating: 0xab, count: count - 8)
    }

    struct Entry {
        let name: String
        /// Offered in order; only the last one's outcome is checked (the others must be held).
        let fragments: [[UInt8]]
        let reason: FragmentDropReason
        /// Datagrams still in reassembly afterwards (a duplicate leaves its datagram alone).
        var inProgressAfter = 0
    }

    static let entries: [Entry] = [
        Entry(name: "not a fragment (MF clear, offset 0)", fragments: [fragment(offset: 0, more: false, payload: udpStart(16))], reason: .malformed),
        Entry(name: "empty fragment", fragments: [fragment(offset: 0, more: true, payload: [])], reason: .malformed),
        Entry(name: "non-last fragment of 13 bytes", fragments: [fragment(offset: 0, more: true, payload: udpStart(13))], reason: .malformed),
        Entry(name: "IHL 4", fragments: [patched(fragment(offset: 0, more: true, payload: udpStart(16)), [(0, 0x44)])], reason: .malformed),
        Entry(name: "version 6", fragments: [patched(fragment(offset: 0, more: true, payload: udpStart(16)), [(0, 0x65)])], reason: .malformed),
        Entry(name: "total length beyond the buffer",
              fragments: [Array(fragment(offset: 0, more: true, payload: udpStart(16)).prefix(30))], reason: .malformed),
        Entry(name: "19 bytes", fragments: [Array(fragment(offset: 0, more: true, payload: udpStart(16)).prefix(19))], reason: .malformed),
        Entry(name: "ends past 65535", fragments: [fragment(offset: 65528, more: false, payload: [UInt8](repeating: 1, count: 16))],
              reason: .oversize),
        Entry(name: "first TCP fragment shorter than a TCP header",
              fragments: [fragment(offset: 0, more: true, payload: [UInt8](repeating: 0, count: 16), protocolNumber: 6)],
              reason: .tooShortFirstFragment),
        Entry(name: "first TCP fragment with data offset 4",
              fragments: [fragment(offset: 0, more: true, payload: [0, 1, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0x40, 2] + [UInt8](repeating: 0, count: 10),
                                    protocolNumber: 6)],
              reason: .malformed),
        Entry(name: "first UDP fragment of 4 bytes (MF)",
              fragments: [fragment(offset: 0, more: true, payload: [1, 2, 3, 4])], reason: .malformed),
        Entry(name: "TCP fragment at offset 8", fragments: [fragment(offset: 8, more: true, payload: [UInt8](repeating: 0, count: 16), protocolNumber: 6)],
              reason: .tcpOffsetEight),
        Entry(name: "overlap after a held first fragment",
              fragments: [fragment(offset: 0, more: true, payload: udpStart(16)), fragment(offset: 8, more: true, payload: [UInt8](repeating: 7, count: 16))],
              reason: .overlap),
        Entry(name: "same offset, different bytes",
              fragments: [fragment(offset: 16, more: true, payload: [UInt8](repeating: 1, count: 8)),
                          fragment(offset: 16, more: true, payload: [UInt8](repeating: 2, count: 8))],
              reason: .overlap),
        Entry(name: "two different last fragments",
              fragments: [fragment(offset: 16, more: false, payload: [UInt8](repeating: 1, count: 8)),
                          fragment(offset: 32, more: false, payload: [UInt8](repeating: 1, count: 8))],
              reason: .inconsistentEnd),
        Entry(name: "data beyond the end",
              fragments: [fragment(offset: 16, more: false, payload: [UInt8](repeating: 1, count: 8)),
                          fragment(offset: 24, more: true, payload: [UInt8](repeating: 1, count: 8))],
              reason: .inconsistentEnd),
        Entry(name: "a last fragment ending before data already held",
              fragments: [fragment(offset: 32, more: true, payload: [UInt8](repeating: 1, count: 8)),
                          fragment(offset: 8, more: false, payload: [UInt8](repeating: 1, count: 8))],
              reason: .inconsistentEnd),
        Entry(name: "first fragment whose header would make the datagram exceed 65535",
              fragments: [fragment(offset: 65496, more: true, payload: [UInt8](repeating: 1, count: 16)),
                          fragment(offset: 0, more: true, payload: udpStart(16), options: [UInt8](repeating: 1, count: 40))],
              reason: .oversize),
        Entry(name: "exact duplicate (only the copy is dropped)",
              fragments: [fragment(offset: 0, more: true, payload: udpStart(16)), fragment(offset: 0, more: true, payload: udpStart(16))],
              reason: .duplicate, inProgressAfter: 1),
    ]

    @Test("each nonsense sequence: the named refusal, one counter, nothing left behind")
    func table() {
        for entry in Self.entries {
            let reassembler = FragmentReassembler(limits: FragmentLimits(maxBytes: 1 << 20, maxDatagrams: 16), hashSeed: 42)
            var dropped: [UInt32] = []
            var last: FragmentOutcome = .held
            for (i, f) in entry.fragments.enumerated() {
                last = f.withUnsafeBytes { reassembler.offer($0, token: UInt32(i + 1), direction: .outbound, now: .seconds(10)) { dropped.append($0) } }
                if i < entry.fragments.count - 1 {
                    guard case .held = last else {
                        Issue.record("\(entry.name): fragment \(i) was not held: \(last)")
                        break
                    }
                }
            }
            guard case .drop(let reason) = last else {
                Issue.record("\(entry.name): not dropped: \(last)")
                continue
            }
            #expect(reason == entry.reason, "\(entry.name): \(reason)")
            let c = reassembler.counters
            for other in FragmentDropReason.allCases {
                #expect(c.drops(other) == (other == entry.reason ? 1 : 0), "\(entry.name): fragments_drop_\(other) = \(c.drops(other))")
            }
            #expect(c.datagramsInProgress == entry.inProgressAfter, "\(entry.name): \(c.datagramsInProgress) datagrams left")
            if entry.inProgressAfter == 0 {
                // Every fragment held before the refusal came back for a DROP; the refused one is the caller's.
                #expect(dropped.sorted() == (1..<UInt32(entry.fragments.count)).map { $0 }, "\(entry.name): tokens dropped \(dropped)")
                #expect(c.fragmentsHeld == 0 && c.bytesHeld == 0 && reassembler.nextDeadline == nil, "\(entry.name): state left behind")
            } else {
                #expect(dropped.isEmpty, "\(entry.name): tokens dropped \(dropped)")
            }
        }
    }

    @Test("random fragments in bulk: only held or dropped, storage within the cap, everything freed by expiry")
    func randomFragments() {
        var rng = SeededRNG(seed: 0xf4a6_0001)
        let limits = FragmentLimits(maxBytes: 64 << 10, maxDatagrams: 32, maxDatagramsPerSource: 8, maxFragmentsHeld: 64)
        let reassembler = FragmentReassembler(limits: limits, hashSeed: 7)
        var held = Set<UInt32>()
        var completed = 0
        for token in UInt32(1)...4000 {
            var p = Self.fragment(id: UInt16.random(in: 0...7, using: &rng), offset: Int.random(in: 0...16, using: &rng) * 8,
                             more: Bool.random(using: &rng), payload: rng.bytes(Int.random(in: 0...48, using: &rng)),
                             protocolNumber: [6, 17, 1, 47].randomElement(using: &rng)!)
            p[12] = UInt8.random(in: 1...12, using: &rng) // a dozen sources
            if Int.random(in: 0..<10, using: &rng) == 0 { p[Int.random(in: 0..<p.count, using: &rng)] = UInt8.random(in: 0...255, using: &rng) }
            // Among the junk, from a source of their own, whole two-fragment datagrams.
            if token % 10 == 1 || token % 10 == 2 {
                let first = token % 10 == 1
                p = Self.fragment(id: UInt16(token / 10), offset: first ? 0 : 16, more: first,
                                  payload: first ? Self.udpStart(16, length: 24) : [UInt8](repeating: 0x5a, count: 8))
                p[12] = 99
            }
            let outcome = p.withUnsafeBytes { reassembler.offer($0, token: token, direction: .outbound, now: .seconds(100)) { held.remove($0) } }
            switch outcome {
            case .held: held.insert(token)
            case .complete(_, let accept):
                completed += 1
                held.remove(accept)
            case .drop: break
            }
            #expect(reassembler.bytesHeld <= limits.maxBytes)
            #expect(reassembler.counters.fragmentsHeld == held.count, "token \(token)")
        }
        #expect(completed >= 300, "\(completed) of the 400 whole datagrams completed") // the rest were evicted by junk
        reassembler.expire(now: .seconds(1000), budget: 1000) { held.remove($0) }
        #expect(held.isEmpty, "tokens never given a verdict: \(held.count)")
        #expect(reassembler.counters.fragmentsHeld == 0 && reassembler.bytesHeld == 0 && reassembler.datagramsInProgress == 0)
    }
}
