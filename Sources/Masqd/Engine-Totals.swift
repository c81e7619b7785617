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
