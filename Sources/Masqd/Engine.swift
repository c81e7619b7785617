import Glibc
import Logging
import NATCore
import NetfilterQueue

// The engine: one worker thread per queue (QueueWorker) translating packets with one shared
// translator, and the main loop on the calling thread for everything else — the control
// socket, WAN address changes, the expiry sweep — all of it under the same lock.

public final class Engine {
    let settings: EngineSettings
    let logger: Logger
    let translator: NATTranslator
    /// Held by whoever touches `translator` or a worker's state: a worker for a batch, the
    /// main loop for housekeeping and control requests. Use `withTranslator`.
    let translatorLock = EngineLock()
    let workers: [QueueWorker]
    let control: ControlServer
    let addressMonitor: InterfaceAddressMonitor
    /// SIGHUP reloads (Engine-Reload.swift) and the Prometheus endpoint (Engine-Metrics.swift): main loop only.
    var reloading = ReloadState()
    var metricsServer: MetricsServer?
    var lastSweep = NATTime(nanoseconds: 0)
    /// --state-file: saved at stop and in checkpoints, restored at start (Engine-State.swift).
    var stateKeeping = StateKeeping()
    /// The router's own ports, refreshed from the main loop (Engine-LocalPorts.swift).
    var localPortsState = LocalPortsState()
    /// NAT events to the journal and IPFIX (Engine-Audit.swift); nil without a consumer.
    let audit: AuditExporter?
    /// The HA role and the sync channel (Engine-HA.swift).
    var ha = HAState()
    /// --fast-path: the kernel fast path (Engine-FastPath.swift); nil when off.
    let fastPath: FastPath?
    /// Where the translator's NAT events go: the fast path and the audit exporter (NATEventSinks.swift).
    let eventSinks: NATEventSinks
    /// The router's interface addresses for --redirect (Engine-Redirect.swift).
    var redirectState = RedirectState()
    static let sweepInterval = NATDuration(nanoseconds: 10_000_000)
    static let sweepBudget = 4096
    /// With no more sessions than one sweep examines and nothing else to service (fast path,
    /// audit, HA), the main loop wakes every 100 ms instead of every 10 ms: a second thread
    /// waking 100 times a second put the worker's ping-pong p50 ~5 µs further from nfq_echo's
    /// (issue #21: README, Performance). Timeouts are seconds; expiry is at most 0.1 s later.
    static let idleSweepInterval = NATDuration(nanoseconds: 100_000_000)
    /// The current one of the two, chosen after each sweep.
    var housekeepingInterval = Engine.sweepInterval

