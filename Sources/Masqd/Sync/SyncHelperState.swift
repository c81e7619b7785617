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
// The standby's NATReplica decodes the state.

import NATCore

struct SyncHelperState: Equatable, Sendable {
    /// The session's flow (protocol, internal and remote endpoints).
    var flow: NATFlow
    var state: [UInt8]

    static let headerSize = 16
    /// A message holds the batch header (16) and one record within a chunk's size.
    static let maxStateBytes = SyncMessage.maxChunkData + 12 - 16 - headerSize

    func encode(into out: inout [UInt8]) {
        out += [flow.protocolNumber, 0]
        SyncMessage.put16(flow.internalEndpoint.port, &out)
        SyncMessage.put32(flow.internalEndpoint.address.value, &out)
        SyncMessage.put32(flow.remoteEndpoint.address.value, &out)
        SyncMessage.put16(flow.remoteEndpoint.port, &out)
        SyncMessage.put16(UInt16(truncatingIfNeeded: state.count), &out)
        out += state
    }

    /// The record that is exactly `b[offset...]`, or nil (a reserved byte set, a length that
    /// is 0, over the cap or not the rest of the bytes).
    static func decode(_ b: [UInt8], at offset: Int) -> SyncHelperState? {
        guard b.count - offset > headerSize, b[offset + 1] == 0 else { return nil }
        let length = Int(b[offset + 14]) << 8 | Int(b[offset + 15])
        guard length >= 1, length <= maxStateBytes, b.count - offset - headerSize == length else { return nil }
        let flow = NATFlow(protocolNumber: b[offset],
                           internalEndpoint: IPv4Endpoint(SyncMessage.get32(b, offset + 4), SyncMessage.get16(b, offset + 2)),
                           remoteEndpoint: IPv4Endpoint(SyncMessage.get32(b, offset + 8), SyncMessage.get16(b, offset + 12)))
        return SyncHelperState(flow: flow, state: Array(b[(offset + headerSize)...]))
    }
}
