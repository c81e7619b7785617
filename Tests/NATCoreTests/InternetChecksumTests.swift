import NATTestKit
import Testing
@testable import NATCore

private func coreSum(_ bytes: [UInt8]) -> UInt16 {
    bytes.withUnsafeBytes { InternetChecksum.sum($0.baseAddress ?? UnsafeRawPointer(bitPattern: 1)!, count: bytes.count) }
}

private func coreChecksum(_ bytes: [UInt8]) -> UInt16 {
    bytes.withUnsafeBytes { InternetChecksum.checksum($0.baseAddress ?? UnsafeRawPointer(bitPattern: 1)!, count: bytes.count) }
}

private func word(_ p: [UInt8], _ i: Int) -> UInt16 { UInt16(p[2 * i]) << 8 | UInt16(p[2 * i + 1]) }
private func setWord(_ p: inout [UInt8], _ i: Int, _ v: UInt16) {
    p[2 * i] = UInt8(v >> 8)
    p[2 * i + 1] = UInt8(v & 0xff)
}

@Suite struct InternetChecksumTests {
    @Test func rfc1071Example() {
        let bytes: [UInt8] = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]
        #expect(RefChecksum.sum(bytes) == 0xddf2)
        #expect(coreSum(bytes) == 0xddf2)
        #expect(coreChecksum(bytes) == 0x220d)
    }

    @Test func knownIPv4HeaderChecksum() {
        // The classic example header: 45 00 00 73 00 00 40 00 40 11 [b8 61] c0 a8 00 01 c0 a8 00 c7.
        var header: [UInt8] = [0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0x00, 0x00,
                               0xc0, 0xa8, 0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7]
        #expect(RefChecksum.checksum(header) == 0xb861)
        #expect(coreChecksum(header) == 0xb861)
        header[10] = 0xb8
        header[11] = 0x61
        #expect(coreSum(header) == 0xffff)
        let valid = header.withUnsafeMutableBytes { IPv4Header(unchecked: $0.baseAddress!).headerChecksumIsValid }
        #expect(valid)
        header[11] = 0x62
        let invalid = header.withUnsafeMutableBytes { IPv4Header(unchecked: $0.baseAddress!).headerChecksumIsValid }
        #expect(!invalid)
    }

    @Test func updateHeaderChecksumRecomputesFromScratch() {
        var header = PacketBuilder.udp(Net.hostA, 1, Net.remote, 2)
        let expected = Array(header[10...11])
        header[10] = 0x12
        header[11] = 0x34
        header.withUnsafeMutableBytes { IPv4Header(unchecked: $0.baseAddress!).updateHeaderChecksum() }
        #expect(Array(header[10...11]) == expected)
    }

    @Test func oddLengthsPadWithZero() {
        #expect(coreSum([]) == 0)
        #expect(coreSum([0xab]) == 0xab00)
        #expect(coreSum([0x01, 0x02, 0x03]) == 0x0402)
        #expect(coreSum([0xff, 0xff, 0xff]) == 0xff00) // 0xffff + 0xff00 = 0x1feff → 0xff00
        #expect(coreSum([0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01]) == 0x0100)
    }

    @Test func allOnesAndAllZeros() {
        for count in [2, 4, 8, 16, 32, 64, 100, 1500] {
            #expect(coreSum([UInt8](repeating: 0xff, count: count)) == 0xffff)
            #expect(coreSum([UInt8](repeating: 0, count: count)) == 0)
        }
    }

    @Test func everyLengthUpTo200MatchesReference() {
        var rng = SeededRNG(seed: 1071)
        for count in 0...200 {
            for round in 0..<8 {
                // Alternate uniform bytes and carry-heavy (mostly 0xff) bytes.
                let data: [UInt8] = round % 2 == 0 ? rng.bytes(count)
                    : (0..<count).map { _ in UInt8.random(in: 0...9, using: &rng) == 0 ? UInt8.random(in: 0...255, using: &rng) : 0xff }
                #expect(coreSum(data) == RefChecksum.sum(data), "length \(count) round \(round)")
                #expect(coreChecksum(data) == RefChecksum.checksum(data), "length \(count) round \(round)")
            }
        }
    }

    @Test func unalignedStartsMatchReference() {
        var rng = SeededRNG(seed: 99)
        let buffer = rng.bytes(300)
        for start in 0..<8 {
            for count in stride(from: 0, through: 280, by: 7) {
                let slice = Array(buffer[start..<(start + count)])
                let got = buffer.withUnsafeBytes { InternetChecksum.sum($0.baseAddress! + start, count: count) }
                #expect(got == RefChecksum.sum(slice), "start \(start) count \(count)")
            }
        }
    }

    @Test func largeBufferWithManyCarries() {
        var rng = SeededRNG(seed: 5)
        let big = (0..<65535).map { _ in UInt8.random(in: 0xf0...0xff, using: &rng) }
        #expect(coreSum(big) == RefChecksum.sum(big))
    }

    @Test func onesComplementAdd() {
        #expect(InternetChecksum.add(0, 0) == 0)
        #expect(InternetChecksum.add(0x1234, 0x0001) == 0x1235)
        #expect(InternetChecksum.add(0xffff, 0x0001) == 0x0001)
        #expect(InternetChecksum.add(0x8000, 0x8000) == 0x0001)
        #expect(InternetChecksum.add(0xffff, 0xffff) == 0xffff)
        #expect(InternetChecksum.add(0xfffe, 0x0001) == 0xffff)
    }

    @Test func pseudoHeaderSumMatchesReference() {
        var rng = SeededRNG(seed: 768)
        for _ in 0..<2000 {
            let s = rng.bytes(4), d = rng.bytes(4)
            let proto: UInt8 = Bool.random(using: &rng) ? 6 : 17
            let length = Int.random(in: 0...65535, using: &rng)
            let src = IPv4Bytes(bytes: s), dst = IPv4Bytes(bytes: d)
            let expected = RefChecksum.sum(RefChecksum.pseudoHeader(source: src, destination: dst, protocolNumber: proto, length: length))
            let got = InternetChecksum.pseudoHeaderSum(source: src.address.value, destination: dst.address.value, protocolNumber: proto, length: length)
            #expect(got == expected)
        }
    }

    /// RFC 1624: the incremental update equals a full recompute, bit for bit (data is never all
    /// zero here: word 0 is fixed non-zero, which is the case for every real header).
    @Test func adjust16EqualsFullRecompute() {
        var rng = SeededRNG(seed: 1624)
        let specials: [UInt16] = [0x0000, 0xffff, 0x0001, 0xfffe, 0x8000, 0x7fff]
        for round in 0..<20000 {
            let words = Int.random(in: 3...30, using: &rng)
            var data = rng.bytes(words * 2)
            if word(data, 0) == 0 { setWord(&data, 0, 0x4500) }
            let checksumIndex = Int.random(in: 1..<words, using: &rng)
            var fieldIndex = Int.random(in: 1..<words, using: &rng)
            if fieldIndex == checksumIndex { fieldIndex = fieldIndex == 1 ? 2 : 1 }
            if round % 3 == 0 { setWord(&data, fieldIndex, specials.randomElement(using: &rng)!) }
            setWord(&data, checksumIndex, 0)
            let old = word(data, fieldIndex)
            let oldChecksum = RefChecksum.checksum(data)
            let new = round % 3 == 1 ? specials.randomElement(using: &rng)! : UInt16.random(in: 0...0xffff, using: &rng)
            setWord(&data, fieldIndex, new)
            let expected = RefChecksum.checksum(data)
            let got = InternetChecksum.adjust(oldChecksum, old: old, new: new)
            #expect(got == expected, "round \(round): \(old) → \(new)")
            setWord(&data, checksumIndex, got)
            #expect(RefChecksum.sum(data) == 0xffff)
        }
    }

    @Test func adjust32EqualsFullRecompute() {
        var rng = SeededRNG(seed: 32)
        let specials: [UInt32] = [0, 0xffff_ffff, 0x0000_ffff, 0xffff_0000, 0xcb00_7101]
        for round in 0..<20000 {
            let words = Int.random(in: 4...30, using: &rng)
            var data = rng.bytes(words * 2)
            if word(data, 0) == 0 { setWord(&data, 0, 0x4500) }
            // a 32-bit field at words f, f+1 and the checksum elsewhere
            let fieldIndex = Int.random(in: 1...(words - 3), using: &rng)
            let checksumIndex = fieldIndex + 2
            if round % 3 == 0 {
                let v = specials.randomElement(using: &rng)!
                setWord(&data, fieldIndex, UInt16(v >> 16))
                setWord(&data, fieldIndex + 1, UInt16(v & 0xffff))
            }
            setWord(&data, checksumIndex, 0)
            let old = UInt32(word(data, fieldIndex)) << 16 | UInt32(word(data, fieldIndex + 1))
            let oldChecksum = RefChecksum.checksum(data)
            let new = round % 3 == 1 ? specials.randomElement(using: &rng)! : UInt32.random(in: 0...UInt32.max, using: &rng)
            setWord(&data, fieldIndex, UInt16(new >> 16))
            setWord(&data, fieldIndex + 1, UInt16(new & 0xffff))
            let expected = RefChecksum.checksum(data)
            #expect(InternetChecksum.adjust(oldChecksum, oldAddress: old, newAddress: new) == expected, "round \(round)")
        }
    }

    @Test func adjustToAndFromAZeroChecksum() {
        // words: 0x1234, field, checksum. Field 0xedcb makes the sum 0xffff: checksum 0x0000.
        var data: [UInt8] = [0x12, 0x34, 0x00, 0x01, 0x00, 0x00]
        let c1 = RefChecksum.checksum(data)
        #expect(c1 == 0xedca)
        let toZero = InternetChecksum.adjust(c1, old: 0x0001, new: 0xedcb)
        setWord(&data, 1, 0xedcb)
        #expect(RefChecksum.checksum(data) == 0x0000)
        #expect(toZero == 0x0000)
        // and back from 0x0000
        let back = InternetChecksum.adjust(0x0000, old: 0xedcb, new: 0x0001)
        #expect(back == 0xedca)
        // A checksum sent as 0xffff (UDP's spelling of a computed 0) is still updated correctly.
        let fromFFFF = InternetChecksum.adjust(0xffff, old: 0xedcb, new: 0x0001)
        #expect(fromFFFF == 0xedca)
        // Field to/from 0xffff and 0x0000.
        var d2: [UInt8] = [0x45, 0x00, 0xff, 0xff, 0x00, 0x00]
        let c2 = RefChecksum.checksum(d2)
        setWord(&d2, 1, 0x0000)
        #expect(InternetChecksum.adjust(c2, old: 0xffff, new: 0x0000) == RefChecksum.checksum(d2))
        #expect(InternetChecksum.adjust(RefChecksum.checksum(d2), old: 0x0000, new: 0xffff) == c2)
    }
}
