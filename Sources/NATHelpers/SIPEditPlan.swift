// The edits the SIP helper decides on for one message, collected before any is staged: the
// Content-Length fix depends on the body's edits, and its field may come before or after the
// fields that change. Held in caller-provided stack memory; staged in offset order, all or
// none, so a message is never left half rewritten.

import NATCore

enum SIPReplacement: BitwiseCopyable {
    /// "a.b.c.d" or "a.b.c.d:port".
    case endpoint(address: UInt32, port: UInt16?)
    case address(UInt32)
    case number(UInt32)

    var length: Int {
        switch self {
        case .endpoint(let address, let port): SIPReplacement.addressLength(address) + (port.map { 1 + SIPReplacement.digits(UInt32($0)) } ?? 0)
        case .address(let address): SIPReplacement.addressLength(address)
        case .number(let value): SIPReplacement.digits(value)
        }
    }

    static func digits(_ value: UInt32) -> Int {
        var n = value, count = 1
        while n >= 10 { n /= 10; count += 1 }
        return count
    }

    static func addressLength(_ address: UInt32) -> Int {
        3 + digits(address >> 24) + digits(address >> 16 & 0xff) + digits(address >> 8 & 0xff) + digits(address & 0xff)
    }

    func write(_ writer: inout HelperTextWriter) {
        switch self {
        case .endpoint(let address, let port):
            writer.write(address: IPv4Address(address), separator: UInt8(ascii: "."))
            if let port {
                writer.write(byte: UInt8(ascii: ":"))
                writer.write(decimal: UInt32(port))
            }
        case .address(let address): writer.write(address: IPv4Address(address), separator: UInt8(ascii: "."))
        case .number(let value): writer.write(decimal: value)
        }
    }
}

struct SIPPlannedEdit: BitwiseCopyable {
    var start: Int
    var end: Int
    var replacement: SIPReplacement
}

struct SIPEditPlan {
    static let capacity = HelperLimits.editsPerDatagram
    private let edits: UnsafeMutableBufferPointer<SIPPlannedEdit>
    private(set) var count = 0
    /// More edits were wanted than a datagram may take.
    private(set) var overflowed = false

    /// Where the message starts in the inspected bytes (a stream may carry several).
    private let offset: Int

    init(_ storage: UnsafeMutableBufferPointer<SIPPlannedEdit>, offset: Int = 0) {
        edits = storage
        self.offset = offset
    }

    mutating func add(_ range: Range<Int>, _ replacement: SIPReplacement) {
        guard count < edits.count else { overflowed = true; return }
        (edits.baseAddress! + count).initialize(to: SIPPlannedEdit(start: range.lowerBound, end: range.upperBound, replacement: replacement))
        count += 1
    }

    /// How much the edits inside `range` change its length.
    func delta(in range: Range<Int>) -> Int {
        var delta = 0
        for i in 0..<count where edits[i].start >= range.lowerBound && edits[i].end <= range.upperBound {
            delta += edits[i].replacement.length - (edits[i].end - edits[i].start)
        }
        return delta
    }

    enum Outcome { case nothing, applied, refused }

    /// Stages every edit in offset order, or none: `.refused` when they overlap, are too many
    /// for what the core still takes, or one is refused.
    mutating func apply(_ context: inout HelperContext) -> Outcome {
        guard count > 0 else { return .nothing }
        guard !overflowed, count <= context.editsRemaining else { return .refused }
        // Insertion sort: a handful of edits, nearly in order already.
        for i in 1..<max(count, 1) {
            let edit = edits[i]
            var j = i
            while j > 0, edits[j - 1].start > edit.start {
                edits[j] = edits[j - 1]
                j -= 1
            }
            edits[j] = edit
        }
        for i in 1..<max(count, 1) where edits[i - 1].end > edits[i].start { return .refused }
        for i in 0..<count {
            let edit = edits[i]
            guard context.replace((offset + edit.start)..<(offset + edit.end), { edit.replacement.write(&$0) }) else { return .refused }
        }
        return .applied
    }
}
