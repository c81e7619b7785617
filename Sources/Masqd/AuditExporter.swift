import Glibc
import Logging
import NATCore
import CounterSet

// Where NAT events go after the translator: journal lines (--audit-log) and IPFIX messages
// (--ipfix-collector), written by a thread of their own so that a slow journal or network
// never holds up a packet. The packet workers (after each batch) and the main loop (each
// wake-up) move the translator's events into `queue` under the engine lock — a copy, never
// a wait; this thread takes them out under the same lock every `interval`, then formats and
// sends with the lock released. `queue` is bounded: events that find it full are dropped
// and counted (`audit_queue_dropped`), as are the translator's own losses (`nat_events_lost`).

final class AuditExporter: @unchecked Sendable {
    typealias Counters = CounterSet<Counter>

    enum Counter: Int, CounterName {
        /// Events that found the queue full: neither logged nor exported.
        case queueDropped
        case journalLines
        case ipfixMessages
        case ipfixRecords
        /// Messages with the template set (the first, then one every `templateInterval`).
        case ipfixTemplates
        /// Messages the kernel would not send (the collector unreachable, a full socket buffer): lost.
        case ipfixSendErrors
    }

    /// 2 MiB of events: about a second of new flows at 30000 per second with both kinds.
    static let queueCapacity = 65536
    /// The translator's own ring: emptied after every batch, so it only needs to hold one
    /// batch's events and a sweep's (4096 sessions and their mappings), or most of a WAN flush.
    static let translatorRingCapacity = 65536
    static let interval = NATDuration(nanoseconds: 20_000_000)
    static let templateInterval = NATDuration.seconds(60)

    let settings: AuditSettings
    let lock: EngineLock
    let logger: Logger

    // Under `lock`.
    @exclusivity(unchecked) private var queue = NATEventRing()
    @exclusivity(unchecked) private(set) var counters = Counters()
    @exclusivity(unchecked) private var finishing = false

    // This thread's own.
    private var encoder: IPFIXEncoder?
    /// Not connected: at boot the collector may have no route yet; each send tries anew
    /// (and a failure is counted), and sends never block (MSG_DONTWAIT).
    private let socketDescriptor: Int32
    private var collectorAddress = sockaddr_in()
    private var lastTemplates: NATTime? = nil
    private var loggedSendError = false

    init(settings: AuditSettings, lock: EngineLock, logger: Logger) throws(MasqdError) {
        self.settings = settings
        self.lock = lock
        self.logger = logger
        queue.allocate(capacity: Self.queueCapacity)
        guard let ipfix = settings.ipfix else {
            socketDescriptor = -1
            return
        }
        encoder = IPFIXEncoder(domainID: ipfix.domainID)
        collectorAddress.sin_family = sa_family_t(AF_INET)
        collectorAddress.sin_port = ipfix.collector.port.bigEndian
        collectorAddress.sin_addr.s_addr = ipfix.collector.address.value.bigEndian
        socketDescriptor = socket(AF_INET, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard socketDescriptor >= 0 else {
            throw .option("--ipfix-collector", "\(ipfix.collector)", "cannot open a UDP socket: \(String(cString: strerror(errno)))")
        }
    }

    deinit {
        if socketDescriptor >= 0 { close(socketDescriptor) }
    }

    /// Moves the translator's waiting events into the queue. Call with `lock` held.
    @inline(__always)
    func take(from translator: NATTranslator) {
        guard translator.eventsWaiting > 0 else { return }
        counters[.queueDropped] &+= UInt64(translator.moveEvents(into: &queue))
    }

    /// Events still waiting in the queue (with `lock` held).
    var waiting: Int { queue.count }

    /// Makes `run` return after one last round (call with `lock` held, after the last `take`).
    func finish() { finishing = true }

    /// The thread's loop: every `interval`, take what is queued and write it out.
    func run() {
        var pending: [NATEvent] = []
        pending.reserveCapacity(Self.queueCapacity)
        var done = false
        var published = Counters()
        while !done {
            var pause = timespec(tv_sec: 0, tv_nsec: Int(Self.interval.nanoseconds))
            nanosleep(&pause, nil)
            pending.removeAll(keepingCapacity: true)
            lock.withLock {
                counters.add(published)
                queue.drain { if settings.journals($0.kind) || settings.exports($0.kind) { pending.append($0) } }
                done = finishing
            }
            published = write(pending)
        }
        lock.withLock { counters.add(published) }
    }

    /// Journal lines and IPFIX messages for `events`; returns what it did, to be counted.
    private func write(_ events: [NATEvent]) -> Counters {
        var done = Counters()
        let now = MonotonicClock.now()
        var wall = timespec()
        clock_gettime(CLOCK_REALTIME, &wall)
        let wallMilliseconds = UInt64(wall.tv_sec) &* 1000 &+ UInt64(wall.tv_nsec / 1_000_000)
        // The event's monotonic time on the wall clock, as of now.
        func milliseconds(_ event: NATEvent) -> UInt64 {
            wallMilliseconds &- now.nanoseconds.subtractingReportingOverflow(event.timeNanoseconds).partialValue / 1_000_000
        }
        if settings.journal != nil {
            for event in events where settings.journals(event.kind) {
                logger.info("\(AuditLine.text(event, milliseconds: milliseconds(event)))")
                done[.journalLines] &+= 1
            }
        }
        if encoder != nil {
            let templates = lastTemplates.map { now.duration(since: $0) >= Self.templateInterval } ?? true
            guard templates || !events.isEmpty else { return done }
            if templates { lastTemplates = now }
            let records = events.lazy.filter { self.settings.exports($0.kind) }
                .map { IPFIXEncoder.Record(event: $0, milliseconds: milliseconds($0)) }
            let messages = encoder!.messages(records, exportTime: UInt32(truncatingIfNeeded: wall.tv_sec), templates: templates)
            if templates { done[.ipfixTemplates] &+= 1 }
            for message in messages {
                let sent = message.bytes.withUnsafeBytes { bytes in
                    withUnsafePointer(to: &collectorAddress) {
                        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                            sendto(socketDescriptor, bytes.baseAddress, bytes.count, Int32(MSG_DONTWAIT), $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                        }
                    }
                }
                if sent == message.bytes.count {
                    done[.ipfixMessages] &+= 1
                    done[.ipfixRecords] &+= UInt64(message.records)
                } else {
                    done[.ipfixSendErrors] &+= 1
                    if !loggedSendError {
                        loggedSendError = true
                        logger.warning("IPFIX: cannot send to \(settings.ipfix!.collector): \(String(cString: strerror(errno))); further failures are only counted (ipfix_send_errors)")
                    }
                }
            }
        }
        return done
    }
}
