import NATTestKit
import Testing
@testable import NATCore

// Tests of FragmentReassembler. Every expected value is computed here with test-side code
// (a naive Internet checksum, a byte-array datagram builder and fragmenter) that never calls
// NATCore's checksum or header helpers.

// MARK: test-side helpers (fileprivate so they cannot clash with other test files)

private enum FragRef {
    static func sum(_ bytes: ArraySlice<UInt8>) -> UInt16 {
        var total: UInt64 = 0
        var i = bytes.startIndex
        while i + 1 < bytes.endIndex {
            total += UInt64(bytes[i]) << 8 | UInt64(bytes[i + 1])
            i += 2
        }
        if i < bytes.endIndex { total += UInt64(bytes[i]) << 8 }
        while total > 0xffff { total = (total & 0xffff) + (total >> 16) }
        return UInt16(total)
    }

    static func be16(_ p: [UInt8], _ at: Int) -> Int { Int(p[at]) << 8 | Int(p[at + 1]) }

    static func put16(_ p: inout [UInt8], _ at: Int, _ value: Int) {
        p[at] = UInt8(value >> 8 & 0xff)
        p[at + 1] = UInt8(value & 0xff)
    }

    static func headerLength(_ p: [UInt8]) -> Int { Int(p[0] & 0x0f) * 4 }

    static func setHeaderChecksum(_ p: inout [UInt8]) {
        put16(&p, 10, 0)
        put16(&p, 10, Int(~sum(p[0..<headerLength(p)])))
    }

    static func headerChecksumValid(_ p: [UInt8]) -> Bool { sum(p[0..<headerLength(p)]) == 0xffff }

    static func udpChecksumValid(_ p: [UInt8]) -> Bool {
        let ihl = headerLength(p)
        let l4 = p[ihl..<be16(p, 2)]
        let pseudo: [UInt8] = Array(p[12..<20]) + [0, 17, UInt8(l4.count >> 8), UInt8(l4.count & 0xff)]
        return sum(ArraySlice(pseudo + Array(l4))) == 0xffff
    }
}

private let clientA: [UInt8] = [10, 0, 0, 2]
private let clientB: [UInt8] = [10, 0, 0, 3]
private let server: [UInt8] = [198, 51, 100, 7]

/// A UDP datagram with random payload, correct UDP and header checksums. `options` adds a
/// 4-byte option block (NOP NOP NOP EOL) to the header.
private func makeDatagram(
    payload: Int, id: UInt16, source: [UInt8] = clientA, protocolNumber: UInt8 = 17,
    dontFragment: Bool = false, options: Bool = false, rng: inout SeededRNG
) -> [UInt8] {
    let ihl = options ? 24 : 20
    let l4Length = 8 + payload
    var p = [UInt8](repeating: 0, count: ihl + l4Length)
    p[0] = 0x40 | UInt8(ihl / 4)
    p[1] = 0x10
    FragRef.put16(&p, 2, p.count)
    FragRef.put16(&p, 4, Int(id))
    p[6] = dontFragment ? 0x40 : 0
    p[8] = 64
    p[9] = protocolNumber
    p.replaceSubrange(12..<16, with: source)
    p.replaceSubrange(16..<20, with: server)
    if options { p.replaceSubrange(20..<24, with: [1, 1, 1, 0]) }
    FragRef.put16(&p, ihl, 40000 + Int(id % 1000))
    FragRef.put16(&p, ihl + 2, 53)
    FragRef.put16(&p, ihl + 4, l4Length)
    for i in (ihl + 8)..<p.count { p[i] = UInt8.random(in: 0...255, using: &rng) }
    if protocolNumber == 17 {
        let pseudo: [UInt8] = Array(p[12..<20]) + [0, 17, UInt8(l4Length >> 8), UInt8(l4Length & 0xff)]
        var c = ~FragRef.sum(ArraySlice(pseudo + Array(p[ihl...])))
        if c == 0 { c = 0xffff }
        FragRef.put16(&p, ihl + 6, Int(c))
    } else if protocolNumber == 6 {
        p[ihl + 12] = 0x50 // data offset 20
    }
    FragRef.setHeaderChecksum(&p)
    return p
}

/// One fragment of `datagram` covering payload bytes [offset, offset + length). Non-first
/// fragments get a plain 20-byte header and a different TTL, so a reassembler that takes the
/// wrong header fails the byte comparison.
private func fragment(_ datagram: [UInt8], offset: Int, length: Int, last: Bool? = nil) -> [UInt8] {
    let ihl = FragRef.headerLength(datagram)
    let payload = datagram.count - ihl
    let isLast = last ?? (offset + length == payload)
    var header = Array(datagram[0..<(offset == 0 ? ihl : 20)])
    if offset != 0 {
        header[0] = 0x45
        header[8] = 63
    }
    var p = header + Array(datagram[(ihl + offset)..<(ihl + offset + length)])
    FragRef.put16(&p, 2, p.count)
    let flags = Int(datagram[6] & 0xc0) << 8 | (isLast ? 0 : 0x2000)
    FragRef.put16(&p, 6, flags | offset / 8)
    FragRef.setHeaderChecksum(&p)
    return p
}

/// Cuts a datagram into fragments of at most `size` payload bytes (a multiple of 8).
private func fragments(_ datagram: [UInt8], size: Int) -> [[UInt8]] {
    let payload = datagram.count - FragRef.headerLength(datagram)
    var result: [[UInt8]] = []
    var offset = 0
    while offset < payload {
        let length = min(size, payload - offset)
        result.append(fragment(datagram, offset: offset, length: length))
        offset += length
    }
    return result
}

