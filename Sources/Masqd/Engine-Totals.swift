import NATCore
import NetfilterQueue

// The workers' counters added up, for `masqd stats` and the metrics page. Read with the
// lock held (the workers change them under it).

extension Engine {
    var counters: EngineCounters {
        workers.reduce(into: EngineCounters()) { $0.add($1.counters) }
    }

    var residence: LatencyHistogram {
        workers.reduce(into: LatencyHistogram()) { $0.add($1.residence) }
    }

    var costPerPacket: LatencyHistogram {
        workers.reduce(into: LatencyHistogram()) { $0.add($1.costPerPacket) }
    }

    var fragmentCounters: FragmentCounters {
        workers.reduce(into: FragmentCounters()) { $0.add($1.reassembler.counters) }
    }

    /// Each worker reassembles on its own, within its own caps.
    var fragmentBytesMax: Int {
        workers.reduce(0) { $0 + $1.reassembler.limits.maxBytes }
    }

    var queueStatistics: NetfilterQueueStatistics {
        workers.reduce(into: NetfilterQueueStatistics()) { $0.add($1.queueStatistics) }
    }
}

extension EngineCounters {
    mutating func add(_ other: EngineCounters) {
        packetsReceived &+= other.packetsReceived
        verdictAccept &+= other.verdictAccept
        verdictAcceptRewritten &+= other.verdictAcceptRewritten
        verdictDrop &+= other.verdictDrop
        truncatedDropped &+= other.truncatedDropped
        notIPv4Dropped &+= other.notIPv4Dropped
        unexpectedHookDropped &+= other.unexpectedHookDropped
        refusedVerdicts &+= other.refusedVerdicts
        batches &+= other.batches
        standbyDropped &+= other.standbyDropped
        standbyPassed &+= other.standbyPassed
    }
}

extension FragmentCounters {
    mutating func add(_ other: FragmentCounters) {
        fragmentsOffered &+= other.fragmentsOffered
        datagramsCompleted &+= other.datagramsCompleted
        datagramsDiscarded &+= other.datagramsDiscarded
        heldFragmentsDropped &+= other.heldFragmentsDropped
        fragmentsHeld += other.fragmentsHeld
        bytesHeld += other.bytesHeld
        datagramsInProgress += other.datagramsInProgress
        for reason in FragmentDropReason.allCases {
            self[reason] &+= other[reason]
        }
    }
}

extension NetfilterQueueStatistics {
    /// Sums the counts; the last error fields keep the first worker's that has one.
    mutating func add(_ other: NetfilterQueueStatistics) {
        packetsReceived += other.packetsReceived
        verdictsSent += other.verdictsSent
        verdictMessagesSent += other.verdictMessagesSent
        netlinkErrors += other.netlinkErrors
        if lastNetlinkErrno == 0 {
            lastNetlinkErrno = other.lastNetlinkErrno
            lastErrorPacketID = other.lastErrorPacketID
        }
        receiveOverruns += other.receiveOverruns
        truncatedPackets += other.truncatedPackets
        refusedVerdictOverflows += other.refusedVerdictOverflows
        oversizedVerdictPayloads += other.oversizedVerdictPayloads
        verdictsLost += other.verdictsLost
        malformedMessages += other.malformedMessages
        packetsDroppedByBinding += other.packetsDroppedByBinding
    }
}
