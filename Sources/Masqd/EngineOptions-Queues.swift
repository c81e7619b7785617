// `--queues A-B`: several queues, one worker thread each. The kernel's --queue-balance spreads
// flows over them by address pair (KERNEL-FACTS), so the two directions of one NATed flow
// usually land on different workers: they share one translation state under a lock.

extension EngineOptions {
    /// More workers than this only contend for the one lock.
    static let maxQueues = 64

    func checkedQueueRange(single: UInt16) throws(MasqdError) -> ClosedRange<UInt16> {
        guard let queues else { return single...single }
        if queue != nil {
            throw .option("--queues", queues, "give either --queue or --queues, not both")
        }
        let bounds = queues.split(separator: "-", omittingEmptySubsequences: false)
        guard bounds.count == 2, let first = UInt16(bounds[0]), let last = UInt16(bounds[1]) else {
            throw .option("--queues", queues, "not a queue range A-B (0-65535)")
        }
        guard first <= last else { throw .option("--queues", queues, "the range is empty (A > B)") }
        guard Int(last) - Int(first) + 1 <= Self.maxQueues else {
            throw .option("--queues", queues, "more than \(Self.maxQueues) queues")
        }
        return first...last
    }
}