    public init(settings: EngineSettings, logger: Logger) throws(MasqdError) {
        self.settings = settings
        self.logger = logger
        // The WAN interface may appear later (PPP, a modem): the address monitor follows its
        // appearance like any address change, and until then nothing leaves through it.
        if !InterfaceAddressMonitor.interfaceExists(settings.wanInterface) {
            logger.notice("WAN \(settings.wanInterface) does not exist yet; waiting for it")
        }
        var configuration = settings.nat
        configuration.externalAddress = Engine.wanAddress(settings)
        var random = SystemRandomNumberGenerator()
        configuration.hashSeed = random.next()
        translator = NATTranslator(configuration: configuration)
        audit = try Engine.makeAuditExporter(settings, translator: translator, lock: translatorLock, logger: logger)
        fastPath = try Engine.makeFastPath(settings, translator: translator, logger: logger)
        eventSinks = NATEventSinks(fastPath: fastPath, sync: Engine.makeSyncEvents(settings, translator: translator), audit: audit)
        // The router's ports first: a saved mapping on one of them is not restored.
        let local = Engine.readLocalPorts(address: configuration.externalAddress, reserve: settings.reserveLocalPortRange)
        translator.setLocalPorts(local.reading.held, reserved: local.reserved)
        if let problem = Engine.portRangeProblem(settings, reserved: local.reserved) { throw problem }
        // Before any queue is bound: no packet is translated without the restored state.
        stateKeeping = try Engine.restoreState(settings, into: translator, logger: logger)

        let wanIndex = if_nametoindex(settings.wanInterface)
        var workers: [QueueWorker] = []
        for queueNumber in settings.queueNumbers {
            workers.append(try QueueWorker(queueNumber: queueNumber, failOpen: settings.failOpen, translator: translator, lock: translatorLock,
                                           wanIndex: wanIndex, hashSeed: random.next(),
                                           busyPoll: NATDuration(nanoseconds: UInt64(settings.busyPollMicroseconds) * 1000), logger: logger))
            workers.last!.events = eventSinks
        }
        self.workers = workers
        ha = try Engine.startHA(settings, events: eventSinks.sync)
        if settings.role == .standby {
            // A standby translates nothing: flows from a state file (decoded, not imported) are
            // the active's to translate now. They are its copy of the peer's state until the
            // peer's first resync (a standby's file is that copy, saved), so a takeover before
            // one still has them.
            if let copy = stateKeeping.standbyCopy {
                ha.replica = NATReplica(copy)
                stateKeeping.standbyCopy = nil
                let saved = copy.sessionCount + copy.addressOnlyFlowCount + copy.redirectCount
                logger.notice("standby: the \(saved) flows of the state file are the copy of the peer's state until its first resync")
            }
            for worker in workers { worker.standby = true }
        }
        control = try ControlServer(path: settings.controlPath)
        if let endpoint = settings.metrics { metricsServer = try MetricsServer(endpoint: endpoint) }
        do {
            addressMonitor = try InterfaceAddressMonitor(interfaceName: settings.wanInterface)
        } catch {
            throw .option("--wan", settings.wanInterface, "cannot watch its addresses: \(error)")
        }
        try fastPath?.attach()
    }

