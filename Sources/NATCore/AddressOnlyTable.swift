// Address-only translations (issue #14), for every IP protocol without identifiers the NAT
// can map (ESP, AH, GRE without keys, SCTP, UDP-Lite, DCCP, 253/254, anything): one row per
// (protocol, remote address), naming the internal host that last sent to that remote. The
// remote's packets of that protocol go back to it; a second internal host is refused while
// the row lives — the same limit as the kernel's and libalias's address-only NAT, since the
// WAN side carries nothing else to tell two internal hosts apart.

struct AddressOnlyFlow: BitwiseCopyable {
    var expires: UInt64
    var remoteAddress: UInt32
    /// 0 marks a free row (0.0.0.0 is never an internal source: martian).
    var internalAddress: UInt32
    var hash: UInt32
    var protocolNumber: UInt8

    static let empty = AddressOnlyFlow(expires: 0, remoteAddress: 0, internalAddress: 0, hash: 0, protocolNumber: 0)
}

struct AddressOnlyTable {
    private(set) var store: RowStore<AddressOnlyFlow>
    private let index: FlowHashIndex
    private let seed: UInt64

    init(capacity: Int, seed: UInt64) {
        store = RowStore(capacity: capacity, empty: .empty)
        index = FlowHashIndex(rows: capacity)
        self.seed = seed
    }

    func deallocate() {
        store.deallocate()
        index.deallocate()
    }

    var count: Int { store.count }
    var capacity: Int { store.capacity }
    var highWater: Int { store.highWater }
    mutating func endSweepPass(highestLiveSeen: Int32) { store.endSweepPass(highestLiveSeen: highestLiveSeen) }

    @inline(__always)
    subscript(row: Int32) -> AddressOnlyFlow {
        get { store.rows[Int(row)] }
        nonmutating set { store.rows[Int(row)] = newValue }
    }

    @inline(__always)
    func hash(protocolNumber: UInt8, remoteAddress: UInt32) -> UInt32 {
        flowHash(UInt64(remoteAddress), UInt64(protocolNumber), seed: seed)
    }

    /// The row of (protocol, remote), or -1.
    @inline(__always)
    func find(protocolNumber: UInt8, remoteAddress: UInt32, hash: UInt32) -> Int32 {
        let rows = store.rows
        return index.find(hash: hash) { row in
            let flow = rows[Int(row)]
            return flow.remoteAddress == remoteAddress && flow.protocolNumber == protocolNumber && flow.internalAddress != 0
        }
    }

    /// Adds a row; -1 when the table is full.
    mutating func insert(_ flow: AddressOnlyFlow) -> Int32 {
        let row = store.take()
        guard row >= 0 else { return -1 }
        store.rows[Int(row)] = flow
        index.insert(hash: flow.hash, row: row)
        return row
    }

    mutating func remove(_ row: Int32) {
        index.remove(hash: store.rows[Int(row)].hash, row: row)
        store.give(row, empty: .empty)
    }

    mutating func removeAll() {
        index.removeAll()
        store.reset(empty: .empty)
    }
}
