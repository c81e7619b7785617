import CounterSet

// Counters of the packet loop itself (the core keeps its own): one per verdict and one per
// reason a packet never reached the core.

typealias EngineCounters = CounterSet<EngineCounter>

enum EngineCounter: Int, CounterName {
    case packetsReceived
    case verdictAccept
    case verdictAcceptRewritten
    case verdictDrop
    /// Larger than the copy range: cannot be rewritten, so dropped rather than leaked.
    case truncatedDropped
    /// Not IPv4 by the hardware protocol (VLAN or PPPoE frames that br_netfilter queues, a
    /// foreign rule): dropped, as passing them would send them out untranslated.
    case notIPv4Dropped
    /// Queued at a hook our rules do not use: dropped, for the same reason.
    case unexpectedHookDropped
    /// Verdicts the kernel answered with NLMSG_ERROR.
    case refusedVerdicts
    case batches
    /// `--busy-poll`: batches found by polling after the last one, without sleeping.
    case busyPolledBatches
    /// HA standby (Engine-HA.swift): outbound packets and inbound ones to the WAN address
    /// dropped (the active translates them), others passed to the router's own stack.
    case standbyDropped
    case standbyPassed
}
