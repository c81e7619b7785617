import NATTestKit
import Testing
@testable import NATCore

/// HelperLineReader: the line walking the FTP and IRC helpers (and users' helpers) share.
/// The core's part is simulated here: bytes held with `.holdFrom` are shown again first.
@Suite struct HelperLineReaderTests {
    /// One direction's 8 bytes of state, plus the guard bytes around it.
    final class State {
        let memory = UnsafeMutableRawBufferPointer.allocate(byteCount: 10, alignment: 8)
        init() {
            memory.initializeMemory(as: UInt8.self, repeating: 0xEE)
            for i in 1...8 { memory[i] = 0 }
        }
        deinit { memory.deallocate() }
        var slice: UnsafeMutableRawBufferPointer { UnsafeMutableRawBufferPointer(rebasing: memory[1..<9]) }
    }

    /// Reads `text` in one call; returns the lines' texts and the verdict.
    static func read(_ reader: HelperLineReader, _ text: [UInt8], hold: Bool = true) -> (lines: [String], ranges: [HelperLine], verdict: HelperVerdict) {
        var lines: [String] = []
        var ranges: [HelperLine] = []
        let verdict = text.withUnsafeBytes { bytes in
            reader.read(bytes, line: { line in
                ranges.append(line)
                lines.append(String(decoding: bytes[line.start..<line.end], as: UTF8.self))
            }, holdTail: { _ in hold })
        }
        return (lines, ranges, verdict)
    }

    /// `crlfOnly` (an FTP server's replies): a bare LF is text; a CR ending one call and the LF
    /// starting the next end a line passed on unfinished.
    @Test func crlfOnlyTakesABareLineFeedForText() {
        let state = State()
        let reader = HelperLineReader(state: state.slice, crlfOnly: true)
        let r = Self.read(reader, Array("550 a\n227 (1,2,3,4,5,6)\r\n\n\r\n".utf8))
        #expect(r.lines == ["550 a\n227 (1,2,3,4,5,6)", "\n"])
        #expect(r.ranges == [HelperLine(start: 0, end: 23, next: 25), HelperLine(start: 25, end: 26, next: 28)])
        #expect(r.verdict == .pass)
        // Passed mid-line, ending with CR: the LF that comes first ends that line.
        let cut = Self.read(reader, Array("500 x\r".utf8), hold: false)
        #expect(cut.lines.isEmpty && cut.verdict == .pass)
        let next = Self.read(reader, Array("\n227 y\r\n".utf8))
        #expect(next.lines == ["227 y"])
        // Passed mid-line without a CR at the end: an LF first is text, the line goes on to CR LF.
        _ = Self.read(reader, Array("500 x".utf8), hold: false)
        let rest = Self.read(reader, Array("\n227 z\r\n200 ok\r\n".utf8))
        #expect(rest.lines == ["200 ok"])
        #expect(state.memory[0] == 0xEE && state.memory[9] == 0xEE)
    }

