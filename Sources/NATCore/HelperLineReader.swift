// Line-by-line reading for helpers of text protocols (FTP, IRC, and whatever a user writes
// next: SIP over TCP, RTSP, …). A helper is shown each direction's bytes in pieces that need
// not end at a line end; the reader finds the complete lines, and remembers across calls —
// in 8 bytes of the connection's `HelperContext.state` — whether the stream stopped at a line
// start, in the middle of a line that was passed on, or with an unfinished line held back
// (`.holdFrom`) that the core will show again first. A held line is recognised by its length
// and hash; if the core had to let it go instead (limits), its rest is not mistaken for a
// line start. Lines end at LF or CR LF, or, for a direction whose text may echo what the
// other side chose (an FTP server's replies), at CR LF only (`crlfOnly`): a bare LF there
// is text, so an echoed "\n227 …" cannot pass for a line of its own.

/// One complete line in a helper's bytes: `start..<end` is the text without its line end
/// ("\r\n" or "\n"); the next line starts at `next` (just after the "\n").
public struct HelperLine: Equatable, Sendable {
    public let start: Int
    public let end: Int
    public let next: Int

    @inlinable
    public init(start: Int, end: Int, next: Int) {
        self.start = start
        self.end = end
        self.next = next
    }

    /// The length with its line end, as protocols that cap lines usually count it.
    @inlinable public var lengthWithTerminator: Int { next - start }
    /// The length without the line end.
    @inlinable public var length: Int { end - start }
}

/// Reads one direction of a helper's stream line by line; state lives in the caller's
/// 8-byte slice of `HelperContext.state` (byte 1 of it is left for the helper's own use).
public struct HelperLineReader {
    /// Bytes of `HelperContext.state` the reader needs per direction.
    public static let stateBytes = 8

    @usableFromInline let state: UnsafeMutableRawBufferPointer
    /// Only CR LF ends a line (see the top of the file).
    @usableFromInline let crlfOnly: Bool

    // state[0]: where the stream stopped; state[1]: the helper's; [2..<4]: held length; [4..<8]: held hash.
    @usableFromInline static let atLineStart: UInt8 = 0
    @usableFromInline static let midLine: UInt8 = 1
    @usableFromInline static let held: UInt8 = 2
    /// With `midLine`, crlfOnly: the bytes passed ended with CR, so an LF first ends that line.
    @usableFromInline static let midLineAfterCR: UInt8 = 3

    /// `state`: this direction's `stateBytes` bytes of `HelperContext.state`. With fewer,
    /// nothing is remembered: every call starts at a line start and nothing held is tracked.
    public init(state: UnsafeMutableRawBufferPointer, crlfOnly: Bool = false) {
        self.state = state.count >= HelperLineReader.stateBytes ? state : UnsafeMutableRawBufferPointer(start: nil, count: 0)
        self.crlfOnly = crlfOnly
    }

    /// `HelperLineReader` over `stateBytes` bytes at `offset` of the context's state, or a
    /// stateless one if the state is too small for `needed` bytes in all.
    public init(context state: UnsafeMutableRawBufferPointer, offset: Int, needed: Int, crlfOnly: Bool = false) {
        guard state.count >= needed, offset >= 0, offset + HelperLineReader.stateBytes <= state.count else {
            self.init(state: UnsafeMutableRawBufferPointer(start: nil, count: 0), crlfOnly: crlfOnly)
            return
        }
        self.init(state: UnsafeMutableRawBufferPointer(rebasing: state[offset..<offset + HelperLineReader.stateBytes]), crlfOnly: crlfOnly)
    }

