// Which mapping holds each external port (or ICMP identifier) of each protocol on each
// external address (index 0 the WAN address, then the pool addresses): a direct array of
// addresses × 3 × 65536 rows, so an inbound lookup by port is one load.
//
// Beside it, for the allocator, a two-level bitmap of the free ports of each (address,
// protocol): one bit per port, and one summary bit per 64-port word ("this word has a free
// port"). Finding the first free port in a range reads at most 16 summary words and two
// port words, so a range whose ports are all taken is refused at once instead of after a
// scan of 64512 rows (issue #20). The table is its buffers' one owner: not copyable, freed
// by its deinit.

struct ExternalPortTable: ~Copyable {
    private let owners: UnsafeMutablePointer<Int32>
    /// Free ports: 1024 words per (address, slot), bit set = no owner.
    private let freeWords: UnsafeMutablePointer<UInt64>
    /// 16 words per (address, slot), bit w set = freeWords word w is not zero.
    private let summary: UnsafeMutablePointer<UInt64>
    /// Words of either level read by `firstFree` (for tests that a full range costs no scan).
    private let probes: UnsafeMutablePointer<Int>
    private let addresses: Int
    static let protocolSlots = TransportProtocol.count
    static let wordsPerSlot = 65536 / 64
    static let summaryWordsPerSlot = wordsPerSlot / 64

    init(addresses: Int = 1) {
        self.addresses = addresses
        owners = .allocate(capacity: addresses * ExternalPortTable.protocolSlots * 65536)
        freeWords = .allocate(capacity: addresses * ExternalPortTable.protocolSlots * ExternalPortTable.wordsPerSlot)
        summary = .allocate(capacity: addresses * ExternalPortTable.protocolSlots * ExternalPortTable.summaryWordsPerSlot)
        probes = .allocate(capacity: 1)
        probes.initialize(to: 0)
        owners.initialize(repeating: -1, count: addresses * ExternalPortTable.protocolSlots * 65536)
        freeWords.initialize(repeating: ~0, count: addresses * ExternalPortTable.protocolSlots * ExternalPortTable.wordsPerSlot)
        summary.initialize(repeating: ~0, count: addresses * ExternalPortTable.protocolSlots * ExternalPortTable.summaryWordsPerSlot)
    }

    deinit {
        owners.deallocate()
        freeWords.deallocate()
        summary.deallocate()
        probes.deallocate()
    }

    func removeAll() {
        owners.update(repeating: -1, count: addresses * ExternalPortTable.protocolSlots * 65536)
        freeWords.update(repeating: ~0, count: addresses * ExternalPortTable.protocolSlots * ExternalPortTable.wordsPerSlot)
        summary.update(repeating: ~0, count: addresses * ExternalPortTable.protocolSlots * ExternalPortTable.summaryWordsPerSlot)
    }

    /// Slot of a protocol that has ports or identifiers; nil for every other protocol.
    @inline(__always)
    static func slot(_ protocolNumber: UInt8) -> Int? {
        TransportProtocol(protocolNumber: protocolNumber)?.slot
    }

    /// The mapping row owning `port`, or -1.
    @inline(__always)
    func owner(slot: Int, port: UInt16, address: Int = 0) -> Int32 { owners[(address &* 3 &+ slot) &* 65536 &+ Int(port)] }

    @inline(__always)
    func claim(slot: Int, port: UInt16, row: Int32, address: Int = 0) {
        owners[(address &* 3 &+ slot) &* 65536 &+ Int(port)] = row
        let base = (address &* 3 &+ slot) &* ExternalPortTable.wordsPerSlot
        let w = Int(port &>> 6)
        freeWords[base &+ w] &= ~(1 &<< UInt64(port & 63))
        if freeWords[base &+ w] == 0 {
            summary[(address &* 3 &+ slot) &* ExternalPortTable.summaryWordsPerSlot &+ w &>> 6] &= ~(1 &<< UInt64(w & 63))
        }
    }

    @inline(__always)
    func release(slot: Int, port: UInt16, address: Int = 0) {
        owners[(address &* 3 &+ slot) &* 65536 &+ Int(port)] = -1
        let w = Int(port &>> 6)
        freeWords[(address &* 3 &+ slot) &* ExternalPortTable.wordsPerSlot &+ w] |= 1 &<< UInt64(port & 63)
        summary[(address &* 3 &+ slot) &* ExternalPortTable.summaryWordsPerSlot &+ w &>> 6] |= 1 &<< UInt64(w & 63)
    }

    /// The lowest port in `from...through` that no mapping owns, or nil.
    func firstFree(slot: Int, address: Int = 0, from: Int, through: Int) -> Int? {
        guard from <= through else { return nil }
        let words = freeWords + (address &* 3 &+ slot) &* ExternalPortTable.wordsPerSlot
        let summaryWords = summary + (address &* 3 &+ slot) &* ExternalPortTable.summaryWordsPerSlot
        let lastWord = through >> 6
        let lastMask: UInt64 = through & 63 == 63 ? ~0 : (1 << UInt64(through & 63 + 1)) - 1
        var w = from >> 6
        var bits = words[w] & (~0 << UInt64(from & 63))
        probes.pointee &+= 1
        while true {
            if w == lastWord { bits &= lastMask }
            if bits != 0 { return w << 6 | bits.trailingZeroBitCount }
            if w >= lastWord { return nil }
            // The next word with a free port, from the summary.
            w += 1
            var s = w >> 6
            var summaryBits = summaryWords[s] & (~0 << UInt64(w & 63))
            probes.pointee &+= 1
            while summaryBits == 0 {
                s += 1
                if s > lastWord >> 6 { return nil }
                summaryBits = summaryWords[s]
                probes.pointee &+= 1
            }
            w = s << 6 | summaryBits.trailingZeroBitCount
            if w > lastWord { return nil }
            bits = words[w]
            probes.pointee &+= 1
        }
    }

    /// The first port `p` in `from...through` with `p` even and `p` and `p + 1` both free, or
    /// nil: a word at a time (pairs are rare, so no summary for them).
    func firstFreePair(slot: Int, address: Int = 0, from: Int, through: Int) -> Int? {
        guard from <= through else { return nil }
        let words = freeWords + (address &* 3 &+ slot) &* ExternalPortTable.wordsPerSlot
        let even: UInt64 = 0x5555_5555_5555_5555
        for w in (from >> 6)...(through >> 6) {
            probes.pointee &+= 1
            let bits = words[w]
            var pairs = bits & (bits >> 1) & even
            if w == from >> 6 { pairs &= ~0 << UInt64(from & 63) }
            if pairs != 0 {
                let port = w << 6 | pairs.trailingZeroBitCount
                return port + 1 <= through ? port : nil
            }
        }
        return nil
    }

    /// Words read by the free-port searches so far.
    var probeCount: Int { probes.pointee }
}
