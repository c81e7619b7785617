// Flows a helper expects (an FTP data connection, a DCC transfer, a TFTP reply, RTP): which
// remote may open one to which mapping, until when. Small and scanned linearly: it is consulted only
// for new inbound connections to mappings that have an expectation pending.

struct Expectation: BitwiseCopyable {
    var expires: UInt64
    /// The mapping the connection will arrive on; -1 marks a free row.
    var mapping: Int32
    /// The session of the connection whose helper asked (for the per-connection cap).
    var master: Int32
    var remoteAddress: UInt32
    /// 0: any port.
    var remotePort: UInt16
    /// Any remote address (`remoteAddress` is then ignored): a DCC peer is not known.
    var anyRemoteAddress: Bool = false

    static let empty = Expectation(expires: 0, mapping: -1, master: -1, remoteAddress: 0, remotePort: 0)
}

struct ExpectationTable {
    private(set) var store: RowStore<Expectation>

    init(capacity: Int) { store = RowStore(capacity: max(capacity, 1), empty: .empty) }

    func deallocate() { store.deallocate() }

    var count: Int { store.count }
    var capacity: Int { store.capacity }

    mutating func insert(_ expectation: Expectation) -> Int32 {
        let row = store.take()
        guard row >= 0 else { return -1 }
        store.rows[Int(row)] = expectation
        return row
    }

    mutating func remove(_ row: Int32) { store.give(row, empty: .empty) }

    mutating func removeAll() { store.reset(empty: .empty) }

    /// Pending expectations asked for by `master`.
    func count(master: Int32) -> Int {
        var n = 0
        for i in 0..<store.capacity where store.rows[i].mapping >= 0 && store.rows[i].master == master { n += 1 }
        return n
    }

    /// The pending expectation with exactly these fields, or -1.
    func find(mapping: Int32, master: Int32, remoteAddress: UInt32, remotePort: UInt16, anyRemoteAddress: Bool) -> Int32 {
        for i in 0..<store.capacity {
            let e = store.rows[i]
            if e.mapping == mapping, e.master == master, e.remotePort == remotePort, e.anyRemoteAddress == anyRemoteAddress,
               anyRemoteAddress || e.remoteAddress == remoteAddress {
                return Int32(i)
            }
        }
        return -1
    }

    mutating func renew(_ row: Int32, expires: UInt64) { store.rows[Int(row)].expires = expires }

    /// A live expectation of `mapping` that admits the remote endpoint, or -1.
    func match(mapping: Int32, remoteAddress: UInt32, remotePort: UInt16, now: UInt64) -> Int32 {
        for i in 0..<store.capacity {
            let e = store.rows[i]
            if e.mapping == mapping, e.expires > now, e.anyRemoteAddress || e.remoteAddress == remoteAddress,
               e.remotePort == 0 || e.remotePort == remotePort {
                return Int32(i)
            }
        }
        return -1
    }

    subscript(row: Int32) -> Expectation { store.rows[Int(row)] }
}