/// Cuts a datagram into fragments of random sizes (multiples of 8, at least 8).
private func randomFragments(_ datagram: [UInt8], maxSize: Int, rng: inout SeededRNG) -> [[UInt8]] {
    let payload = datagram.count - FragRef.headerLength(datagram)
    var result: [[UInt8]] = []
    var offset = 0
    while offset < payload {
        let size = Int.random(in: 1...(maxSize / 8), using: &rng) * 8
        let length = min(size, payload - offset)
        result.append(fragment(datagram, offset: offset, length: length))
        offset += length
    }
    return result
}

/// A UDP fragment with zero payload bytes, built field by field.
private func rawFragment(id: UInt16, offset: Int, length: Int, more: Bool) -> [UInt8] {
    var p = [UInt8](repeating: 0, count: 20 + length)
    p[0] = 0x45
    FragRef.put16(&p, 2, p.count)
    FragRef.put16(&p, 4, Int(id))
    FragRef.put16(&p, 6, (more ? 0x2000 : 0) | offset / 8)
    p[8] = 64
    p[9] = 17
    p.replaceSubrange(12..<16, with: clientA)
    p.replaceSubrange(16..<20, with: server)
    FragRef.setHeaderChecksum(&p)
    return p
}

/// Everything a sequence of offers produced.
private struct Run {
    var outcomes: [FragmentOutcome] = []
    var dropped: [UInt32] = []
    var completed: [[UInt8]] = []
    var accepted: [UInt32] = []

    func reasons() -> [FragmentDropReason] {
        outcomes.compactMap { if case .drop(let r) = $0 { r } else { nil } }
    }
    var heldCount: Int { outcomes.filter { if case .held = $0 { true } else { false } }.count }
}

private func offer(_ r: FragmentReassembler, _ bytes: [UInt8], token: UInt32, direction: PacketDirection = .outbound,
                   now: NATTime, into run: inout Run) {
    var dropped: [UInt32] = []
    let outcome = bytes.withUnsafeBytes { r.offer($0, token: token, direction: direction, now: now) { dropped.append($0) } }
    run.outcomes.append(outcome)
    run.dropped += dropped
    if case .complete(let datagram, let accept) = outcome {
        run.completed.append(Array(datagram))
        run.accepted.append(accept)
    }
}

private func offerAll(_ r: FragmentReassembler, _ list: [[UInt8]], firstToken: UInt32 = 1, now: NATTime = .seconds(100)) -> Run {
    var run = Run()
    for (i, f) in list.enumerated() { offer(r, f, token: firstToken + UInt32(i), now: now, into: &run) }
    return run
}

private func isDrop(_ o: FragmentOutcome, _ reason: FragmentDropReason) -> Bool {
    if case .drop(let r) = o { return r == reason }
    return false
}

private func isHeld(_ o: FragmentOutcome) -> Bool {
    if case .held = o { return true }
    return false
}