    /// Runs until SIGINT or SIGTERM. Every packet received gets its verdict before this returns.
    public func run() throws(MasqdError) {
        StopSignal.install()
        ReloadSignal.install()
        // The address was read in init, before the monitor subscribed: one that appeared in
        // between (DHCP at boot) would otherwise never be seen. Re-read it now.
        followAddressChange()
        refreshLocalPorts(now: MonotonicClock.now(), force: true)
        refreshInterfaceAddresses(now: MonotonicClock.now(), force: true)
        let external = translator.configuration.externalAddress.map { "\($0)" } ?? "none yet"
        let lan = settings.internalPrefixes.isEmpty ? "every non-local source" : settings.internalPrefixes.map(\.description).joined(separator: ", ")
        let queues = settings.queueCount > 1 ? "queues \(settings.queue)-\(settings.queue + settings.queueCount - 1) (one worker each)" : "queue \(settings.queue)"
        logger.info("masqd running: \(queues), WAN \(settings.wanInterface) (\(external)), LAN \(lan), control \(settings.controlPath)")
        for registration in settings.nat.helpers {
            logger.info("helper \(registration.helper.name) on port(s) \(registration.ports.map(\.description).joined(separator: ","))")
        }
        if let description = auditDescription() { logger.info("\(description)") }
        if let description = fastPathDescription() { logger.info("\(description)") }
        var auditThread: WorkerThread?
        if let audit { auditThread = try WorkerThread(name: "masqd-audit") { audit.run() } }

        var threads: [WorkerThread] = []
        for (index, worker) in workers.enumerated() {
            do {
                let name = "masqd-q\(worker.queue.configuration.queueNumber)"
                threads.append(try WorkerThread(name: name) { worker.run() })
                if !settings.workerCPUs.isEmpty {
                    let cpu = settings.workerCPUs[index % settings.workerCPUs.count]
                    try threads[index].pin(to: cpu, name: name)
                    logger.info("\(name) pinned to CPU \(cpu)")
                }
            } catch {
                StopSignal.request()
                threads.forEach { $0.join() }
                throw error
            }
        }
        // The address monitor first; the control server's and the metrics server's
        // descriptors follow, renewed each round.
        var fds = [pollfd(fd: addressMonitor.fileDescriptor, events: Int16(POLLIN), revents: 0)]
        while !StopSignal.isRequested {
            fds.removeSubrange(1...)
            control.addPollEntries(to: &fds)
            let metricsEntries = fds.count
            addMetricsPollEntries(&fds, from: metricsEntries)
            let syncEntry = fds.count
            if let socket = ha.socket { fds.append(pollfd(fd: socket.fileDescriptor, events: Int16(POLLIN), revents: 0)) }
            // Wakes at least every sweep interval: expiry runs on a clock, not on traffic.
            let ready = poll(&fds, nfds_t(fds.count), Int32(housekeepingInterval.nanoseconds / 1_000_000))
            let now = MonotonicClock.now()
            if ready > 0, fds[0].revents != 0, addressMonitor.drainEvents() { followAddressChange() }
            control.serve(fds[1..<metricsEntries], now: now) { request in respond(to: request) }
            serveMetrics(fds[metricsEntries..<syncEntry], now: now)
            serveSync(readable: ready > 0 && syncEntry < fds.count && fds[syncEntry].revents != 0, now: now)
            reloadIfRequested()
            // 4096 rows every 10 ms walks the default 262144-row table in under a second.
            if now.duration(since: lastSweep) >= housekeepingInterval {
                lastSweep = now
                let servicing = fastPath != nil || audit != nil || ha.socket != nil
                housekeepingInterval = withTranslator { translator in
                    translator.expire(now: now, budget: Engine.sweepBudget)
                    return servicing || translator.sessionCount > Engine.sweepBudget ? Engine.sweepInterval : Engine.idleSweepInterval
                }
            }
            checkpointIfDue(now: now)
            refreshLocalPorts(now: now)
            takeAuditEvents()
            fastPath?.service(translator, lock: translatorLock, now: now)
            refreshInterfaceAddresses(now: now)
        }
        // The workers give every packet still queued its verdict before they end.
        threads.forEach { $0.join() }
        fastPath?.stop(translator, lock: translatorLock, now: MonotonicClock.now())
        saveStateAtStop()
        if let audit {
            withTranslator { audit.take(from: $0); audit.finish() }
            auditThread?.join()
        }
        let total = withTranslator { _ in counters[.packetsReceived] }
        logger.info("masqd stopping: \(total) packets handled")
        if let failure = withTranslator({ _ in workers.lazy.compactMap(\.failure).first }) { throw failure }
    }

    func followAddressChange() {
        let wanIndex = if_nametoindex(settings.wanInterface)
        let address = Engine.wanAddress(settings)
        let flushed: Int? = withTranslator { translator in
            for worker in workers { worker.wanIndex = wanIndex }
            guard address != translator.configuration.externalAddress else { return nil }
            let flushed = translator.sessionCount
            translator.setExternalAddress(address, now: MonotonicClock.now())
            restorePendingState(into: translator)
            return flushed
        }
        guard let flushed else { return }
        refreshLocalPorts(now: MonotonicClock.now(), force: true) // sockets on the new address are the router's now
        logger.notice("WAN \(settings.wanInterface) address is now \(address.map { "\($0)" } ?? "none"); flushed \(flushed) translations made with the old address")
    }

    /// The external address: --virtual-address (a VRRP virtual address, held or not), else --wan's first primary one.
    static func wanAddress(_ settings: EngineSettings) -> IPv4Address? {
        settings.virtualAddress ?? InterfaceAddressMonitor.currentIPv4Address(interfaceName: settings.wanInterface).map(IPv4Address.init)
    }

    /// Runs `body` with the translation state locked (main-loop code outside packet handling).
    @inline(__always) @discardableResult
    func withTranslator<T, E: Error>(_ body: (NATTranslator) throws(E) -> T) throws(E) -> T {
        try translatorLock.withLock { () throws(E) -> T in try body(translator) }
    }
}
