// Sessions: one per (mapping, remote endpoint). They carry the timers and TCP state, and
// their presence is the address-and-port-dependent filter for inbound packets.

struct Session: BitwiseCopyable {
    var expires: UInt64
    var remoteAddress: UInt32
    /// The internal endpoint and external port, copied from the mapping so an established
    /// outbound packet is translated from this row alone (one cache miss fewer).
    var internalAddress: UInt32 = 0
    /// Owning mapping row; -1 marks a free row.
    var mapping: Int32
    /// Row in the helper connection table, or -1 (almost every session).
    var helper: Int32 = -1
    /// Hash of (mapping, remote): the inbound index. Hash of the whole 5-tuple: the outbound one.
    var hash: UInt32
    var tupleHash: UInt32 = 0
    var remotePort: UInt16
    var internalPort: UInt16 = 0
    var externalPort: UInt16 = 0
    var tcpState: TCPSessionState
    var tcpFlagsSeen: UInt8
    var protocolNumber: UInt8 = 0
    /// The mapping's external address index, copied like the port (fits in padding: still 56 bytes).
    var externalIndex: UInt8 = 0
    /// TCP only: what the internal endpoint's packets announced, to judge the remote's RST
    /// and FIN (TCPWindowTracking.swift). 12 bytes: the row is 56 instead of 48.
    var tcpWindow = TCPWindowTracking()

    static let empty = Session(expires: 0, remoteAddress: 0, mapping: -1, hash: 0, remotePort: 0, tcpState: .none, tcpFlagsSeen: 0)
}

/// Two indexes: (mapping, remote endpoint) → row: inbound packets, filters, ICMP errors;
/// (protocol, internal endpoint, remote endpoint) → row: the outbound fast path.
extension Session: TableRow {
    var isFree: Bool { mapping < 0 }
    static var indexCount: Int { 2 }
    var secondHash: UInt32? { tupleHash }
}

typealias SessionTable = IndexedTable<Session>

extension IndexedTable<Session> {
    @inline(__always)
    func hash(mapping: Int32, remoteAddress: UInt32, remotePort: UInt16) -> UInt32 {
        flowHash(UInt64(remoteAddress) << 16 | UInt64(remotePort), UInt64(UInt32(bitPattern: mapping)), seed: seed)
    }

    /// The session of a mapping with a remote endpoint, or -1.
    @inline(__always)
    func find(mapping: Int32, remoteAddress: UInt32, remotePort: UInt16, hash: UInt32) -> Int32 {
        find(hash: hash) { s in
            s.mapping == mapping && s.remoteAddress == remoteAddress && s.remotePort == remotePort
        }
    }

    @inline(__always)
    func tupleHash(protocolNumber: UInt8, internalAddress: UInt32, internalPort: UInt16, remoteAddress: UInt32, remotePort: UInt16) -> UInt32 {
        flowHash(UInt64(internalAddress) << 32 | UInt64(remoteAddress),
                 UInt64(protocolNumber) << 32 | UInt64(internalPort) << 16 | UInt64(remotePort), seed: seed ^ 0x5a5a_5a5a)
    }

    /// The session of an internal endpoint with a remote endpoint, or -1.
    @inline(__always)
    func find(protocolNumber: UInt8, internalAddress: UInt32, internalPort: UInt16, remoteAddress: UInt32, remotePort: UInt16,
              tupleHash: UInt32) -> Int32 {
        findInSecondIndex(hash: tupleHash) { s in
            s.internalAddress == internalAddress && s.remoteAddress == remoteAddress && s.internalPort == internalPort
                && s.remotePort == remotePort && s.protocolNumber == protocolNumber
        }
    }

    /// Adds a session, its tuple hash filled in here from the table's seed (the generic
    /// `insert` would file the one it is given); its internal endpoint, external port and
    /// protocol must be filled in. The only way sessions are added.
    mutating func insertSession(_ session: Session) -> Int32 {
        var session = session
        session.tupleHash = tupleHash(protocolNumber: session.protocolNumber, internalAddress: session.internalAddress,
                                      internalPort: session.internalPort, remoteAddress: session.remoteAddress, remotePort: session.remotePort)
        return insert(session)
    }
}
