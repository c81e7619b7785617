// The sync channel's counters (in `masqd stats` and the metrics page, Engine-Sync.swift).

struct SyncCounters {
    var messagesSent: UInt64 = 0
    var messagesReceived: UInt64 = 0
    /// Chunks sent again (a nack, or no ack within the resend delay).
    var messagesResent: UInt64 = 0
    var dropped: [SyncDropReason: UInt64] = [:]
    /// Full resyncs started by the active (on the standby's (re)connect, periodically, on a nack it cannot serve).
    var resyncsSent: UInt64 = 0
    /// Full resyncs received whole by the standby and decoded.
    var snapshotsReceived: UInt64 = 0
    /// Resyncs received whole that did not decode as a state snapshot, or were larger than the cap.
    var snapshotsRefused: UInt64 = 0
    /// Resyncs the active could not send: more chunks than the resend queue holds.
    var resyncsTooLarge: UInt64 = 0
    /// Times the standby's peer restarted (a new epoch) or first appeared.
    var peerConnects: UInt64 = 0
    /// Datagrams the socket would not take (its buffer full): sent in a later round.
    var sendsDeferred: UInt64 = 0
    /// Bytes of full resync chunks sent (resends included), and of increment messages.
    var resyncBytesSent: UInt64 = 0
    var incrementBytesSent: UInt64 = 0
    /// Increment records sent the first time (in batches), batches sent and sent again.
    var incrementRecordsSent: UInt64 = 0
    var incrementBatchesSent: UInt64 = 0
    var incrementBatchesResent: UInt64 = 0
    /// Increment records the standby received (in accepted batches), and applied to its copy.
    var incrementsReceived: UInt64 = 0
    var incrementsApplied: UInt64 = 0
    /// Full resyncs wanted because: the translator lost events; the increment queue was full
    /// of batches no resync held; the standby missed batches no longer held; it asked.
    var resyncsForLostEvents: UInt64 = 0
    var incrementQueueOverflows: UInt64 = 0
    var resyncsForIncrementsLost: UInt64 = 0
    var resyncsRequested: UInt64 = 0

    func drops(_ reason: SyncDropReason) -> UInt64 { dropped[reason] ?? 0 }
    mutating func drop(_ reason: SyncDropReason) { dropped[reason, default: 0] &+= 1 }
}
