// Redirected connections: one row per (client endpoint, local port), holding the original
// destination. The same key serves both directions: the client's packets (to the original
// destination, whose port names the local port) and the proxy's replies (from the local
// port to the client). Built from the mapping and session tables' shapes (RowStore,
// FlowHashIndex): allocated once at the cap, no allocation per packet.

struct RedirectSession: BitwiseCopyable {
    var expires: UInt64
    var clientAddress: UInt32
    var originalAddress: UInt32
    /// The router's address on the interface the client's packet came in on.
    var localAddress: UInt32
    var hash: UInt32
    var clientPort: UInt16
    var originalPort: UInt16
    /// 0 marks a free row.
    var localPort: UInt16
    var tcpState: TCPSessionState
    var tcpFlagsSeen: UInt8

    static let empty = RedirectSession(expires: 0, clientAddress: 0, originalAddress: 0, localAddress: 0, hash: 0,
                                       clientPort: 0, originalPort: 0, localPort: 0, tcpState: .none, tcpFlagsSeen: 0)
}

struct RedirectTable {
    private(set) var store: RowStore<RedirectSession>
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

    @inline(__always)
    subscript(row: Int32) -> RedirectSession {
        get { store.rows[Int(row)] }
        nonmutating set { store.rows[Int(row)] = newValue }
    }

    @inline(__always)
    func pointer(_ row: Int32) -> UnsafeMutablePointer<RedirectSession> { store.rows + Int(row) }

    @inline(__always)
    func hash(clientAddress: UInt32, clientPort: UInt16, localPort: UInt16) -> UInt32 {
        flowHash(UInt64(clientAddress) << 16 | UInt64(clientPort), UInt64(localPort), seed: seed)
    }

    /// The row of a client endpoint's connection to the local port, or -1.
    @inline(__always)
    func find(clientAddress: UInt32, clientPort: UInt16, localPort: UInt16, hash: UInt32) -> Int32 {
        let rows = store.rows
        return index.find(hash: hash) { row in
            let r = rows[Int(row)]
            return r.clientAddress == clientAddress && r.clientPort == clientPort && r.localPort == localPort
        }
    }

    /// Adds a row (its hash filled in); -1 when the table is full.
    mutating func insert(_ session: RedirectSession) -> Int32 {
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

    mutating func endSweepPass(highestLiveSeen: Int32) { store.endSweepPass(highestLiveSeen: highestLiveSeen) }

    mutating func removeAll() {
        index.removeAll()
        store.reset(empty: .empty)
    }
}
