// A helper connection's state for the HA increments (issue #18): the packet path records a
// `.helperStateChanged` event when a payload segment of a helper connection logged an edit
// or changed the helper's own state bytes (only with `recordsHelperStateChanges`); the
// daemon, draining the events under the lock, reads the connection's current state here as
// bytes (NATStateSnapshot-HelperState.swift) and streams them to the standby (NATReplica).

/// The helper's 64 state bytes as words: compared before and after `inspect` without a copy
/// to the heap.
struct HelperStateWords: Equatable {
    var w0, w1, w2, w3, w4, w5, w6, w7: UInt64

    @inline(__always)
    init(_ p: UnsafeMutableRawPointer) {
        w0 = p.loadUnaligned(fromByteOffset: 0, as: UInt64.self); w1 = p.loadUnaligned(fromByteOffset: 8, as: UInt64.self)
        w2 = p.loadUnaligned(fromByteOffset: 16, as: UInt64.self); w3 = p.loadUnaligned(fromByteOffset: 24, as: UInt64.self)
        w4 = p.loadUnaligned(fromByteOffset: 32, as: UInt64.self); w5 = p.loadUnaligned(fromByteOffset: 40, as: UInt64.self)
        w6 = p.loadUnaligned(fromByteOffset: 48, as: UInt64.self); w7 = p.loadUnaligned(fromByteOffset: 56, as: UInt64.self)
    }
}

extension NATTranslator {
    @inline(__always)
    func recordHelperState(_ sessionRow: Int32, outbound: Bool) {
        guard recordsHelperStateChanges else { return }
        recordSession(.helperStateChanged, sessionRow, reason: outbound ? .outbound : .inbound)
    }

    /// The current state of the helper connection of the session `event` names (its
    /// protocol, internal and remote endpoints), encoded for the standby; nil when the session
    /// or its helper connection is gone.
    public func helperState(of event: NATEvent, maxBytes: Int) -> HelperStateLookup? {
        let hash = sessions.tupleHash(protocolNumber: event.protocolNumber, internalAddress: event.internalAddress,
                                      internalPort: event.internalPort, remoteAddress: event.remoteAddress, remotePort: event.remotePort)
        let row = sessions.find(protocolNumber: event.protocolNumber, internalAddress: event.internalAddress, internalPort: event.internalPort,
                                remoteAddress: event.remoteAddress, remotePort: event.remotePort, tupleHash: hash)
        guard row >= 0, sessions[row].helper >= 0 else { return nil }
        guard let record = helperRecord(sessions[row].helper) else { return .tooLarge } // (one the state file could not hold either)
        let bytes = record.syncEncoded()
        return bytes.count <= maxBytes ? .found(bytes) : .tooLarge
    }
}

public enum HelperStateLookup: Equatable, Sendable {
    /// The state, encoded (NATStateSnapshot-HelperState.swift).
    case found([UInt8])
    /// Larger than asked for, or not encodable: only a full resync carries it.
    case tooLarge
}
