// Address-only translations (issue #14), for every IP protocol without identifiers the NAT
// can map (ESP, AH, GRE without keys, SCTP, UDP-Lite, DCCP, 253/254, anything): one row per
// (protocol, remote address), naming the internal host that last sent to that remote. The
// remote's packets of that protocol go back to it; a second internal host is refused while
// the row lives — the same limit as the kernel's and libalias's address-only NAT, since the
// WAN side carries nothing else to tell two internal hosts apart.

struct AddressOnlyFlow: BitwiseCopyable {
    var expires: UInt64
    var remoteAddress: UInt32
    /// 0 marks a free row (0.0.0.0 is never an internal source: martian).
    var internalAddress: UInt32
    var hash: UInt32
    var protocolNumber: UInt8

    static let empty = AddressOnlyFlow(expires: 0, remoteAddress: 0, internalAddress: 0, hash: 0, protocolNumber: 0)
}

extension AddressOnlyFlow: TableRow {
    var isFree: Bool { internalAddress == 0 }
}

typealias AddressOnlyTable = IndexedTable<AddressOnlyFlow>

extension IndexedTable<AddressOnlyFlow> {
    @inline(__always)
    func hash(protocolNumber: UInt8, remoteAddress: UInt32) -> UInt32 {
        flowHash(UInt64(remoteAddress), UInt64(protocolNumber), seed: seed)
    }

    /// The row of (protocol, remote), or -1.
    @inline(__always)
    func find(protocolNumber: UInt8, remoteAddress: UInt32, hash: UInt32) -> Int32 {
        find(hash: hash) { flow in
            flow.remoteAddress == remoteAddress && flow.protocolNumber == protocolNumber && flow.internalAddress != 0
        }
    }
}
