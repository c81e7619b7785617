// HMAC-SHA256 (RFC 2104) over the sync channel's messages, and a comparison of MACs that
// takes the same time wherever they differ. No imports (compiled into the fuzz target).

struct HMACSHA256 {
    private let innerPad: [UInt8]
    private let outerPad: [UInt8]

    init(key: [UInt8]) {
        var block = key.count > SHA256.blockSize ? SHA256.hash(key) : key
        block += [UInt8](repeating: 0, count: SHA256.blockSize - block.count)
        innerPad = block.map { $0 ^ 0x36 }
        outerPad = block.map { $0 ^ 0x5c }
    }

    func authenticate<C: Collection>(_ message: C) -> [UInt8] where C.Element == UInt8 {
        var inner = SHA256()
        inner.update(innerPad)
        inner.update(message)
        var outer = SHA256()
        outer.update(outerPad)
        outer.update(inner.finalize())
        return outer.finalize()
    }

    /// True when `mac` is the MAC of `message`; never returns early on a differing byte.
    func isValid<M: Collection, T: Collection>(_ mac: T, for message: M) -> Bool where M.Element == UInt8, T.Element == UInt8 {
        let expected = authenticate(message)
        guard mac.count == expected.count else { return false }
        var difference: UInt8 = 0
        for (a, b) in zip(mac, expected) { difference |= a ^ b }
        return difference == 0
    }
}
