// Which mapping holds each external port (or ICMP identifier) of each protocol on each
// external address (index 0 the WAN address, then the pool addresses): a direct array of
// addresses × 3 × 65536 rows, so an inbound lookup by port is one load.

struct ExternalPortTable {
    private let owners: UnsafeMutablePointer<Int32>
    private let addresses: Int
    static let protocolSlots = TransportProtocol.count

    init(addresses: Int = 1) {
        self.addresses = addresses
        owners = .allocate(capacity: addresses * ExternalPortTable.protocolSlots * 65536)
        owners.initialize(repeating: -1, count: addresses * ExternalPortTable.protocolSlots * 65536)
    }

    func deallocate() { owners.deallocate() }

    func removeAll() { owners.update(repeating: -1, count: addresses * ExternalPortTable.protocolSlots * 65536) }

    /// Slot of a protocol that has ports or identifiers; nil for every other protocol.
    @inline(__always)
    static func slot(_ protocolNumber: UInt8) -> Int? {
        TransportProtocol(protocolNumber: protocolNumber)?.slot
    }

    /// The mapping row owning `port`, or -1.
    @inline(__always)
    func owner(slot: Int, port: UInt16, address: Int = 0) -> Int32 { owners[(address &* 3 &+ slot) &* 65536 &+ Int(port)] }

    @inline(__always)
    func claim(slot: Int, port: UInt16, row: Int32, address: Int = 0) { owners[(address &* 3 &+ slot) &* 65536 &+ Int(port)] = row }

    @inline(__always)
    func release(slot: Int, port: UInt16, address: Int = 0) { owners[(address &* 3 &+ slot) &* 65536 &+ Int(port)] = -1 }
}
