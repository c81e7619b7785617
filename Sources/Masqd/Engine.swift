import Glibc
import Logging
import NATCore
import NetfilterQueue

// The engine: one packet loop on one thread that owns the queue, the translator and the
// control socket. Each wake-up takes a batch of packets, translates them in place in the
// receive buffer, and sends all their verdicts in one message.

public final class Engine {
    let settings: EngineSettings
    let logger: Logger
    let queue: NetfilterQueue
    let translator: NATTranslator
    let reassembler: FragmentReassembler
    let control: ControlServer
    let addressMonitor: InterfaceAddressMonitor
    var counters = EngineCounters()
    /// Receive-to-verdict-sent time of each packet (its batch's time, the verdict send
    /// included), and the engine's own cost per packet (translation time / batch size).
    var residence = LatencyHistogram()
    var costPerPacket = LatencyHistogram()
    var loggedRefusal = false
    var lastSweep = NATTime(nanoseconds: 0)
    static let sweepInterval = NATDuration(nanoseconds: 10_000_000)
    /// The WAN interface's index: a packet queued before routing came in from the WAN if it
    /// arrived on it, else from inside (a hairpin candidate).
    var wanIndex: UInt32 = 0

    public init(settings: EngineSettings, logger: Logger) throws(MasqdError) {
        self.settings = settings
        self.logger = logger
        try SteeringRules.checkInterface(settings.wanInterface)
        var configuration = settings.nat
        configuration.externalAddress = InterfaceAddressMonitor.currentIPv4Address(interfaceName: settings.wanInterface).map(IPv4Address.init)
        var random = SystemRandomNumberGenerator()
        configuration.hashSeed = random.next()
        translator = NATTranslator(configuration: configuration)
        reassembler = FragmentReassembler(hashSeed: random.next())

        do {
            queue = try NetfilterQueue(configuration: NetfilterQueueConfiguration(queueNumber: settings.queue))
        } catch {
            throw MasqdError(error.description)
        }
        control = try ControlServer(path: settings.controlPath)
        wanIndex = if_nametoindex(settings.wanInterface)
        do {
            addressMonitor = try InterfaceAddressMonitor(interfaceName: settings.wanInterface)
        } catch {
            throw .option("--wan", settings.wanInterface, "cannot watch its addresses: \(error)")
        }
    }

    /// Runs until SIGINT or SIGTERM. Every packet received gets its verdict before this returns.
    public func run() throws(MasqdError) {
        StopSignal.install()
        let external = translator.configuration.externalAddress.map { "\($0)" } ?? "none yet"
        let lan = settings.internalPrefixes.isEmpty ? "every non-local source" : settings.internalPrefixes.map(\.description).joined(separator: ", ")
        logger.info("masqd running: queue \(settings.queue), WAN \(settings.wanInterface) (\(external)), LAN \(lan), control \(settings.controlPath)")
        for registration in settings.nat.helpers {
            logger.info("helper \(registration.helper.name) on TCP port(s) \(registration.ports.map(String.init).joined(separator: ","))")
        }

        var fds = [
            pollfd(fd: queue.fileDescriptor, events: Int16(POLLIN), revents: 0),
            pollfd(fd: control.fileDescriptor, events: Int16(POLLIN), revents: 0),
            pollfd(fd: addressMonitor.fileDescriptor, events: Int16(POLLIN), revents: 0),
        ]
        while !StopSignal.isRequested {
            let ready = poll(&fds, nfds_t(fds.count), 100)
            let now = MonotonicClock.now()
            if ready > 0 {
                if fds[0].revents != 0 { try processBatches(now: now) }
                if fds[2].revents != 0, addressMonitor.drainEvents() { followAddressChange() }
                if fds[1].revents != 0 { control.serve { respond(to: $0) } }
            }
            // Housekeeping on a clock, not on every wake-up: a busy queue must not pay a sweep
            // per batch (it showed in ping-pong latency). 4096 rows every 10 ms walks the
            // default 262144-row table in under a second.
            if now.duration(since: lastSweep) >= Engine.sweepInterval {
                lastSweep = now
                translator.expire(now: now, budget: 4096)
                reassembler.expire(now: now, budget: 64) { dropHeld($0) }
            }
        }
        // Held fragments get their verdict too: no packet is left in the kernel queue.
        reassembler.removeAll { dropHeld($0) }
        try? queue.flushVerdicts()
        logger.info("masqd stopping: \(counters.packetsReceived) packets handled")
    }

    /// Takes batches until the queue is empty (bounded, so the control socket is not starved).
    func processBatches(now: NATTime) throws(MasqdError) {
        for _ in 0..<64 {
            let count: Int
            do {
                count = try queue.receive(timeoutMilliseconds: 0)
            } catch {
                throw MasqdError(error.description)
            }
            if count == 0 { return }
            counters.batches &+= 1
            let started = MonotonicClock.now()
            for index in 0..<count {
                handle(queue.packet(at: index), now: now)
            }
            // The engine's own work ends here; the verdict send that follows also carries each
            // packet through the rest of the kernel path (routing, the veth peer, …) inline.
            let translated = MonotonicClock.now()
            do {
                try queue.flushVerdicts()
            } catch {
                throw MasqdError(error.description)
            }
            residence.record(MonotonicClock.now().duration(since: started).nanoseconds, count: UInt64(count))
            costPerPacket.record(translated.duration(since: started).nanoseconds / UInt64(count), count: UInt64(count))
            queue.drainRefusedVerdicts { packetID, error in
                counters.refusedVerdicts &+= 1
                if !loggedRefusal {
                    loggedRefusal = true
                    logger.error("the kernel refused a verdict (packet \(packetID)): \(String(cString: strerror(error))); further refusals are only counted")
                }
            }
            if count < queue.configuration.batchSize { return }
        }
    }

