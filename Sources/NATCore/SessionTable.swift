// Sessions: one per (mapping, remote endpoint). They carry the timers and TCP state, and
// their presence is the address-and-port-dependent filter for inbound packets.

struct Session: BitwiseCopyable {
    var expires: UInt64
    var remoteAddress: UInt32
    /// Owning mapping row; -1 marks a free row.
    var mapping: Int32
    var hash: UInt32
    var remotePort: UInt16
    var tcpState: TCPSessionState
    var tcpFlagsSeen: UInt8
    /// Row in the helper connection table, or -1 (almost every session).
    var helper: Int32 = -1

    static let empty = Session(expires: 0, remoteAddress: 0, mapping: -1, hash: 0, remotePort: 0, tcpState: .none, tcpFlagsSeen: 0)
}

struct SessionTable {
    private(set) var store: RowStore<Session>
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

    @inline(__always)
    subscript(row: Int32) -> Session {
        get { store.rows[Int(row)] }
        nonmutating set { store.rows[Int(row)] = newValue }
    }

    @inline(__always)
    func pointer(_ row: Int32) -> UnsafeMutablePointer<Session> { store.rows + Int(row) }

    @inline(__always)
    func hash(mapping: Int32, remoteAddress: UInt32, remotePort: UInt16) -> UInt32 {
        flowHash(UInt64(remoteAddress) << 16 | UInt64(remotePort), UInt64(UInt32(bitPattern: mapping)), seed: seed)
    }

    /// The session of a mapping with a remote endpoint, or -1.
    @inline(__always)
    func find(mapping: Int32, remoteAddress: UInt32, remotePort: UInt16, hash: UInt32) -> Int32 {
        let rows = store.rows
        return index.find(hash: hash) { row in
            let s = rows[Int(row)]
            return s.mapping == mapping && s.remoteAddress == remoteAddress && s.remotePort == remotePort
        }
    }

    mutating func insert(_ session: Session) -> Int32 {
        let row = store.take()
        guard row >= 0 else { return -1 }
        store.rows[Int(row)] = session
        index.insert(hash: session.hash, row: row)
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