    @Test func completeLinesWithEitherLineEnd() {
        let state = State()
        let reader = HelperLineReader(state: state.slice)
        let r = Self.read(reader, Array("PORT 1\r\nNOOP\n\r\n\n".utf8))
        #expect(r.lines == ["PORT 1", "NOOP", "", ""])
        #expect(r.ranges == [HelperLine(start: 0, end: 6, next: 8), HelperLine(start: 8, end: 12, next: 13),
                             HelperLine(start: 13, end: 13, next: 15), HelperLine(start: 15, end: 15, next: 16)])
        #expect(r.ranges[0].length == 6 && r.ranges[0].lengthWithTerminator == 8)
        #expect(r.verdict == .pass)
        #expect(state.memory[0] == 0xEE && state.memory[9] == 0xEE, "the reader wrote outside its 8 bytes")
    }

    @Test func aHeldLineIsShownAgainAndRead() {
        let state = State()
        let reader = HelperLineReader(state: state.slice)
        let first = Self.read(reader, Array("A\nPORT 1,2".utf8))
        #expect(first.lines == ["A"] && first.verdict == .holdFrom(2))
        let second = Self.read(reader, Array("PORT 1,2,3\nB".utf8), hold: false)
        #expect(second.lines == ["PORT 1,2,3"] && second.verdict == .pass)
        // "B" passed unheld: the next call is in the middle of that line.
        let third = Self.read(reader, Array("C\nD\n".utf8))
        #expect(third.lines == ["D"])
    }

    @Test func aHeldLineTheCoreLetGoIsNotMistakenForALineStart() {
        let state = State()
        let reader = HelperLineReader(state: state.slice)
        #expect(Self.read(reader, Array("PORT 1,2".utf8)).verdict == .holdFrom(0))
        // The core could not hold it (limits) and sent it on: the next bytes are its rest.
        let next = Self.read(reader, Array(",3,4\nPORT 5\n".utf8))
        #expect(next.lines == ["PORT 5"])
    }

    @Test func noNewlineInAMidLineCallKeepsTheStreamMidLine() {
        let state = State()
        let reader = HelperLineReader(state: state.slice)
        _ = Self.read(reader, Array("xxxx".utf8), hold: false)
        #expect(Self.read(reader, Array("yyyy".utf8)).lines == [])
        #expect(Self.read(reader, Array("zz\nok\n".utf8)).lines == ["ok"])
    }

    @Test func byteOneIsLeftToTheHelper() {
        let state = State()
        state.slice[1] = 0xA5
        let reader = HelperLineReader(state: state.slice)
        _ = Self.read(reader, Array("held".utf8))
        _ = Self.read(reader, Array("x\nmid".utf8), hold: false)
        _ = Self.read(reader, Array("\n".utf8))
        #expect(state.slice[1] == 0xA5)
    }

    @Test func withoutStateEveryCallStartsAtALineStart() {
        let small = UnsafeMutableRawBufferPointer.allocate(byteCount: 7, alignment: 8)
        defer { small.deallocate() }
        small.initializeMemory(as: UInt8.self, repeating: 0x77)
        let reader = HelperLineReader(state: small)
        _ = Self.read(reader, Array("abc".utf8), hold: false)
        #expect(Self.read(reader, Array("def\n".utf8)).lines == ["def"])
        #expect(small.allSatisfy { $0 == 0x77 }, "a stateless reader wrote to a state too small for it")

        let context = UnsafeMutableRawBufferPointer.allocate(byteCount: 16, alignment: 8)
        defer { context.deallocate() }
        context.initializeMemory(as: UInt8.self, repeating: 0)
        // Needs 32 bytes in all, has 16: stateless. An offset past the end: stateless.
        for r in [HelperLineReader(context: context, offset: 0, needed: 32), HelperLineReader(context: context, offset: 12, needed: 16),
                  HelperLineReader(context: context, offset: -1, needed: 16)] {
            _ = Self.read(r, Array("abc".utf8), hold: false)
            #expect(Self.read(r, Array("def\n".utf8)).lines == ["def"])
        }
        #expect(context.allSatisfy { $0 == 0 })
        // Offsets 0 and 8 of 16 bytes are two independent directions.
        let client = HelperLineReader(context: context, offset: 0, needed: 16)
        let server = HelperLineReader(context: context, offset: 8, needed: 16)
        _ = Self.read(client, Array("mid".utf8), hold: false)
        #expect(Self.read(server, Array("s\n".utf8)).lines == ["s"])
        #expect(Self.read(client, Array("c\nd\n".utf8)).lines == ["d"])
    }

    /// A stream cut into pieces at random: with unfinished lines always held (as the core shows
    /// them again), the lines read are exactly the stream's lines, whatever the cuts.
    @Test(arguments: [1, 2, 3, 4, 5, 6] as [UInt64])
    func anyCuttingGivesTheStreamsLines(seed: UInt64) {
        var random = SeededRNG(seed: seed)
        var text: [UInt8] = []
        for _ in 0..<60 {
            let length = Int.random(in: 0..<12, using: &random)
            for _ in 0..<length { text.append(UInt8(ascii: "a") + UInt8(Int.random(in: 0..<26, using: &random))) }
            text += Int.random(in: 0..<2, using: &random) == 0 ? [10] : [13, 10]
        }
        // Split on the bytes: a String would read "\r\n" as one Character.
        let expected = text.split(separator: 10, omittingEmptySubsequences: false).dropLast()
            .map { String(decoding: $0.last == 13 ? $0.dropLast() : $0, as: UTF8.self) }
        let state = State()
        let reader = HelperLineReader(state: state.slice)
        var got: [String] = []
        var held: [UInt8] = []
        var offset = 0
        while offset < text.count {
            let cut = min(text.count, offset + 1 + Int.random(in: 0..<9, using: &random))
            let shown = held + text[offset..<cut]
            let r = Self.read(reader, shown)
            got += r.lines
            if case .holdFrom(let start) = r.verdict { held = Array(shown[start...]) } else { held = [] }
            offset = cut
        }
        #expect(held.isEmpty)
        #expect(got == expected, "seed \(seed)")
    }
}
