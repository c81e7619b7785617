// A helper connection's state as an increment (issue #18): when a helper's rewrite or its own
// state changes a session's stream (an FTP PORT rewritten to another length shifts the
// sequence numbers), the active sends the session's key and the state bytes
// (NATStateSnapshot-HelperState.swift, read from the translator when the event is drained),
// so a takeover before the next full resync still maps the connection's numbers. It is a
// numbered batch of its own (message kind 7, one state per message: SyncMessage.swift), in the
// same order as the record batches, so the standby applies it after the session's creation.
// Record, big-endian:
//
//   0 protocol   1 reserved 0   2 internal port   4 internal address   8 remote address
//   12 remote port   14 state length n (1-maxStateBytes)   16 state (n bytes)
//
// No imports (compiled into the fuzz target): the standby's NATReplica decodes the state.

struct SyncHelperState: Equatable, Sendable {
    var protocolNumber: UInt8
    var internalAddress: UInt32
    var internalPort: UInt16
    var remoteAddress: UInt32
    var remotePort: UInt16
    var state: [UInt8]

    static let headerSize = 16
    /// A message holds the batch header (16) and one record within a chunk's size.
    static let maxStateBytes = SyncMessage.maxChunkData + 12 - 16 - headerSize

    func encode(into out: inout [UInt8]) {
        out += [protocolNumber, 0, UInt8(internalPort >> 8), UInt8(truncatingIfNeeded: internalPort)]
        SyncMessage.put32(internalAddress, &out)
        SyncMessage.put32(remoteAddress, &out)
        out += [UInt8(remotePort >> 8), UInt8(truncatingIfNeeded: remotePort), UInt8(state.count >> 8), UInt8(truncatingIfNeeded: state.count)]
        out += state
    }

    /// The record that is exactly `b[offset...]`, or nil (a reserved byte set, a length that
    /// is 0, over the cap or not the rest of the bytes).
    static func decode(_ b: [UInt8], at offset: Int) -> SyncHelperState? {
        guard b.count - offset > headerSize, b[offset + 1] == 0 else { return nil }
        let length = Int(b[offset + 14]) << 8 | Int(b[offset + 15])
        guard length >= 1, length <= maxStateBytes, b.count - offset - headerSize == length else { return nil }
        return SyncHelperState(protocolNumber: b[offset], internalAddress: SyncMessage.get32(b, offset + 4),
                               internalPort: UInt16(b[offset + 2]) << 8 | UInt16(b[offset + 3]),
                               remoteAddress: SyncMessage.get32(b, offset + 8),
                               remotePort: UInt16(b[offset + 12]) << 8 | UInt16(b[offset + 13]),
                               state: Array(b[(offset + headerSize)...]))
    }
}
