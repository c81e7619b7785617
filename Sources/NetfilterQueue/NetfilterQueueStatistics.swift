import CounterSet

/// The counts of one NetfilterQueue since it was opened (`statistics[.packetsReceived]`).
public enum NetfilterQueueCounter: Int, CounterName {
    /// Packets handed out by `receive()`.
    case packetsReceived
    /// Verdicts sent to the kernel.
    case verdictsSent
    /// sendto calls that carried verdicts.
    case verdictMessagesSent
    /// NLMSG_ERROR replies with a nonzero error (refused verdicts).
    case netlinkErrors
    /// Receives that failed with ENOBUFS (the socket overran; packets were lost to user space).
    case receiveOverruns
    /// Packets received with `isTruncated`.
    case truncatedPackets
    /// Refused verdicts that did not fit the ring drained by `drainRefusedVerdicts`.
    case refusedVerdictOverflows
    /// Verdict payloads over 65531 bytes: the kernel cannot take them, so the packet was dropped.
    case oversizedVerdictPayloads
    /// Verdicts discarded because their sendto failed.
    case verdictsLost
    /// Datagrams or messages that could not be parsed (too big for a slot, no packet header).
    case malformedMessages
    /// Packets dropped by the binding itself: queued while the queue was still being
    /// configured, or more packet messages in one receive than `batchSize`.
    case packetsDroppedByBinding
}

/// Counters of one NetfilterQueue since it was opened, and its last netlink error.
public struct NetfilterQueueStatistics: Sendable, Equatable {
    public var counts = CounterSet<NetfilterQueueCounter>()
    /// errno of the most recent NLMSG_ERROR reply with a nonzero error (0 if none).
    public var lastNetlinkErrno: Int32 = 0
    /// Packet id (nlmsg_seq of the refused verdict) of the most recent such reply.
    public var lastErrorPacketID: UInt32 = 0

    public init() {}

    public subscript(counter: NetfilterQueueCounter) -> UInt64 {
        get { counts[counter] }
        set { counts[counter] = newValue }
    }

    /// Sums the counts; the last error fields keep the first ones that have an error.
    public mutating func add(_ other: NetfilterQueueStatistics) {
        counts.add(other.counts)
        if lastNetlinkErrno == 0 {
            lastNetlinkErrno = other.lastNetlinkErrno
            lastErrorPacketID = other.lastErrorPacketID
        }
    }
}
