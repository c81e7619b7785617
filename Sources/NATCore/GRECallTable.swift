// PPTP's enhanced GRE calls (RFC 2637): the GRE key carries the receiver's call ID, so two
// LAN hosts calling one server need their call IDs translated like ports. The PPTP control
// helper (NATHelpers/PPTPHelper.swift) makes a row when a LAN host's Outgoing-Call-Request
// passes (its call ID → a NAT call ID unique for that server) and completes it with the
// server's call ID from the Outgoing-Call-Reply — the kernel's nf_nat_pptp keymap.
// Outbound GRE carries the server's call ID (found by server and that ID), inbound GRE the
// NAT call ID (found by server and that ID, rewritten back to the host's).

struct GRECall: BitwiseCopyable {
    var expires: UInt64
    /// The internal host; 0 marks a free row.
    var client: UInt32
    var server: UInt32
    var natHash: UInt32
    var serverHash: UInt32
    var clientCallID: UInt16
    var natCallID: UInt16
    var serverCallID: UInt16
    /// The server's call ID is known (its Outgoing-Call-Reply passed): in the server index.
    var confirmed: Bool

    static let empty = GRECall(expires: 0, client: 0, server: 0, natHash: 0, serverHash: 0, clientCallID: 0, natCallID: 0,
                               serverCallID: 0, confirmed: false)
}

struct GRECallTable {
    private(set) var store: RowStore<GRECall>
    /// (server, NAT call ID) → row: inbound GRE, the server's replies.
    private let byNAT: FlowHashIndex
    /// (server, server's call ID) → row, confirmed rows: outbound GRE.
    private let byServer: FlowHashIndex
    private let seed: UInt64

    init(capacity: Int, seed: UInt64) {
        store = RowStore(capacity: capacity, empty: .empty)
        byNAT = FlowHashIndex(rows: capacity)
        byServer = FlowHashIndex(rows: capacity)
        self.seed = seed
    }

    func deallocate() {
        store.deallocate()
        byNAT.deallocate()
        byServer.deallocate()
    }

    var count: Int { store.count }
    var capacity: Int { store.capacity }
    var highWater: Int { store.highWater }

    @inline(__always)
    subscript(row: Int32) -> GRECall {
        get { store.rows[Int(row)] }
        nonmutating set { store.rows[Int(row)] = newValue }
    }

    @inline(__always)
    func hash(server: UInt32, callID: UInt16, serverSide: Bool) -> UInt32 {
        flowHash(UInt64(server) << 16 | UInt64(callID), serverSide ? 1 : 0, seed: seed)
    }

    func find(server: UInt32, natCallID: UInt16) -> Int32 {
        let rows = store.rows
        return byNAT.find(hash: hash(server: server, callID: natCallID, serverSide: false)) { row in
            rows[Int(row)].client != 0 && rows[Int(row)].server == server && rows[Int(row)].natCallID == natCallID
        }
    }

    func find(server: UInt32, serverCallID: UInt16) -> Int32 {
        let rows = store.rows
        return byServer.find(hash: hash(server: server, callID: serverCallID, serverSide: true)) { row in
            rows[Int(row)].confirmed && rows[Int(row)].server == server && rows[Int(row)].serverCallID == serverCallID
        }
    }

    /// Adds an unconfirmed row; -1 when the table is full.
    mutating func insert(client: UInt32, server: UInt32, clientCallID: UInt16, natCallID: UInt16, expires: UInt64) -> Int32 {
        let row = store.take()
        guard row >= 0 else { return -1 }
        let natHash = hash(server: server, callID: natCallID, serverSide: false)
        store.rows[Int(row)] = GRECall(expires: expires, client: client, server: server, natHash: natHash, serverHash: 0,
                                       clientCallID: clientCallID, natCallID: natCallID, serverCallID: 0, confirmed: false)
        byNAT.insert(hash: natHash, row: row)
        return row
    }

    /// Records the server's call ID (once: a second reply for the call changes nothing).
    mutating func confirm(_ row: Int32, serverCallID: UInt16) {
        guard !store.rows[Int(row)].confirmed else { return }
        let serverHash = hash(server: store.rows[Int(row)].server, callID: serverCallID, serverSide: true)
        store.rows[Int(row)].serverCallID = serverCallID
        store.rows[Int(row)].serverHash = serverHash
        store.rows[Int(row)].confirmed = true
        byServer.insert(hash: serverHash, row: row)
    }

    mutating func remove(_ row: Int32) {
        let call = store.rows[Int(row)]
        byNAT.remove(hash: call.natHash, row: row)
        if call.confirmed { byServer.remove(hash: call.serverHash, row: row) }
        store.give(row, empty: .empty)
    }

    mutating func removeAll() {
        byNAT.removeAll()
        byServer.removeAll()
        store.reset(empty: .empty)
    }
}
