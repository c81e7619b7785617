// An open-addressing hash index from a 32-bit hash to a table row: the indexes of an
// IndexedTable, which owns the slots (allocated once at full size, rows ≤ half the slots), so
// lookups and inserts never allocate and probes stay short. Deletion shifts entries back (no
// tombstones), so a long-running table does not degrade. This is a view: two words, no owner.

struct FlowHashIndex {
    /// Slot layout: high 32 bits the row's hash, low 32 bits row + 1; 0 is an empty slot.
    private let slots: UnsafeMutablePointer<UInt64>
    private let mask: Int

    /// Over `slotCount` zeroed slots (a power of two, `slotCount(rows:)`) that the caller owns.
    init(slots: UnsafeMutablePointer<UInt64>, slotCount: Int) {
        self.slots = slots
        mask = slotCount - 1
    }

    /// Slots for an index of `rows` rows: a power of two, at least 16 and twice the rows.
    static func slotCount(rows: Int) -> Int {
        var slotCount = 16
        while slotCount < rows * 2 { slotCount <<= 1 }
        return slotCount
    }

    var slotCount: Int { mask + 1 }

    func removeAll() { slots.update(repeating: 0, count: mask + 1) }

    /// The row whose hash is `hash` and for which `matches(row)` holds, or -1.
    @inline(__always)
    func find(hash: UInt32, _ matches: (Int32) -> Bool) -> Int32 {
        var position = Int(hash) & mask
        while true {
            let slot = slots[position]
            if slot == 0 { return -1 }
            if UInt32(truncatingIfNeeded: slot >> 32) == hash {
                let row = Int32(truncatingIfNeeded: slot & 0xffff_ffff) - 1
                if matches(row) { return row }
            }
            position = (position + 1) & mask
        }
    }

    /// Adds `row` under `hash`. The caller guarantees the row is not already present and
    /// that at most half the slots are used (the tables cap their rows).
    @inline(__always)
    func insert(hash: UInt32, row: Int32) {
        var position = Int(hash) & mask
        while slots[position] != 0 { position = (position + 1) & mask }
        slots[position] = UInt64(hash) << 32 | UInt64(UInt32(row) + 1)
    }

    /// Removes `row` (stored under `hash`); backward-shift deletion keeps probe chains intact.
    func remove(hash: UInt32, row: Int32) {
        let wanted = UInt64(hash) << 32 | UInt64(UInt32(row) + 1)
        var hole = Int(hash) & mask
        while slots[hole] != wanted {
            if slots[hole] == 0 { return }
            hole = (hole + 1) & mask
        }
        var next = (hole + 1) & mask
        while slots[next] != 0 {
            let home = Int(UInt32(truncatingIfNeeded: slots[next] >> 32)) & mask
            // Move the entry back if the hole lies on its probe path (between home and next).
            if (next - home) & mask >= (next - hole) & mask {
                slots[hole] = slots[next]
                hole = next
            }
            next = (next + 1) & mask
        }
        slots[hole] = 0
    }
}

/// Mixes flow key words into a 32-bit hash with a per-process secret seed, so remote peers
/// cannot aim many flows at one probe chain.
@inline(__always)
func flowHash(_ a: UInt64, _ b: UInt64, seed: UInt64) -> UInt32 {
    var x = (a ^ seed) &* 0x9E37_79B9_7F4A_7C15
    x ^= b &+ (x >> 29)
    x = x &* 0xBF58_476D_1CE4_E5B9
    x ^= x >> 32
    x = x &* 0x94D0_49BB_1331_11EB
    return UInt32(truncatingIfNeeded: x ^ (x >> 31))
}
