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

/// No index: the table is small and scanned.
extension Expectation: TableRow {
    var isFree: Bool { mapping < 0 }
    static var indexCount: Int { 0 }
    var hash: UInt32 { 0 }
}

typealias ExpectationTable = IndexedTable<Expectation>

extension IndexedTable<Expectation> {
    init(capacity: Int) { self.init(capacity: max(capacity, 1), seed: 0) }

    /// Pending expectations asked for by `master`.
    func count(master: Int32) -> Int {
        var n = 0
        for i in 0..<capacity where rows[i].mapping >= 0 && rows[i].master == master { n += 1 }
        return n
    }

    /// The pending expectation with exactly these fields, or -1.
    func find(mapping: Int32, master: Int32, remoteAddress: UInt32, remotePort: UInt16, anyRemoteAddress: Bool) -> Int32 {
        for i in 0..<capacity {
            let e = rows[i]
            if e.mapping == mapping, e.master == master, e.remotePort == remotePort, e.anyRemoteAddress == anyRemoteAddress,
               anyRemoteAddress || e.remoteAddress == remoteAddress {
                return Int32(i)
            }
        }
        return -1
    }

    mutating func renew(_ row: Int32, expires: UInt64) { rows[Int(row)].expires = expires }

    /// A live expectation of `mapping` that admits the remote endpoint, or -1.
    func match(mapping: Int32, remoteAddress: UInt32, remotePort: UInt16, now: UInt64) -> Int32 {
        for i in 0..<capacity {
            let e = rows[i]
            if e.mapping == mapping, e.expires > now, e.anyRemoteAddress || e.remoteAddress == remoteAddress,
               e.remotePort == 0 || e.remotePort == remotePort {
                return Int32(i)
            }
        }
        return -1
    }
}
