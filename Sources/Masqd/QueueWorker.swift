import Glibc
import Logging
import NATCore
import NetfilterQueue

// One queue's packet loop, on a thread of its own: receive a batch, translate it in place
// with the shared translator (under the engine's lock), send all its verdicts in one message.
// Fragments are reassembled per worker: --queue-balance hashes the address pair, so every
// fragment of a datagram reaches the same queue.
//
// Thread rules: `queue` is used by this worker's thread only. Everything else that changes
// (translator, reassembler, counters, histograms, `wanIndex`, `queueStatistics`) is touched
// only with `lock` held, by this worker or by the main loop (reports, address changes).
// The lock is what keeps them apart, so the per-access exclusivity bookkeeping is switched
// off for the fields the packet loop touches every batch.

final class QueueWorker: @unchecked Sendable {
    let queue: NetfilterQueue
    let translator: NATTranslator
    let lock: EngineLock
    let logger: Logger
    let reassembler: FragmentReassembler
    /// The WAN interface's index: a packet queued before routing came in from the WAN if it
    /// arrived on it, else from inside (a hairpin candidate). Set by the main loop.
    @exclusivity(unchecked) var wanIndex: UInt32
    @exclusivity(unchecked) var counters = EngineCounters()
    /// HA standby: translate nothing (QueueWorker-Standby.swift). Set by the main loop.
    @exclusivity(unchecked) var standby = false
    /// Receive-to-verdict-sent time of each packet (its batch's time, the verdict send
    /// included), and the worker's own cost per packet (translation time / batch size).
    @exclusivity(unchecked) var residence = LatencyHistogram()
    @exclusivity(unchecked) var costPerPacket = LatencyHistogram()
    /// The queue's statistics as of the last batch (the queue itself is this thread's only).
    @exclusivity(unchecked) var queueStatistics = NetfilterQueueStatistics()
    var loggedRefusal = false
    /// Takes the batch's NAT events (NATEventSinks.swift); empty without a consumer.
    var events = NATEventSinks()
    /// Why the worker stopped early (a receive or send the kernel refused outright).
    var failure: MasqdError?
    /// `--busy-poll`: how long to keep polling the queue after a batch before sleeping.
    let busyPoll: NATDuration
    /// When the last batch's verdicts left: where a busy poll's time starts.
    @exclusivity(unchecked) private var lastVerdictsSent = NATTime(nanoseconds: 0)
    @exclusivity(unchecked) private var lastFragmentSweep = NATTime(nanoseconds: 0)
    static let fragmentSweepInterval = NATDuration(nanoseconds: 10_000_000)

    init(queueNumber: UInt16, failOpen: Bool, translator: NATTranslator, lock: EngineLock, wanIndex: UInt32, hashSeed: UInt64,
         busyPoll: NATDuration, logger: Logger) throws(MasqdError) {
        var configuration = NetfilterQueueConfiguration(queueNumber: queueNumber)
        configuration.failOpen = failOpen
        do {
            queue = try NetfilterQueue(configuration: configuration)
        } catch {
            throw MasqdError(error.description)
        }
        self.translator = translator
        self.lock = lock
        self.wanIndex = wanIndex
        self.busyPoll = busyPoll
        self.logger = logger
        reassembler = FragmentReassembler(hashSeed: hashSeed)
    }

    /// Runs until a stop is requested, then gives every packet still queued its verdict:
    /// those waiting in the kernel are taken and translated, held fragments are dropped.
    func run() {
        do throws(MasqdError) {
            while !StopSignal.isRequested {
                // The last batch's clock read serves the sweep: one clock read less per wake-up.
                let last = try processBatches(waitMilliseconds: 100)
                sweepFragments(now: last ?? MonotonicClock.now())
            }
            try processBatches(waitMilliseconds: 0)
        } catch {
            lock.withLock { failure = error }
            StopSignal.request()
        }
        lock.withLock { reassembler.removeAll { dropHeld($0) } }
        try? queue.flushVerdicts()
    }

    /// Waits for a batch, then takes batches until the queue is empty (at most 64 in a row,
    /// so the fragment sweep and the stop flag are seen). Returns the time the last batch's
    /// verdicts were sent, nil when there was none.
    @discardableResult
    func processBatches(waitMilliseconds: Int32) throws(MasqdError) -> NATTime? {
        var wait = waitMilliseconds
        var last: NATTime? = nil
        for _ in 0..<64 {
            var polled = false
            let count: Int
            do {
                if wait != 0, busyPoll.nanoseconds > 0 {
                    count = try pollThenWait(waitMilliseconds: wait, polled: &polled)
                } else {
                    count = try queue.receive(timeoutMilliseconds: wait)
                }
            } catch {
                throw MasqdError(error.description)
            }
            wait = 0
            if count == 0 { return last }
            let started = MonotonicClock.now()
            lock.withLock {
                counters[.batches] &+= 1
                if polled { counters[.busyPolledBatches] &+= 1 }
                for index in 0..<count {
                    handle(queue.packet(at: index), now: started)
                }
                events.take(from: translator)
            }
            // The worker's own work ends here; the verdict send that follows also carries each
            // packet through the rest of the kernel path (routing, the veth peer, …) inline.
            let translated = MonotonicClock.now()
            do {
                try queue.flushVerdicts()
            } catch {
                throw MasqdError(error.description)
            }
            let sent = MonotonicClock.now()
            last = sent
            lastVerdictsSent = sent
            lock.withLock {
                residence.record(sent.duration(since: started).nanoseconds, count: UInt64(count))
                costPerPacket.record(translated.duration(since: started).nanoseconds / UInt64(count), count: UInt64(count))
                queue.drainRefusedVerdicts { packetID, error in
                    counters[.refusedVerdicts] &+= 1
                    if !loggedRefusal {
                        loggedRefusal = true
                        logger.error("the kernel refused a verdict (queue \(queue.configuration.queueNumber), packet \(packetID)): \(String(cString: strerror(error))); further refusals are only counted")
                    }
                }
                queueStatistics = queue.statistics
            }
            // A short batch ends the call either way: the caller sees the stop flag and sweeps
            // fragments, and with --busy-poll its next call polls first (from lastVerdictsSent).
            if count < queue.configuration.batchSize { return last }
        }
        return last
    }

    /// `--busy-poll`: asks the queue without sleeping until `busyPoll` has passed since the
    /// last batch's verdicts left, then waits as usual. `polled` says the batch came from a poll.
    private func pollThenWait(waitMilliseconds: Int32, polled: inout Bool) throws(NetfilterQueueError) -> Int {
        let deadline = lastVerdictsSent + busyPoll
        while MonotonicClock.now() < deadline, !StopSignal.isRequested {
            let count = try queue.receive(timeoutMilliseconds: 0)
            if count > 0 {
                polled = true
                return count
            }
        }
        return try queue.receive(timeoutMilliseconds: waitMilliseconds)
    }

    /// Drops the fragments of datagrams that timed out (on a clock, not per batch).
    func sweepFragments(now: NATTime) {
        guard now.duration(since: lastFragmentSweep) >= Self.fragmentSweepInterval else { return }
        lastFragmentSweep = now
        lock.withLock { reassembler.expire(now: now, budget: 64) { dropHeld($0) } }
        try? queue.flushVerdicts()
    }
}
