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

extension Mapping: TableRow {
    var isFree: Bool { protocolNumber == 0 }
}

typealias MappingTable = IndexedTable<Mapping>

extension IndexedTable<Mapping> {
    @inline(__always)
    func hash(protocolNumber: UInt8, address: UInt32, port: UInt16) -> UInt32 {
        flowHash(UInt64(address) << 16 | UInt64(port), UInt64(protocolNumber), seed: seed)
    }

    /// The mapping of an internal endpoint, or -1.
    @inline(__always)
    func find(protocolNumber: UInt8, address: UInt32, port: UInt16, hash: UInt32) -> Int32 {
        find(hash: hash) { m in
            m.internalAddress == address && m.internalPort == port && m.protocolNumber == protocolNumber
        }
    }
}