    /// Calls `line` for every complete line of `bytes` (a line the stream was in the middle
    /// of at the last call is skipped), then asks `holdTail` about an unfinished last line
    /// starting at the given offset: true holds it (return the verdict to the core), false
    /// passes it and skips the rest of that line when it comes.
    @inlinable
    public func read(_ bytes: UnsafeRawBufferPointer, line: (HelperLine) -> Void, holdTail: (Int) -> Bool) -> HelperVerdict {
        let count = bytes.count
        guard var cursor = firstLineStart(bytes) else {
            setMidLine(bytes)
            return .pass
        }
        while cursor < count {
            guard let newline = lineEnd(in: bytes, from: cursor) else { break }
            var end = newline
            if end > cursor, bytes[end - 1] == UInt8(ascii: "\r") { end -= 1 }
            line(HelperLine(start: cursor, end: end, next: newline + 1))
            cursor = newline + 1
        }
        guard cursor < count else {
            setMode(HelperLineReader.atLineStart)
            return .pass
        }
        if holdTail(cursor) {
            setHeld(bytes, from: cursor)
            return .holdFrom(cursor)
        }
        setMidLine(bytes)
        return .pass
    }

    /// The index of the LF that ends the line starting at `start`, or nil: any LF, or with
    /// `crlfOnly` one right after a CR (`start` itself when the stream stopped after a CR).
    @usableFromInline
    func lineEnd(in bytes: UnsafeRawBufferPointer, from start: Int, afterCR: Bool = false) -> Int? {
        guard crlfOnly else { return HelperLineReader.newline(in: bytes, from: start) }
        var i = start
        while let newline = HelperLineReader.newline(in: bytes, from: i) {
            if newline > start ? bytes[newline - 1] == UInt8(ascii: "\r") : afterCR { return newline }
            i = newline + 1
        }
        return nil
    }

    @usableFromInline
    func setMidLine(_ bytes: UnsafeRawBufferPointer) {
        let afterCR = crlfOnly && bytes.count > 0 && bytes[bytes.count - 1] == UInt8(ascii: "\r")
        setMode(afterCR ? HelperLineReader.midLineAfterCR : HelperLineReader.midLine)
    }

    /// Where the first line starting in `bytes` begins; nil if none does.
    @usableFromInline
    func firstLineStart(_ bytes: UnsafeRawBufferPointer) -> Int? {
        guard state.count >= HelperLineReader.stateBytes else { return 0 }
        switch state[0] {
        case HelperLineReader.atLineStart:
            return 0
        case HelperLineReader.held:
            let length = Int(state.loadUnaligned(fromByteOffset: 2, as: UInt16.self))
            let hash = state.loadUnaligned(fromByteOffset: 4, as: UInt32.self)
            if length <= bytes.count, HelperLineReader.hash(bytes, 0, length) == hash { return 0 }
        default:
            break
        }
        // In the middle of a line (or a held line the core let go): the next one starts after its end.
        return lineEnd(in: bytes, from: 0, afterCR: state[0] == HelperLineReader.midLineAfterCR).map { $0 + 1 }
    }

    @usableFromInline
    func setMode(_ mode: UInt8) {
        guard state.count >= HelperLineReader.stateBytes else { return }
        state[0] = mode
    }

    @usableFromInline
    func setHeld(_ bytes: UnsafeRawBufferPointer, from start: Int) {
        guard state.count >= HelperLineReader.stateBytes, start <= bytes.count else { return }
        state[0] = HelperLineReader.held
        state.storeBytes(of: UInt16(clamping: bytes.count - start), toByteOffset: 2, as: UInt16.self)
        state.storeBytes(of: HelperLineReader.hash(bytes, start, bytes.count), toByteOffset: 4, as: UInt32.self)
    }

    @usableFromInline
    static func newline(in bytes: UnsafeRawBufferPointer, from start: Int) -> Int? {
        var i = start
        while i < bytes.count {
            if bytes[i] == UInt8(ascii: "\n") { return i }
            i += 1
        }
        return nil
    }

    /// FNV-1a over [start, end).
    @usableFromInline
    static func hash(_ bytes: UnsafeRawBufferPointer, _ start: Int, _ end: Int) -> UInt32 {
        var h: UInt32 = 0x811c_9dc5
        var i = start
        while i < end {
            h = (h ^ UInt32(bytes[i])) &* 0x0100_0193
            i += 1
        }
        return h
    }
}
