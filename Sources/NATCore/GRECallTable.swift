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

/// Two indexes: (server, NAT call ID) → row, every row: inbound GRE, the server's replies;
/// (server, server's call ID) → row, confirmed rows: outbound GRE.
extension GRECall: TableRow {
    var isFree: Bool { client == 0 }
    static var indexCount: Int { 2 }
    var hash: UInt32 { natHash }
    var secondHash: UInt32? { confirmed ? serverHash : nil }
}

typealias GRECallTable = IndexedTable<GRECall>

extension IndexedTable<GRECall> {
    @inline(__always)
    func hash(server: UInt32, callID: UInt16, serverSide: Bool) -> UInt32 {
        flowHash(UInt64(server) << 16 | UInt64(callID), serverSide ? 1 : 0, seed: seed)
    }

    func find(server: UInt32, natCallID: UInt16) -> Int32 {
        find(hash: hash(server: server, callID: natCallID, serverSide: false)) { call in
            call.client != 0 && call.server == server && call.natCallID == natCallID
        }
    }

    func find(server: UInt32, serverCallID: UInt16) -> Int32 {
        findInSecondIndex(hash: hash(server: server, callID: serverCallID, serverSide: true)) { call in
            call.confirmed && call.server == server && call.serverCallID == serverCallID
        }
    }

    /// Adds an unconfirmed row; -1 when the table is full.
    mutating func insert(client: UInt32, server: UInt32, clientCallID: UInt16, natCallID: UInt16, expires: UInt64) -> Int32 {
        insert(GRECall(expires: expires, client: client, server: server, natHash: hash(server: server, callID: natCallID, serverSide: false),
                       serverHash: 0, clientCallID: clientCallID, natCallID: natCallID, serverCallID: 0, confirmed: false))
    }

    /// Records the server's call ID (once: a second reply for the call changes nothing).
    mutating func confirm(_ row: Int32, serverCallID: UInt16) {
        let call = pointer(row)
        guard !call.pointee.confirmed else { return }
        call.pointee.serverCallID = serverCallID
        call.pointee.serverHash = hash(server: call.pointee.server, callID: serverCallID, serverSide: true)
        call.pointee.confirmed = true
        fileInSecondIndex(row)
    }
}
