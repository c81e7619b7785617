// Redirected connections: one row per (client endpoint, local port), holding the original
// destination. The same key serves both directions: the client's packets (to the original
// destination, whose port names the local port) and the proxy's replies (from the local
// port to the client). An IndexedTable: allocated once at the cap, no allocation per packet.

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

extension RedirectSession: TableRow {
    var isFree: Bool { localPort == 0 }
}

typealias RedirectTable = IndexedTable<RedirectSession>

extension IndexedTable<RedirectSession> {
    @inline(__always)
    func hash(clientAddress: UInt32, clientPort: UInt16, localPort: UInt16) -> UInt32 {
        flowHash(UInt64(clientAddress) << 16 | UInt64(clientPort), UInt64(localPort), seed: seed)
    }

    /// The row of a client endpoint's connection to the local port, or -1.
    @inline(__always)
    func find(clientAddress: UInt32, clientPort: UInt16, localPort: UInt16, hash: UInt32) -> Int32 {
        find(hash: hash) { r in
            r.clientAddress == clientAddress && r.clientPort == clientPort && r.localPort == localPort
        }
    }
}
