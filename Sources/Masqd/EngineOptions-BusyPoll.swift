// `--busy-poll MICROSECONDS`: after each batch the packet worker keeps asking the queue for
// the next one without sleeping, for up to this long, before it blocks (issue #21). A sleeping
// worker is woken by the kernel when a packet is queued; on a VM whose idle vCPUs halt (this
// one boots with haltpoll.guest_halt_poll_ns=0) that wake-up can cost more than the engine's
// whole work. Spinning keeps the worker's vCPU running while packets keep coming, at the
// price of a CPU busy for up to MICROSECONDS after every packet. Off (0) by default.

extension EngineOptions {
    /// The longest spin accepted: beyond a millisecond a gap between packets is an idle link.
    static let busyPollLimitMicroseconds = 1000

    func checkedBusyPoll() throws(MasqdError) -> Int {
        guard let busyPoll else { return 0 }
        guard let microseconds = Int(busyPoll), (0...Self.busyPollLimitMicroseconds).contains(microseconds) else {
            throw .option("--busy-poll", busyPoll, "expected microseconds from 0 (off) to \(Self.busyPollLimitMicroseconds)")
        }
        return microseconds
    }
}
