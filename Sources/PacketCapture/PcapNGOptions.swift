// The options that end a pcapng block body: code (2 bytes), length (2 bytes), value padded to
// 4 bytes, until opt_endofopt or the end of the body.

struct PcapNGOption {
    var code: UInt16
    /// The value's range in the file.
    var value: Range<Int>
    /// Where the option's header starts.
    var offset: Int
}

enum PcapNGOptions {
    static let endOfOptions: UInt16 = 0

    /// Calls `body` for each option in `range` (a block body after its fixed fields).
    static func forEach(in range: Range<Int>, _ fields: ByteFields,
                        _ body: (PcapNGOption) throws(CaptureError) -> Void) throws(CaptureError) {
        var offset = range.lowerBound
        // Fewer than 4 bytes left cannot hold an option header: writers leave no such tails,
        // and ignoring one keeps a harmless oddity from failing the whole file.
        while range.upperBound - offset >= 4 {
            let code = fields.u16(offset)
            let length = fields.u16(offset + 2)
            if code == endOfOptions { return }
            let valueStart = offset + 4
            guard Int(length) <= range.upperBound - valueStart else {
                throw CaptureError(.optionOverrunsBlock(code: code, length: length), at: offset)
            }
            try body(PcapNGOption(code: code, value: valueStart..<valueStart + Int(length), offset: offset))
            let padded = (Int(length) + 3) & ~3
            offset = min(valueStart + padded, range.upperBound)
        }
    }
}
