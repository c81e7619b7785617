// Live sessions per internal address, for the per-host cap: one host (or one infected
// host's SYN flood) cannot take the whole session table. The same for connections with an
// application helper (a few of its sessions), against the smaller helper table.

struct HostEntry: BitwiseCopyable {
    var address: UInt32
    var hash: UInt32
    /// 0 marks a free row.
    var sessions: UInt32
    /// Of those, sessions with an application helper.
    var helperConnections: UInt32 = 0
    /// The new-flow rate's theoretical arrival time (GCRA, NewFlowRate.swift), in
    /// nanoseconds; 0 (a new row): the whole burst is there.
    var newFlowClock: UInt64 = 0
    /// The host's external address index while it has a row (paired pooling, RFC 4787 REQ-2).
    var externalIndex: UInt8 = 0

    static let empty = HostEntry(address: 0, hash: 0, sessions: 0)
}

extension HostEntry: TableRow {
    var isFree: Bool { sessions == 0 }
}

typealias HostTable = IndexedTable<HostEntry>

extension IndexedTable<HostEntry> {
    @inline(__always)
    private func hostRow(_ address: UInt32, hash: UInt32) -> Int32 {
        find(hash: hash) { $0.address == address }
    }

    /// Sessions held by `address` now.
    @inline(__always)
    func sessions(of address: UInt32) -> UInt32 {
        let row = hostRow(address, hash: flowHash(UInt64(address), 0, seed: seed))
        return row < 0 ? 0 : rows[Int(row)].sessions
    }

    /// Helper connections held by `address` now.
    @inline(__always)
    func helperConnections(of address: UInt32) -> UInt32 {
        let row = hostRow(address, hash: flowHash(UInt64(address), 0, seed: seed))
        return row < 0 ? 0 : rows[Int(row)].helperConnections
    }

    /// Counts a helper connection of `address`, whose session `add` counted already.
    mutating func addHelperConnection(_ address: UInt32) {
        let row = hostRow(address, hash: flowHash(UInt64(address), 0, seed: seed))
        if row >= 0 { rows[Int(row)].helperConnections += 1 }
    }

    /// Before `remove` of the helper connection's session.
    mutating func removeHelperConnection(_ address: UInt32) {
        let row = hostRow(address, hash: flowHash(UInt64(address), 0, seed: seed))
        if row >= 0, rows[Int(row)].helperConnections > 0 { rows[Int(row)].helperConnections -= 1 }
    }

    /// Whether `address` may open one more flow now under `rate`. A host without a row (no
    /// live session) has its whole burst.
    @inline(__always)
    func admitsNewFlow(_ address: UInt32, rate: NewFlowRate, now: NATTime) -> Bool {
        let row = hostRow(address, hash: flowHash(UInt64(address), 0, seed: seed))
        return row < 0 || rows[Int(row)].newFlowClock <= now.nanoseconds &+ rate.tolerance
    }

    /// Spends one flow of `address`'s rate, after `add` counted its session.
    @inline(__always)
    mutating func chargeNewFlow(_ address: UInt32, rate: NewFlowRate, now: NATTime) {
        let row = hostRow(address, hash: flowHash(UInt64(address), 0, seed: seed))
        guard row >= 0 else { return }
        rows[Int(row)].newFlowClock = max(rows[Int(row)].newFlowClock, now.nanoseconds) &+ rate.interval
    }

    /// The external address index `address` is paired with, or -1 when it has no live session.
    @inline(__always)
    func externalIndex(of address: UInt32) -> Int {
        let row = hostRow(address, hash: flowHash(UInt64(address), 0, seed: seed))
        return row < 0 ? -1 : Int(rows[Int(row)].externalIndex)
    }

    /// Counts one more session for `address` (a new row is paired with `externalIndex`);
    /// false when the table has no row left.
    @inline(__always)
    mutating func add(_ address: UInt32, externalIndex: UInt8 = 0) -> Bool {
        let hash = flowHash(UInt64(address), 0, seed: seed)
        let row = hostRow(address, hash: hash)
        if row >= 0 {
            rows[Int(row)].sessions += 1
            return true
        }
        return insert(HostEntry(address: address, hash: hash, sessions: 1, externalIndex: externalIndex)) >= 0
    }

    /// Counts one session fewer for `address` (not `remove(_ row: Int32)`: this takes an address).
    @inline(__always)
    mutating func remove(_ address: UInt32) {
        let hash = flowHash(UInt64(address), 0, seed: seed)
        let row = hostRow(address, hash: hash)
        guard row >= 0 else { return }
        if rows[Int(row)].sessions > 1 {
            rows[Int(row)].sessions -= 1
        } else {
            remove(row)
        }
    }
}
