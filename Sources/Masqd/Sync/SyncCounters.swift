import CounterSet

// The sync channel's counters (in `masqd stats` and the metrics page, Engine-HA.swift), kept
// as every counter set is (CounterSet): read as `counters[.messagesSent]`, `counters.drops(.stale)`.

enum SyncCounter: Int, CounterName {
    case messagesSent
    case messagesReceived
    /// Chunks sent again (a nack, or no ack within the resend delay).
    case messagesResent
    /// Full resyncs started by the active (on the standby's (re)connect, periodically, on a nack it cannot serve).
    case resyncsSent
    /// Full resyncs received whole by the standby and decoded.
    case snapshotsReceived
    /// Resyncs received whole that did not decode as a state snapshot, or were larger than the cap.
    case snapshotsRefused
    /// Resyncs the active could not send: more chunks than the resend queue holds.
    case resyncsTooLarge
    /// Times the standby's peer restarted (a new epoch) or first appeared.
    case peerConnects
    /// Datagrams the socket would not take (its buffer full): sent in a later round.
    case sendsDeferred
    /// Bytes of full resync chunks sent (resends included), and of increment messages.
    case resyncBytesSent
    case incrementBytesSent
    /// Increment records sent the first time (in batches), batches sent and sent again.
    case incrementRecordsSent
    case incrementBatchesSent
    case incrementBatchesResent
    /// Increment records the standby received (in accepted batches), and applied to its copy.
    case incrementsReceived
    case incrementsApplied
    /// Full resyncs wanted because: the translator lost events; the increment queue was full
    /// of batches no resync held; the standby missed batches no longer held; it asked.
    case resyncsForLostEvents
    case incrementQueueOverflows
    case resyncsForIncrementsLost
    case resyncsRequested
}

/// Why a received datagram was dropped (each has a counter; its description is the name in
/// `sync_dropped_NAME` and the metric's reason label).
enum SyncDropReason: Int, CounterName, CustomStringConvertible, Error {
    /// Shorter than a header and a MAC, longer than the largest message, or a payload length
    /// that does not match the datagram or the kind.
    case wrongLength
    /// Not our magic, version or kind, or a payload whose fields make no sense.
    case malformed
    /// The MAC does not match: not made with our key, or changed on the way.
    case badHMAC
    /// A sequence number already received in this epoch.
    case replayed
    /// An epoch older than the peer's current one, or a sequence too far behind to check.
    case stale
    /// From an address other than --sync-peer's.
    case notPeer

    var description: String {
        switch self {
        case .wrongLength: "wrong_length"
        case .malformed: "malformed"
        case .badHMAC: "bad_hmac"
        case .replayed: "replayed"
        case .stale: "stale"
        case .notPeer: "not_peer"
        }
    }
}

struct SyncCounters: Sendable, Equatable {
    var events = CounterSet<SyncCounter>()
    private(set) var drops = CounterSet<SyncDropReason>()

    subscript(counter: SyncCounter) -> UInt64 {
        get { events[counter] }
        set { events[counter] = newValue }
    }

    func drops(_ reason: SyncDropReason) -> UInt64 { drops[reason] }
    mutating func drop(_ reason: SyncDropReason) { drops.count(reason) }
}
