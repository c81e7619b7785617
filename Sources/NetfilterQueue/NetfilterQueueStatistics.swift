/// Counters of one NetfilterQueue since it was opened.
public struct NetfilterQueueStatistics: Sendable, Equatable {
    /// Packets handed out by `receive()`.
    public var packetsReceived: Int = 0
    /// Verdicts sent to the kernel.
    public var verdictsSent: Int = 0
    /// sendto calls that carried verdicts.
    public var verdictMessagesSent: Int = 0
    /// NLMSG_ERROR replies with a nonzero error (refused verdicts).
    public var netlinkErrors: Int = 0
    /// errno of the most recent such reply (0 if none).
    public var lastNetlinkErrno: Int32 = 0
    /// Packet id (nlmsg_seq of the refused verdict) of the most recent such reply.
    public var lastErrorPacketID: UInt32 = 0
    /// Receives that failed with ENOBUFS (the socket overran; packets were lost to user space).
    public var receiveOverruns: Int = 0
    /// Packets received with `isTruncated`.
    public var truncatedPackets: Int = 0
    /// Refused verdicts that did not fit the ring drained by `drainRefusedVerdicts`.
    public var refusedVerdictOverflows: Int = 0
    /// Verdict payloads over 65531 bytes: the kernel cannot take them, so the packet was dropped.
    public var oversizedVerdictPayloads: Int = 0
    /// Verdicts discarded because their sendto failed.
    public var verdictsLost: Int = 0
    /// Datagrams or messages that could not be parsed (too big for a slot, no packet header).
    public var malformedMessages: Int = 0
    /// Packets dropped by the binding itself: queued while the queue was still being
    /// configured, or more packet messages in one receive than `batchSize`.
    public var packetsDroppedByBinding: Int = 0

    public init() {}
}
