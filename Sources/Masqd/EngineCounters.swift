// Counters of the packet loop itself (the core keeps its own): one per verdict and one per
// reason a packet never reached the core.

struct EngineCounters {
    var packetsReceived: UInt64 = 0
    var verdictAccept: UInt64 = 0
    var verdictAcceptRewritten: UInt64 = 0
    var verdictDrop: UInt64 = 0
    /// Larger than the copy range: cannot be rewritten, so dropped rather than leaked.
    var truncatedDropped: UInt64 = 0
    /// Not IPv4 (the queue is bound for AF_INET; counted in case a rule says otherwise).
    var notIPv4Passed: UInt64 = 0
    /// Queued at a hook our rules do not use: passed unchanged.
    var unexpectedHookPassed: UInt64 = 0
    /// Verdicts the kernel answered with NLMSG_ERROR.
    var refusedVerdicts: UInt64 = 0
    var batches: UInt64 = 0
}
