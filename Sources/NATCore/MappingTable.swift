// Endpoint-independent mappings: one internal (address, port) per protocol holds one
// external port for every destination while any of its sessions lives (RFC 4787 REQ-1).

struct Mapping: BitwiseCopyable {
    var internalAddress: UInt32
    var hash: UInt32
    var sessionCount: UInt32
    var internalPort: UInt16
    var externalPort: UInt16
    /// 0 marks a free row.
    var protocolNumber: UInt8
    /// A port forward's mapping: made at start, never expires, accepts new remote endpoints.
    var isStatic: Bool = false
    /// Expected connections waiting for this mapping; it stays while any wait.
    var pendingExpectations: UInt8 = 0
    /// Which external address (0: the WAN address; SourceAddressPools.swift).
    var externalIndex: UInt8 = 0

    static let empty = Mapping(internalAddress: 0, hash: 0, sessionCount: 0, internalPort: 0, externalPort: 0, protocolNumber: 0)
}

struct MappingTable {
    private(set) var store: RowStore<Mapping>
    private var index: FlowHashIndex
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

    @inline(__always)
    subscript(row: Int32) -> Mapping {
        get { store.rows[Int(row)] }
        nonmutating set { store.rows[Int(row)] = newValue }
    }

    @inline(__always)
    func hash(protocolNumber: UInt8, address: UInt32, port: UInt16) -> UInt32 {
        flowHash(UInt64(address) << 16 | UInt64(port), UInt64(protocolNumber), seed: seed)
    }

    /// The mapping of an internal endpoint, or -1.
    @inline(__always)
    func find(protocolNumber: UInt8, address: UInt32, port: UInt16, hash: UInt32) -> Int32 {
        let rows = store.rows
        return index.find(hash: hash) { row in
            let m = rows[Int(row)]
            return m.internalAddress == address && m.internalPort == port && m.protocolNumber == protocolNumber
        }
    }

    /// Adds a mapping; -1 when the table is full.
    mutating func insert(_ mapping: Mapping) -> Int32 {
        let row = store.take()
        guard row >= 0 else { return -1 }
        store.rows[Int(row)] = mapping
        index.insert(hash: mapping.hash, row: row)
        return row
    }

    mutating func remove(_ row: Int32) {
        index.remove(hash: store.rows[Int(row)].hash, row: row)
        store.give(row, empty: .empty)
    }

    /// Makes room for `capacity` rows. Rows keep their numbers (sessions, the external port
    /// table and expectations refer to them); the index is rebuilt for the new size.
    mutating func grow(to capacity: Int) {
        guard capacity > store.capacity else { return }
        store = store.grown(to: capacity, empty: .empty) { $0.protocolNumber == 0 }
        index.deallocate()
        index = FlowHashIndex(rows: capacity)
        for row in 0..<capacity where store.rows[row].protocolNumber != 0 {
            index.insert(hash: store.rows[row].hash, row: Int32(row))
        }
    }

    mutating func removeAll() {
        index.removeAll()
        store.reset(empty: .empty)
    }
}