    @inline(__always)
    func handle(_ packet: QueuedPacket, now: NATTime) {
        counters.packetsReceived &+= 1
        if packet.isTruncated {
            counters.truncatedDropped &+= 1
            verdict(packet, .drop, rewritten: false)
            return
        }
        guard packet.hardwareProtocol == 0x0800 else {
            counters.notIPv4Passed &+= 1
            verdict(packet, .accept, rewritten: false)
            return
        }
        let direction: PacketDirection
        switch packet.hook {
        case 0: direction = packet.inputInterfaceIndex == wanIndex ? .inbound : .hairpin // NF_INET_PRE_ROUTING
        case 4: direction = .outbound  // NF_INET_POST_ROUTING
        default:
            counters.unexpectedHookPassed &+= 1
            verdict(packet, .accept, rewritten: false)
            return
        }
        if Engine.isFragment(packet.payload) {
            handleFragment(packet, direction: direction, now: now)
            return
        }
        let checksum = PacketChecksumState(checksumNotReady: packet.checksumNotReady, isGSO: packet.isGSO)
        switch translator.translate(packet.payload, direction: direction, checksum: checksum, now: now) {
        case .accept: verdict(packet, .accept, rewritten: false)
        case .acceptRewritten: verdict(packet, .accept, rewritten: true)
        case .acceptReplaced(let bytes):
            counters.verdictAcceptRewritten &+= 1
            queue.setVerdict(packetID: packet.id, .accept, payload: UnsafeRawBufferPointer(bytes))
        case .drop: verdict(packet, .drop, rewritten: false)
        }
    }

    /// Fragments are held (no verdict) until their datagram is whole; then the datagram is
    /// translated and travels as the payload of its first fragment's verdict, every other
    /// fragment is dropped, and the kernel refragments on output (KERNEL-FACTS fact 5).
    func handleFragment(_ packet: QueuedPacket, direction: PacketDirection, now: NATTime) {
        let outcome = reassembler.offer(UnsafeRawBufferPointer(packet.payload), token: packet.id, now: now) { dropHeld($0) }
        switch outcome {
        case .held:
            break
        case .complete(let datagram, let acceptToken):
            // Always sent with its payload, translated or not: the other fragments are gone.
            switch translator.translate(datagram, direction: direction, checksum: PacketChecksumState(), now: now) {
            case .accept, .acceptRewritten:
                counters.verdictAcceptRewritten &+= 1
                queue.setVerdict(packetID: acceptToken, .accept, payload: UnsafeRawBufferPointer(datagram))
            case .acceptReplaced(let bytes):
                counters.verdictAcceptRewritten &+= 1
                queue.setVerdict(packetID: acceptToken, .accept, payload: UnsafeRawBufferPointer(bytes))
            case .drop:
                dropHeld(acceptToken)
            }
        case .drop:
            verdict(packet, .drop, rewritten: false)
        }
    }

    @inline(__always)
    func dropHeld(_ token: UInt32) {
        counters.verdictDrop &+= 1
        queue.setVerdict(packetID: token, .drop, payload: nil)
    }

    /// True for an IPv4 packet with MF set or a non-zero offset (malformed ones go to the translator).
    @inline(__always)
    static func isFragment(_ bytes: UnsafeMutableRawBufferPointer) -> Bool {
        guard bytes.count >= 20, bytes[0] >> 4 == 4 else { return false }
        return (UInt16(bytes[6]) << 8 | UInt16(bytes[7])) & 0x3fff != 0
    }

    @inline(__always)
    func verdict(_ packet: QueuedPacket, _ verdict: PacketVerdict, rewritten: Bool) {
        switch verdict {
        case .drop: counters.verdictDrop &+= 1
        default: if rewritten { counters.verdictAcceptRewritten &+= 1 } else { counters.verdictAccept &+= 1 }
        }
        queue.setVerdict(packetID: packet.id, verdict, payload: rewritten ? UnsafeRawBufferPointer(packet.payload) : nil)
    }

    func followAddressChange() {
        wanIndex = if_nametoindex(settings.wanInterface)
        let address = InterfaceAddressMonitor.currentIPv4Address(interfaceName: settings.wanInterface).map(IPv4Address.init)
        guard address != translator.configuration.externalAddress else { return }
        let flushed = translator.sessionCount
        translator.setExternalAddress(address)
        logger.notice("WAN \(settings.wanInterface) address is now \(address.map { "\($0)" } ?? "none"); flushed \(flushed) translations made with the old address")
    }

    func respond(to request: String) -> String {
        let words = request.split(separator: " ")
        switch words.first {
        case "stats": return statsReport()
        case "flows": return flowsReport(filters: words.dropFirst().map(String.init))
        default: return "error: unknown request '\(request)' (known: stats, flows)\n"
        }
    }
}