/// The checks every completed datagram must pass.
private func expectReassembled(_ got: [UInt8], equals original: [UInt8]) {
    #expect(got.count == original.count)
    #expect(got == original)
    #expect(FragRef.headerChecksumValid(got))
    #expect(FragRef.be16(got, 6) & 0x3fff == 0)
    if got.count > 9, got[9] == 17 { #expect(FragRef.udpChecksumValid(got)) }
}

private func expectEmpty(_ r: FragmentReassembler) {
    let c = r.counters
    #expect(c.fragmentsHeld == 0)
    #expect(c.bytesHeld == 0)
    #expect(c.datagramsInProgress == 0)
    #expect(r.nextDeadline == nil)
}

// MARK: tests

@Suite struct FragmentReassemblerTests {
    @Test func inOrderFragmentsRebuildTheDatagram() {
        var rng = SeededRNG(seed: 1)
        let original = makeDatagram(payload: 4000, id: 0x1234, rng: &rng)
        #expect(FragRef.udpChecksumValid(original))
        let list = fragments(original, size: 1480)
        #expect(list.count == 3)
        let r = FragmentReassembler(hashSeed: 42)
        let run = offerAll(r, list)
        #expect(isHeld(run.outcomes[0]) && isHeld(run.outcomes[1]))
        #expect(run.completed.count == 1)
        expectReassembled(run.completed[0], equals: original)
        #expect(run.accepted == [1])
        #expect(run.dropped.sorted() == [2, 3])
        #expect(r.counters[.datagramsCompleted] == 1)
        #expect(r.counters.totalDrops == 0)
        expectEmpty(r)
    }

    @Test func reversedFragmentsRebuildTheDatagram() {
        var rng = SeededRNG(seed: 2)
        let original = makeDatagram(payload: 9000, id: 7, options: true, rng: &rng)
        let list = Array(fragments(original, size: 1480).reversed())
        let r = FragmentReassembler(hashSeed: 1)
        let run = offerAll(r, list)
        #expect(run.completed.count == 1)
        expectReassembled(run.completed[0], equals: original)
        // The offset-0 fragment came last: its token is accepted, the others dropped.
        #expect(run.accepted == [UInt32(list.count)])
        #expect(run.dropped.sorted() == Array(1..<UInt32(list.count)))
        expectEmpty(r)
    }

    @Test(arguments: [UInt64(3), 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14])
    func shuffledFragmentsRebuildTheDatagram(seed: UInt64) {
        var rng = SeededRNG(seed: seed)
        let options = seed & 1 == 1
        // Every fourth seed: the largest datagram (65535 bytes).
        let payload = seed.isMultiple(of: 4) ? 65535 - (options ? 24 : 20) - 8 : Int.random(in: 2000...20000, using: &rng)
        let original = makeDatagram(payload: payload, id: UInt16(truncatingIfNeeded: seed), options: options, rng: &rng)
        let list = randomFragments(original, maxSize: 1600, rng: &rng).shuffled(using: &rng)
        let r = FragmentReassembler(hashSeed: seed)
        let run = offerAll(r, list)
        #expect(run.completed.count == 1)
        if let got = run.completed.first { expectReassembled(got, equals: original) }
        #expect(Set(run.dropped + run.accepted) == Set(1...UInt32(list.count)))
        #expect(run.dropped.count == list.count - 1)
        #expect(r.counters.totalDrops == 0)
        expectEmpty(r)
    }

    @Test func largestDatagramWithLongestHeader() {
        // 60-byte header + 65475 payload bytes = 65535 exactly.
        var rng = SeededRNG(seed: 99)
        var original = makeDatagram(payload: 65475 - 8, id: 9, options: false, rng: &rng)
        // Rebuild with a 60-byte header (40 bytes of NOP options).
        let l4 = Array(original[20...])
        original = Array(original[0..<20]) + [UInt8](repeating: 1, count: 40) + l4
        original[0] = 0x4f
        FragRef.put16(&original, 2, original.count)
        FragRef.setHeaderChecksum(&original)
        #expect(original.count == 65535)
        let list = fragments(original, size: 1480).shuffled(using: &rng)
        let r = FragmentReassembler(hashSeed: 3)
        let run = offerAll(r, list)
        #expect(run.completed.count == 1)
        if let got = run.completed.first { expectReassembled(got, equals: original) }
    }

    @Test func dontFragmentBitIsKept() {
        var rng = SeededRNG(seed: 20)
        let original = makeDatagram(payload: 3000, id: 77, dontFragment: true, rng: &rng)
        let r = FragmentReassembler(hashSeed: 3)
        let run = offerAll(r, fragments(original, size: 1000).shuffled(using: &rng))
        #expect(run.completed.count == 1)
        if let got = run.completed.first {
            expectReassembled(got, equals: original)
            #expect(got[6] & 0x40 != 0)
        }
    }

    @Test func interleavedDatagramsFromSeveralSources() {
        var rng = SeededRNG(seed: 21)
        var originals: [[UInt8]] = []
        var all: [[UInt8]] = []
        for i in 0..<40 {
            let d = makeDatagram(payload: Int.random(in: 1500...12000, using: &rng), id: UInt16(i / 2),
                                 source: i & 1 == 0 ? clientA : clientB, rng: &rng)
            originals.append(d)
            all += randomFragments(d, maxSize: 1480, rng: &rng)
        }
        all.shuffle(using: &rng)
        let r = FragmentReassembler(hashSeed: 5)
        let run = offerAll(r, all)
        #expect(run.completed.count == 40)
        #expect(Set(run.completed) == Set(originals))
        for got in run.completed { #expect(FragRef.headerChecksumValid(got) && FragRef.udpChecksumValid(got)) }
        #expect(run.dropped.count + run.accepted.count == all.count)
        expectEmpty(r)
    }

    @Test func exactDuplicatesAreDroppedAlone() {
        var rng = SeededRNG(seed: 30)
        let original = makeDatagram(payload: 6000, id: 3, rng: &rng)
        let list = fragments(original, size: 1480)
        // Every fragment but the last twice, shuffled, then the last one.
        var stream = (list.dropLast() + list.dropLast()).shuffled(using: &rng)
        stream.append(list.last!)
        let r = FragmentReassembler(hashSeed: 6)
        let run = offerAll(r, stream)
        #expect(run.completed.count == 1)
        if let got = run.completed.first { expectReassembled(got, equals: original) }
        #expect(run.reasons() == [FragmentDropReason](repeating: .duplicate, count: list.count - 1))
        #expect(r.counters[.duplicate] == UInt64(list.count - 1))
        #expect(r.counters.totalDrops == 0)
        // Each token got exactly one verdict.
        let refused = run.outcomes.enumerated().compactMap { isDrop($0.element, .duplicate) ? UInt32($0.offset + 1) : nil }
        let verdicts = run.dropped + run.accepted + refused
        #expect(verdicts.count == stream.count && Set(verdicts).count == stream.count)
        expectEmpty(r)
    }

    @Test func lateDuplicateAfterCompletionStartsANewDatagramThatTimesOut() {
        var rng = SeededRNG(seed: 31)
        let original = makeDatagram(payload: 3000, id: 4, rng: &rng)
        let list = fragments(original, size: 1480)
        let r = FragmentReassembler(hashSeed: 6)
        var run = offerAll(r, list, now: .seconds(10))
        #expect(run.completed.count == 1)
        offer(r, list[1], token: 50, now: .seconds(11), into: &run)
        #expect(isHeld(run.outcomes.last!))
        var expired: [UInt32] = []
        #expect(r.expire(now: .seconds(40)) { expired.append($0) } == 0)
        #expect(r.expire(now: .seconds(41)) { expired.append($0) } == 1)
        #expect(expired == [50])
        #expect(r.counters[.timeout] == 1)
        expectEmpty(r)
    }

    @Test func overlapDiscardsTheWholeDatagram() {
        var rng = SeededRNG(seed: 40)
        let original = makeDatagram(payload: 6000, id: 5, rng: &rng)
        let r = FragmentReassembler(hashSeed: 7)
        var run = Run()
        offer(r, fragment(original, offset: 0, length: 1480), token: 1, now: .seconds(1), into: &run)
        offer(r, fragment(original, offset: 2960, length: 1480), token: 2, now: .seconds(1), into: &run)
        offer(r, fragment(original, offset: 4440, length: 6008 - 4440), token: 3, now: .seconds(1), into: &run)
        // Same data, but overlapping the first fragment by 8 bytes.
        offer(r, fragment(original, offset: 1472, length: 1488), token: 4, now: .seconds(1), into: &run)
        #expect(isDrop(run.outcomes[3], .overlap))
        #expect(run.dropped.sorted() == [1, 2, 3])
        #expect(r.counters[.overlap] == 1)
        #expect(r.counters[.datagramsDiscarded] == 1)
        #expect(r.counters[.heldFragmentsDropped] == 3)
        expectEmpty(r)
    }

    @Test(arguments: [
        (0, 1480, "same range, different bytes"),
        (1480, 1488, "straddles the next fragment's start"),
        (8, 8, "inside a held fragment"),
        (0, 2968, "covers a held fragment"),
    ])
    func everyOverlapKindDiscards(offset: Int, length: Int, _ label: String) {
        var rng = SeededRNG(seed: 41)
        var original = makeDatagram(payload: 6000, id: 6, rng: &rng)
        let r = FragmentReassembler(hashSeed: 7)
        var run = Run()
        offer(r, fragment(original, offset: 0, length: 1480), token: 1, now: .seconds(1), into: &run)
        offer(r, fragment(original, offset: 1480, length: 1480), token: 2, now: .seconds(1), into: &run)
        if offset == 0 && length == 1480 { original[40] ^= 0xff } // different data
        offer(r, fragment(original, offset: offset, length: length, last: false), token: 3, now: .seconds(1), into: &run)
        #expect(isDrop(run.outcomes[2], .overlap), "\(label)")
        #expect(run.dropped.sorted() == [1, 2])
        expectEmpty(r)
    }

    @Test func tinyFirstFragmentIsRefused() {
        var rng = SeededRNG(seed: 50)
        let tcp = makeDatagram(payload: 100, id: 8, protocolNumber: 6, rng: &rng)
        let r = FragmentReassembler(hashSeed: 8)
        var run = Run()
        // A later fragment is held first, then the 16-byte first fragment kills the datagram.
        offer(r, fragment(tcp, offset: 16, length: 108 - 16), token: 1, now: .seconds(1), into: &run)
        offer(r, fragment(tcp, offset: 0, length: 16), token: 2, now: .seconds(1), into: &run)
        #expect(isHeld(run.outcomes[0]))
        #expect(isDrop(run.outcomes[1], .tooShortFirstFragment))
        #expect(run.dropped == [1])
        #expect(r.counters[.tooShortFirstFragment] == 1)
        expectEmpty(r)

        // TCP with 20 bytes of options: a 32-byte first fragment does not hold the header.
        var withOptions = makeDatagram(payload: 200, id: 9, protocolNumber: 6, rng: &rng)
        withOptions[20 + 12] = 0xa0
        offer(r, fragment(withOptions, offset: 0, length: 32), token: 3, now: .seconds(1), into: &run)
        #expect(isDrop(run.outcomes[2], .tooShortFirstFragment))
        // 40 bytes is enough.
        offer(r, fragment(withOptions, offset: 0, length: 40), token: 4, now: .seconds(1), into: &run)
        #expect(isHeld(run.outcomes[3]))
    }

    @Test func tcpFragmentAtOffsetEightIsRefused() {
        var rng = SeededRNG(seed: 51)
        let tcp = makeDatagram(payload: 3000, id: 10, protocolNumber: 6, rng: &rng)
        let r = FragmentReassembler(hashSeed: 9)
        var run = Run()
        offer(r, fragment(tcp, offset: 1480, length: 1480), token: 1, now: .seconds(1), into: &run)
        offer(r, fragment(tcp, offset: 8, length: 16), token: 2, now: .seconds(1), into: &run)
        #expect(isDrop(run.outcomes[1], .tcpOffsetEight))
        #expect(run.dropped == [1])
        #expect(r.counters[.tcpOffsetEight] == 1)
        // The same offset is fine for UDP.
        let udp = makeDatagram(payload: 3000, id: 10, rng: &rng)
        offer(r, fragment(udp, offset: 8, length: 16), token: 3, now: .seconds(1), into: &run)
        #expect(isHeld(run.outcomes[2]))
    }

    @Test func oversizeDatagramIsRefused() {
        var rng = SeededRNG(seed: 60)
        let r = FragmentReassembler(hashSeed: 10)
        var run = Run()
        // A last fragment at the largest offset (65528) carrying 16 bytes ends at 65544.
        offer(r, rawFragment(id: 11, offset: 1480, length: 1480, more: true), token: 1, now: .seconds(1), into: &run)
        offer(r, rawFragment(id: 11, offset: 65528, length: 16, more: false), token: 2, now: .seconds(1), into: &run)
        #expect(isDrop(run.outcomes[1], .oversize))
        #expect(run.dropped == [1])

        // A last fragment that fits a 20-byte header, then a first fragment with a 60-byte header.
        var original = makeDatagram(payload: 65496 - 8, id: 12, rng: &rng)
        let l4 = Array(original[20...])
        original = Array(original[0..<20]) + [UInt8](repeating: 1, count: 40) + l4
        original[0] = 0x4f
        offer(r, fragment(original, offset: 65496 - 16, length: 16), token: 3, now: .seconds(1), into: &run)
        #expect(isHeld(run.outcomes[2]))
        offer(r, fragment(original, offset: 0, length: 1480), token: 4, now: .seconds(1), into: &run)
        #expect(isDrop(run.outcomes[3], .oversize))
        #expect(run.dropped == [1, 3])
        #expect(r.counters[.oversize] == 2)
        expectEmpty(r)
    }

    @Test func conflictingEndsAreRefused() {
        var rng = SeededRNG(seed: 61)
        let original = makeDatagram(payload: 4000, id: 13, rng: &rng)
        let r = FragmentReassembler(hashSeed: 11)
        var run = Run()
        offer(r, fragment(original, offset: 2960, length: 4008 - 2960), token: 1, now: .seconds(1), into: &run)
        // A second last fragment with another end.
        offer(r, fragment(original, offset: 1480, length: 1000, last: true), token: 2, now: .seconds(1), into: &run)
        #expect(isDrop(run.outcomes[1], .inconsistentEnd))
        #expect(run.dropped == [1])
        // A non-last fragment beyond a known end.
        offer(r, fragment(original, offset: 1480, length: 1480, last: true), token: 3, now: .seconds(1), into: &run)
        offer(r, fragment(original, offset: 2960, length: 1000, last: false), token: 4, now: .seconds(1), into: &run)
        #expect(isDrop(run.outcomes[3], .inconsistentEnd))
        // A last fragment ending before data already held.
        offer(r, fragment(original, offset: 2960, length: 1000, last: false), token: 5, now: .seconds(1), into: &run)
        offer(r, fragment(original, offset: 1480, length: 1480, last: true), token: 6, now: .seconds(1), into: &run)
        #expect(isDrop(run.outcomes[5], .inconsistentEnd))
        #expect(run.dropped == [1, 3, 5])
        #expect(r.counters[.inconsistentEnd] == 3)
        expectEmpty(r)
    }

    @Test func malformedFragmentsAreRefused() {
        var rng = SeededRNG(seed: 62)
        let original = makeDatagram(payload: 4000, id: 14, rng: &rng)
        let r = FragmentReassembler(hashSeed: 12)
        var run = Run()
        offer(r, fragment(original, offset: 1480, length: 1480), token: 1, now: .seconds(1), into: &run)
        // Not a multiple of 8 with MF set: the datagram cannot complete, so it goes too.
        offer(r, fragment(original, offset: 0, length: 1001, last: false), token: 2, now: .seconds(1), into: &run)
        #expect(isDrop(run.outcomes[1], .malformed))
        #expect(run.dropped == [1])
        // Not a fragment at all.
        offer(r, original, token: 3, now: .seconds(1), into: &run)
        // Truncated header, empty buffer, empty fragment.
        offer(r, Array(original[0..<12]), token: 4, now: .seconds(1), into: &run)
        offer(r, [], token: 5, now: .seconds(1), into: &run)
        offer(r, fragment(original, offset: 8, length: 0, last: true), token: 6, now: .seconds(1), into: &run)
        // Total length larger than the buffer.
        var lying = fragment(original, offset: 1480, length: 1480)
        lying.removeLast(8)
        offer(r, lying, token: 7, now: .seconds(1), into: &run)
        #expect(run.reasons() == [FragmentDropReason](repeating: .malformed, count: 6))
        #expect(r.counters[.malformed] == 6)
        expectEmpty(r)
    }

    @Test func tooManyFragmentsDiscardsTheDatagram() {
        var rng = SeededRNG(seed: 63)
        let original = makeDatagram(payload: 1000, id: 15, rng: &rng)
        let r = FragmentReassembler(limits: FragmentLimits(maxFragmentsPerDatagram: 4), hashSeed: 13)
        let run = offerAll(r, fragments(original, size: 200))
        #expect(run.outcomes.count == 6)
        #expect(run.outcomes[0..<4].allSatisfy(isHeld))
        #expect(isDrop(run.outcomes[4], .tooManyFragments))
        #expect(isHeld(run.outcomes[5])) // starts over as a new datagram
        #expect(run.dropped.sorted() == [1, 2, 3, 4])
        #expect(r.counters[.tooManyFragments] == 1)
    }

    @Test func timeoutDropsHeldTokensWithAnInjectedClock() {
        var rng = SeededRNG(seed: 70)
        let original = makeDatagram(payload: 4000, id: 16, rng: &rng)
        let list = fragments(original, size: 1480)
        let r = FragmentReassembler(hashSeed: 14)
        var run = Run()
        offer(r, list[0], token: 1, now: .seconds(100), into: &run)
        offer(r, list[2], token: 2, now: .seconds(120), into: &run) // later fragments do not extend the deadline
        #expect(r.nextDeadline == .seconds(130))
        #expect(r.counters.bytesHeld > 0)
        var expired: [UInt32] = []
        #expect(r.expire(now: NATTime(nanoseconds: 130_000_000_000 - 1)) { expired.append($0) } == 0)
        #expect(expired.isEmpty)
        #expect(r.expire(now: .seconds(130)) { expired.append($0) } == 1)
        #expect(expired.sorted() == [1, 2])
        #expect(r.counters[.timeout] == 1)
        expectEmpty(r)

        // Without an expire call, the next fragment of a stale datagram discards it first.
        offer(r, list[0], token: 3, now: .seconds(200), into: &run)
        offer(r, list[1], token: 4, now: .seconds(231), into: &run)
        #expect(isHeld(run.outcomes[3]))
        #expect(run.dropped == [3])
        #expect(r.counters[.timeout] == 2)
        offer(r, list[0], token: 5, now: .seconds(232), into: &run)
        offer(r, list[2], token: 6, now: .seconds(232), into: &run)
        #expect(run.completed.count == 1)
        if let got = run.completed.first { expectReassembled(got, equals: original) }
    }

    @Test func expireWorkIsBounded() {
        var rng = SeededRNG(seed: 71)
        let r = FragmentReassembler(limits: FragmentLimits(maxDatagramsPerSource: 1024), hashSeed: 15)
        for i in 0..<100 {
            let d = makeDatagram(payload: 3000, id: UInt16(i), rng: &rng)
            var run = Run()
            offer(r, fragments(d, size: 1480)[0], token: UInt32(i), now: NATTime(nanoseconds: UInt64(i)), into: &run)
        }
        var expired: [UInt32] = []
        #expect(r.expire(now: .seconds(1000), budget: 10) { expired.append($0) } == 10)
        #expect(expired == Array(0..<10)) // oldest first
        #expect(r.datagramsInProgress == 90)
        #expect(r.expire(now: .seconds(1000)) { expired.append($0) } == 64)
        #expect(r.expire(now: .seconds(1000)) { expired.append($0) } == 26)
        #expect(expired == Array(0..<100))
        expectEmpty(r)
    }

    @Test func datagramCap() {
        var rng = SeededRNG(seed: 80)
        let r = FragmentReassembler(limits: FragmentLimits(maxDatagrams: 4, maxDatagramsPerSource: 100), hashSeed: 16)
        var run = Run()
        var firsts: [[UInt8]] = []
        for i in 0..<6 {
            let d = makeDatagram(payload: 3000, id: UInt16(i), rng: &rng)
            firsts.append(fragments(d, size: 1480)[0])
            offer(r, firsts[i], token: UInt32(i), now: .seconds(1), into: &run)
        }
        // A full table makes room by evicting the oldest incomplete datagrams (0 and 1),
        // so new datagrams are never shut out until the timeout.
        #expect(run.heldCount == 6)
        #expect(run.reasons() == [])
        #expect(r.counters[.capDatagrams] == 0)
        #expect(r.counters[.evicted] == 2)
        #expect(run.dropped == [0, 1])
        #expect(r.datagramsInProgress == 4)
        // Surviving datagrams still take fragments and complete.
        let d5 = makeDatagram(payload: 3000, id: 5, rng: &rng)
        for (index, piece) in fragments(d5, size: 1480).enumerated().dropFirst() {
            offer(r, piece, token: UInt32(20 + index), now: .seconds(1), into: &run)
        }
        if case .complete = run.outcomes.last! {} else { Issue.record("datagram 5 did not complete: \(run.outcomes.last!)") }
    }

    @Test func perSourceCapEvictsTheSourcesOwnOldest() {
        var rng = SeededRNG(seed: 81)
        let r = FragmentReassembler(limits: FragmentLimits(maxDatagramsPerSource: 2), hashSeed: 17)
        var run = Run()
        var a: [[UInt8]] = []
        for i in 0..<3 {
            a.append(makeDatagram(payload: 3000, id: UInt16(i), source: clientA, rng: &rng))
            offer(r, fragments(a[i], size: 1480)[1], token: UInt32(i), now: .seconds(1), into: &run)
        }
        // A third datagram from A: A's oldest (token 0) gives way; the new one is held.
        #expect(run.heldCount == 3)
        #expect(run.reasons() == [])
        #expect(run.dropped == [0])
        #expect(r.counters[.capPerSource] == 1)
        #expect(r.counters[.evicted] == 0)
        #expect(r.datagramsInProgress == 2)
        // Another source is not touched by A's cap.
        let other = makeDatagram(payload: 3000, id: 0, source: clientB, rng: &rng)
        offer(r, fragments(other, size: 1480)[1], token: 9, now: .seconds(1), into: &run)
        #expect(isHeld(run.outcomes.last!))
        #expect(run.dropped == [0])
        // The newest of A's completes, byte for byte.
        for (j, f) in fragments(a[2], size: 1480).enumerated() where j != 1 {
            offer(r, f, token: 20 + UInt32(j), now: .seconds(1), into: &run)
        }
        #expect(run.completed.count == 1)
        if let got = run.completed.first { expectReassembled(got, equals: a[2]) }
        #expect(run.accepted == [20])
        // Completing one freed A's slot: the next is held without evicting anything.
        let a3 = makeDatagram(payload: 3000, id: 3, source: clientA, rng: &rng)
        offer(r, fragments(a3, size: 1480)[0], token: 30, now: .seconds(1), into: &run)
        #expect(isHeld(run.outcomes.last!))
        #expect(r.counters[.capPerSource] == 1)
    }

    @Test func byteCap() {
        var rng = SeededRNG(seed: 82)
        let limits = FragmentLimits(maxBytes: 64 << 10)
        let r = FragmentReassembler(limits: limits, hashSeed: 18)
        var run = Run()
        // New datagrams beyond what the storage holds: each one past the limit evicts the
        // oldest incomplete datagram (its held fragment is reported for dropping), so storage
        // never exceeds the cap and nothing new is refused.
        var firstEviction: UInt32 = 0
        for token in UInt32(1)...200 {
            let d = makeDatagram(payload: 3000, id: UInt16(token), rng: &rng)
            offer(r, fragments(d, size: 1480)[0], token: token, now: .seconds(1), into: &run)
            #expect(r.counters.bytesHeld <= limits.maxBytes)
            if firstEviction == 0, !run.dropped.isEmpty { firstEviction = token }
        }
        #expect(run.reasons().isEmpty)
        #expect(firstEviction > 1)
        let held = r.datagramsInProgress
        #expect(r.counters[.evicted] == UInt64(200 - held))
        // Oldest first: the evicted ones are exactly tokens 1, 2, 3, …
        #expect(run.dropped == Array(UInt32(1)...UInt32(200 - held)))
        // A second fragment of the newest datagram evicts the oldest survivor to fit.
        var rng2 = SeededRNG(seed: 82)
        var newest: [UInt8] = []
        for token in UInt32(1)...200 { newest = makeDatagram(payload: 3000, id: UInt16(token), rng: &rng2) }
        offer(r, fragment(newest, offset: 1480, length: 1480), token: 1000, now: .seconds(1), into: &run)
        #expect(isHeld(run.outcomes.last!))
        #expect(r.counters.bytesHeld <= limits.maxBytes)
        #expect(r.counters[.capBytes] == 0)
    }

    @Test func floodOfFirstFragmentsStaysWithinTheCaps() {
        var rng = SeededRNG(seed: 90)
        for limits in [FragmentLimits(), FragmentLimits(maxBytes: 256 << 10, maxDatagrams: 4096, maxDatagramsPerSource: 4096)] {
            let r = FragmentReassembler(limits: limits, hashSeed: 19)
            let allocated = r.allocatedBytes
            var buffer = [UInt8](repeating: 0, count: 20 + 16000)
            var outcomes: [FragmentDropReason: Int] = [:]
            var dropped = 0
            var held = 0
            for i in 0..<30000 {
                let length = Int.random(in: 1...2000, using: &rng) * 8
                buffer[0] = 0x45
                FragRef.put16(&buffer, 2, 20 + length)
                FragRef.put16(&buffer, 4, i & 0xffff)
                FragRef.put16(&buffer, 6, 0x2000)
                buffer[9] = 17
                buffer.replaceSubrange(12..<16, with: [10, UInt8(i & 7), 0, UInt8(i >> 8 & 0xff)])
                buffer.replaceSubrange(16..<20, with: server)
                let outcome = buffer.withUnsafeBytes {
                    r.offer(UnsafeRawBufferPointer(rebasing: $0[0..<(20 + length)]), token: UInt32(i), direction: .outbound, now: .seconds(1)) { _ in dropped += 1 }
                }
                if case .drop(let reason) = outcome { outcomes[reason, default: 0] += 1 }
                if case .held = outcome { held += 1 }
                let c = r.counters
                #expect(c.bytesHeld <= limits.maxBytes)
                #expect(c.datagramsInProgress <= limits.maxDatagrams)
            }
            #expect(r.allocatedBytes == allocated)
            // The flood never completes anything: once full, each new datagram evicts the
            // oldest, whose held fragment is reported for dropping (one verdict each).
            #expect(r.counters[.evicted] > 0)
            #expect(dropped == Int(r.counters[.evicted]))
            var expired = 0
            while r.expire(now: .seconds(100), { _ in expired += 1 }) > 0 {}
            #expect(expired + dropped == Int(r.counters[.heldFragmentsDropped]))
            #expect(expired + dropped == held)
            #expect(held + outcomes.values.reduce(0, +) == 30000)
            expectEmpty(r)
        }
    }

    @Test func storageFitsTheByteBudget() {
        let limits = FragmentLimits()
        let r = FragmentReassembler(limits: limits, hashSeed: 0)
        // Fragment storage is carved out of maxBytes; the fixed tables and the output buffer
        // come on top and are small.
        #expect(limits.blockCount * (FragmentLimits.blockCost + FragmentLimits.recordCost) <= limits.maxBytes)
        #expect(limits.blockCount * FragmentLimits.blockSize > 3 << 20)
        #expect(r.allocatedBytes < limits.maxBytes + (512 << 10))
    }

    /// Random fragments of random datagrams, garbage included: every token gets exactly one
    /// verdict, storage stays within the caps, and completed datagrams are byte-exact.
    @Test(arguments: [UInt64(100), 101, 102, 103])
    func everyTokenGetsExactlyOneVerdict(seed: UInt64) {
        var rng = SeededRNG(seed: seed)
        let limits = FragmentLimits(maxBytes: 512 << 10, maxDatagrams: 32, maxDatagramsPerSource: 16, maxFragmentsPerDatagram: 64, timeout: .seconds(5))
        let r = FragmentReassembler(limits: limits, hashSeed: seed)
        var originals: [[UInt8]] = []
        for i in 0..<48 {
            originals.append(makeDatagram(payload: Int.random(in: 100...20000, using: &rng), id: UInt16(i % 40),
                                          source: i % 3 == 0 ? clientB : clientA, protocolNumber: i % 5 == 0 ? 6 : 17, rng: &rng))
        }
        var verdicts = [Int](repeating: 0, count: 6001)
        var pending = Set<UInt32>()
        var completedOK = 0
        var clock: UInt64 = 0
        for token in UInt32(1)...6000 {
            clock += UInt64.random(in: 0...20_000_000, using: &rng)
            let d = originals.randomElement(using: &rng)!
            let payload = d.count - 20
            var f: [UInt8]
            switch Int.random(in: 0..<10, using: &rng) {
            case 0: // arbitrary range, maybe overlapping, maybe a wrong end
                let offset = Int.random(in: 0...(payload / 8), using: &rng) * 8
                let length = Int.random(in: 0...min(3000, payload - offset), using: &rng)
                f = fragment(d, offset: offset, length: length, last: Bool.random(using: &rng))
            case 1: // garbage
                f = (0..<Int.random(in: 0...64, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            default: // a fragment of a regular 1480 cut
                let list = fragments(d, size: 1480)
                f = list.randomElement(using: &rng)!
            }
            var dropped: [UInt32] = []
            let outcome = f.withUnsafeBytes { r.offer($0, token: token, direction: .outbound, now: NATTime(nanoseconds: clock)) { dropped.append($0) } }
            for t in dropped {
                verdicts[Int(t)] += 1
                #expect(pending.remove(t) != nil || t == token)
            }
            switch outcome {
            case .held:
                pending.insert(token)
            case .drop:
                verdicts[Int(token)] += 1
                #expect(!dropped.contains(token))
            case .complete(let datagram, let accept):
                verdicts[Int(accept)] += 1
                #expect(pending.remove(accept) != nil || accept == token)
                let got = Array(datagram)
                #expect(FragRef.headerChecksumValid(got))
                if originals.contains(got) { completedOK += 1 }
            }
            let c = r.counters
            #expect(c.bytesHeld <= limits.maxBytes)
            #expect(c.fragmentsHeld == pending.count)
            if token % 500 == 0 {
                r.expire(now: NATTime(nanoseconds: clock)) { t in
                    verdicts[Int(t)] += 1
                    #expect(pending.remove(t) != nil)
                }
            }
        }
        r.removeAll { t in
            verdicts[Int(t)] += 1
            #expect(pending.remove(t) != nil)
        }
        #expect(pending.isEmpty)
        #expect(verdicts[1...].allSatisfy { $0 == 1 })
        #expect(completedOK > 0)
        expectEmpty(r)
    }
}

// MARK: issue #20 item 3: spoofed first fragments, direction in the key

/// Every byte of a reassembled UDP datagram against the original, with both checksums
/// recomputed by NATTestKit's reference checksum (not the reassembler's or FragRef's).
private func expectWholeDatagram(_ got: [UInt8], equals original: [UInt8], sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(got == original, "reassembled bytes differ from the datagram sent", sourceLocation: sourceLocation)
    guard got.count >= 28 else { Issue.record("reassembled datagram of \(got.count) bytes", sourceLocation: sourceLocation); return }
    let ihl = Int(got[0] & 0x0f) * 4
    #expect(Int(got[2]) << 8 | Int(got[3]) == got.count, "total length", sourceLocation: sourceLocation)
    #expect((Int(got[6]) << 8 | Int(got[7])) & 0x3fff == 0, "MF or offset left set", sourceLocation: sourceLocation)
    #expect(RefChecksum.sum(Array(got[0..<ihl])) == 0xffff, "IP header checksum", sourceLocation: sourceLocation)
    let l4 = Array(got[ihl...])
    #expect(Int(l4[4]) << 8 | Int(l4[5]) == l4.count, "UDP length", sourceLocation: sourceLocation)
    let pseudo = RefChecksum.pseudoHeader(source: IPv4Bytes(got[12], got[13], got[14], got[15]),
                                          destination: IPv4Bytes(got[16], got[17], got[18], got[19]), protocolNumber: 17, length: l4.count)
    #expect(RefChecksum.sum(pseudo + l4) == 0xffff, "UDP checksum", sourceLocation: sourceLocation)
}

@Suite struct FragmentDirectionAndSpoofingTests {
    @Test func spoofedFirstFragmentsUnderAVictimsAddressEvictOnlyThemselves() {
        var rng = SeededRNG(seed: 120)
        let r = FragmentReassembler(hashSeed: 120)
        var run = Run()
        // 64 incomplete datagrams claiming clientB (the default per-source cap), from the WAN.
        for i in 0..<64 {
            let junk = makeDatagram(payload: 3000, id: UInt16(1000 + i), source: clientB, rng: &rng)
            offer(r, fragments(junk, size: 1480)[0], token: UInt32(1000 + i), direction: .inbound, now: .seconds(1), into: &run)
        }
        #expect(run.heldCount == 64 && r.datagramsInProgress == 64)
        // The real clientB's datagram; the attacker keeps sending while it is in reassembly.
        let victim = makeDatagram(payload: 4000, id: 7, source: clientB, rng: &rng)
        let pieces = fragments(victim, size: 1480)
        #expect(pieces.count == 3)
        offer(r, pieces[0], token: 1, direction: .inbound, now: .seconds(2), into: &run)
        #expect(isHeld(run.outcomes.last!))
        #expect(run.dropped == [1000], "the attacker's oldest gives way, nothing else")
        for i in 64..<74 {
            let junk = makeDatagram(payload: 3000, id: UInt16(1000 + i), source: clientB, rng: &rng)
            offer(r, fragments(junk, size: 1480)[0], token: UInt32(1000 + i), direction: .inbound, now: .seconds(2), into: &run)
        }
        #expect(run.dropped == Array(UInt32(1000)...UInt32(1010)), "each new spoofed datagram evicts the oldest spoofed one, never the victim's")
        offer(r, pieces[2], token: 3, direction: .inbound, now: .seconds(2), into: &run)
        offer(r, pieces[1], token: 2, direction: .inbound, now: .seconds(2), into: &run)
        #expect(run.completed.count == 1)
        #expect(run.accepted == [1])
        if let got = run.completed.first { expectWholeDatagram(got, equals: victim) }
        #expect(run.dropped.suffix(2) == [2, 3], "the victim's other fragments are dropped: their bytes travel in the first one's verdict")
        let c = r.counters
        #expect(c[.capPerSource] == 11)
        #expect(c[.evicted] == 0)
        #expect(c[.datagramsCompleted] == 1)
        #expect(c.datagramsInProgress == 63)
        #expect(c.totalDrops == 11)
    }

    @Test func theDirectionIsPartOfTheKey() {
        var rng = SeededRNG(seed: 121)
        let r = FragmentReassembler(limits: FragmentLimits(maxDatagramsPerSource: 1), hashSeed: 121)
        var run = Run()
        let mine = makeDatagram(payload: 3000, id: 0x4242, source: clientA, rng: &rng)
        // The same source, destination, protocol and identification, other bytes, from the WAN.
        let spoofed = makeDatagram(payload: 3000, id: 0x4242, source: clientA, rng: &rng)
        let minePieces = fragments(mine, size: 1480), spoofedPieces = fragments(spoofed, size: 1480)
        offer(r, minePieces[0], token: 1, direction: .outbound, now: .seconds(1), into: &run)
        // Same key but for the direction: it would overlap (discarding both) or, with a per-source
        // cap of 1, evict the outbound datagram, were the direction not part of both keys.
        offer(r, spoofedPieces[0], token: 11, direction: .inbound, now: .seconds(1), into: &run)
        offer(r, spoofedPieces[1], token: 12, direction: .inbound, now: .seconds(1), into: &run)
        #expect(run.heldCount == 3)
        #expect(run.dropped.isEmpty)
        #expect(r.datagramsInProgress == 2)
        offer(r, minePieces[2], token: 3, direction: .outbound, now: .seconds(1), into: &run)
        offer(r, minePieces[1], token: 2, direction: .outbound, now: .seconds(1), into: &run)
        #expect(run.completed.count == 1 && run.accepted == [1])
        if let got = run.completed.first { expectWholeDatagram(got, equals: mine) }
        // And the spoofed one completes on its own, as itself.
        offer(r, spoofedPieces[2], token: 13, direction: .inbound, now: .seconds(1), into: &run)
        #expect(run.completed.count == 2 && run.accepted == [1, 11])
        if run.completed.count == 2 { expectWholeDatagram(run.completed[1], equals: spoofed) }
        let c = r.counters
        #expect(c[.overlap] == 0 && c[.capPerSource] == 0 && c[.evicted] == 0 && c.totalDrops == 0)
        expectEmpty(r)
    }
}
