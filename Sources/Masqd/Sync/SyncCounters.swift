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

    func drops(_ reason: SyncDropReason) -> UInt64 { dropped[reason] ?? 0 }
    mutating func drop(_ reason: SyncDropReason) { dropped[reason, default: 0] &+= 1 }
}
