// Counters of the packet loop itself (the core keeps its own): one per verdict and one per
// reason a packet never reached the core.

struct EngineCounters {
    var packetsReceived: UInt64 = 0
    var verdictAccept: UInt64 = 0
    var verdictAcceptRewritten: UInt64 = 0
    var verdictDrop: UInt64 = 0
    /// Larger than the copy range: cannot be rewritten, so dropped rather than leaked.
    var truncatedDropped: UInt64 = 0
    /// Not IPv4 by the hardware protocol (VLAN or PPPoE frames that br_netfilter queues, a
    /// foreign rule): dropped, as passing them would send them out untranslated.
    var notIPv4Dropped: UInt64 = 0
    /// Queued at a hook our rules do not use: dropped, for the same reason.
    var unexpectedHookDropped: UInt64 = 0
    /// Verdicts the kernel answered with NLMSG_ERROR.
    var refusedVerdicts: UInt64 = 0
    var batches: UInt64 = 0
    /// HA standby (Engine-HA.swift): outbound packets and inbound ones to the WAN address
    /// dropped (the active translates them), others passed to the router's own stack.
    var standbyDropped: UInt64 = 0
    var standbyPassed: UInt64 = 0
}
