import CFastPath
import Glibc
import Logging
import NATCore
import CounterSet

// The kernel fast path's daemon side (--fast-path). The core says when a plain session has
// become two-way (a `.sessionEstablished` NAT event, NATTranslator-FastPath.swift); after
// --fast-path-delay this puts the session's two map entries in (FastPathEntry.swift) and the
// BPF program translates its packets from then on, past the NFQUEUE rules. It takes them out
// when the core removes the session (its `.sessionRemoved` event) and finds them gone when
// the BPF program removed them itself (a FIN, RST or SYN, which the engine must see). Every
// `syncInterval` it reads each flow's last-seen time from the map and hands it to the core,
// which renews the session's timer: expiry never removes a live offloaded flow, and a flow
// the core no longer has (its removal event lost) is taken out of the map within a second.
// Events arrive under the engine lock (`take`, from the workers and the main loop); all the
// rest runs on the main loop, the map syscalls outside the lock.

final class FastPath {
    typealias Counters = CounterSet<Counter>

    enum Counter: Int, CounterName {
        case offloaded
        case removed
        /// Flows not offloaded because the map (--fast-path-max-flows) was full.
        case mapFull
        /// Map updates the kernel refused otherwise (logged once).
        case mapErrors
        /// Events that found the fast path's queue full: those flows stay on the engine's path
        /// (or, for removals, are taken out at the next reading).
        case eventsDropped
        /// Flows waiting out --fast-path-delay beyond --fast-path-max-flows: left on the engine's path.
        case pendingFull
        /// Packets and bytes the BPF program translated, of flows gone and (as of the last reading) live.
        case packets
        case bytes
    }

    /// An offloaded flow as of the last reading of its entries.
    struct Offload {
        var entries: FastPathEntries
        var lastSeen: UInt64 = 0
        var packets: UInt64 = 0
        var bytes: UInt64 = 0
    }

    static let syncInterval = NATDuration(nanoseconds: 1_000_000_000)
    /// The shortest udp or tcp-established timeout --fast-path accepts.
    static let shortestTimeout = NATDuration.seconds(5)
    /// Room for the events of several batches and a sweep between two main-loop rounds.
    static let queueCapacity = 65536

    let settings: FastPathSettings
    let program: FastPathProgram
    let wanIndex: UInt32
    let lanIndexes: [UInt32]
    let logger: Logger

    // Under the engine lock.
    @exclusivity(unchecked) private var queue = NATEventRing()
    @exclusivity(unchecked) private var queueDropped: UInt64 = 0

    // Main loop only.
    private var events: [NATEvent] = []
    private var pending: [(flow: NATFlow, due: NATTime)] = []
    private(set) var offloaded: [NATFlow: Offload] = [:]
    private(set) var counters = Counters()
    private var lastSync = NATTime(nanoseconds: 0)
    private var loggedMapError = false

    /// Loads the program; `attach` puts it on the interfaces.
    init(settings: FastPathSettings, wanIndex: UInt32, lanIndexes: [UInt32], logger: Logger) throws(MasqdError) {
        self.settings = settings
        self.wanIndex = wanIndex
        self.lanIndexes = lanIndexes
        self.logger = logger
        program = try FastPathProgram(settings: settings, mapEntries: UInt32(settings.maxFlows * 2))
        queue.allocate(capacity: Self.queueCapacity)
        events.reserveCapacity(Self.queueCapacity)
    }

    /// Attaches the program: the WAN's on `wanIndex`, the LAN one on each of `lanIndexes`. The
    /// engine's last step at start: one that fails earlier (its queue in use by a running
    /// engine) must not have replaced that engine's programs.
    func attach() throws(MasqdError) {
        do throws(MasqdError) {
            for (index, inbound) in [(wanIndex, true)] + lanIndexes.map({ ($0, false) }) {
                if try program.attach(ifindex: index, inbound: inbound) {
                    logger.notice("fast path: replaced masqd's tc program left on interface \(index) by an earlier run")
                }
            }
        } catch {
            detachAll()
            throw error
        }
    }

    /// Copies the translator's waiting events (engine lock held; the audit exporter, if any, takes them after).
    @inline(__always)
    func take(from translator: NATTranslator) {
        queueDropped &+= UInt64(translator.copyEvents(into: &queue))
    }

    /// Main loop, each round (the lock not held): follows the events, offloads what is due,
    /// and every `syncInterval` reads the map back.
    func service(_ translator: NATTranslator, lock: EngineLock, now: NATTime) {
        events.removeAll(keepingCapacity: true)
        lock.withLock {
            counters[.eventsDropped] &+= queueDropped
            queueDropped = 0
            queue.drain { if $0.kind == .sessionEstablished || $0.kind == .sessionRemoved { events.append($0) } }
        }
        for event in events {
            let flow = event.flow
            if event.kind == .sessionEstablished {
                guard pending.count < settings.maxFlows else {
                    counters[.pendingFull] &+= 1
                    continue
                }
                pending.append((flow, NATTime(nanoseconds: event.timeNanoseconds &+ settings.delay.nanoseconds)))
            } else if offloaded[flow] != nil {
                remove(flow)
            }
        }
        offloadDue(translator, lock: lock, now: now)
        if now.duration(since: lastSync) >= Self.syncInterval {
            lastSync = now
            sync(translator, lock: lock, now: now)
        }
    }

    /// The pending flows whose delay is over: offloaded if the core still has them live.
    /// `pending` is in event order, so due times ascend (but for workers' clocks a batch apart):
    /// the due ones are a prefix.
    private func offloadDue(_ translator: NATTranslator, lock: EngineLock, now: NATTime) {
        let dueCount = pending.prefix { $0.due <= now }.count
        guard dueCount > 0 else { return }
        var due: [(NATFlow, FastPathSessionCheck)] = []
        due.reserveCapacity(dueCount)
        lock.withLock {
            for (flow, _) in pending[..<dueCount] {
                due.append((flow, translator.fastPathCheck(flow, lastSeen: nil, now: now)))
            }
        }
        pending.removeFirst(dueCount)
        for (flow, check) in due {
            guard case .live(let external, let port) = check, offloaded[flow] == nil else { continue }
            guard offloaded.count < settings.maxFlows else {
                counters[.mapFull] &+= 1
                continue
            }
            let entries = FastPathEntries(flow, externalAddress: external, externalPort: port, wanIndex: wanIndex)
            // Inbound first: an outbound packet fast-pathed before its answer's entry exists
            // would have its answer queued to the engine, which still has the session: harmless either way.
            var rc = program.add(entries.inboundKey, entries.inboundValue)
            if rc == 0 {
                rc = program.add(entries.outboundKey, entries.outboundValue)
                if rc != 0 { program.delete(entries.inboundKey) }
            }
            switch rc {
            case 0:
                offloaded[flow] = Offload(entries: entries)
                counters[.offloaded] &+= 1
            case -E2BIG:
                counters[.mapFull] &+= 1
            default:
                counters[.mapErrors] &+= 1
                if !loggedMapError {
                    loggedMapError = true
                    logger.warning("fast path: the kernel refused a map entry: \(String(cString: strerror(-rc))); further refusals are only counted (fast_path_map_errors)")
                }
            }
        }
    }

    /// Reads every offloaded flow's entries; hands the last-seen times to the core, whose
    /// answer (or an entry the BPF program removed) takes the flow back to the engine.
    func sync(_ translator: NATTranslator, lock: EngineLock, now: NATTime) {
        guard !offloaded.isEmpty else { return }
        var readings: [(NATFlow, lastSeen: UInt64?)] = []
        readings.reserveCapacity(offloaded.count)
        for (flow, var offload) in offloaded {
            guard let outbound = program.lookup(offload.entries.outboundKey), let inbound = program.lookup(offload.entries.inboundKey) else {
                readings.append((flow, nil)) // removed behind our back (bpftool): take the other out too
                continue
            }
            let packets = outbound.packets &+ inbound.packets, bytes = outbound.bytes &+ inbound.bytes
            counters[.packets] &+= packets &- offload.packets
            counters[.bytes] &+= bytes &- offload.bytes
            offload.packets = packets
            offload.bytes = bytes
            let lastSeen = max(outbound.last_seen_ns, inbound.last_seen_ns)
            let changed = lastSeen != offload.lastSeen
            offload.lastSeen = lastSeen
            offloaded[flow] = offload
            // Closed by the BPF program (a FIN, RST or SYN): the counts are read, now out.
            readings.append((flow, outbound.closed != 0 || inbound.closed != 0 ? nil : changed ? lastSeen : 0))
        }
        var ending: [NATFlow] = []
        lock.withLock {
            for (flow, lastSeen) in readings {
                guard let lastSeen else { ending.append(flow); continue }
                let check = translator.fastPathCheck(flow, lastSeen: lastSeen == 0 ? nil : NATTime(nanoseconds: lastSeen), now: now)
                if case .live = check { continue }
                ending.append(flow)
            }
        }
        for flow in ending { remove(flow) }
    }

    /// Takes a flow's entries out (whichever are still there), its last counts kept.
    private func remove(_ flow: NATFlow) {
        guard let offload = offloaded.removeValue(forKey: flow) else { return }
        var packets: UInt64 = 0, bytes: UInt64 = 0
        for key in [offload.entries.outboundKey, offload.entries.inboundKey] {
            if let value = program.lookup(key) {
                packets &+= value.packets
                bytes &+= value.bytes
                program.delete(key)
            }
        }
        if packets > offload.packets { counters[.packets] &+= packets &- offload.packets }
        if bytes > offload.bytes { counters[.bytes] &+= bytes &- offload.bytes }
        counters[.removed] &+= 1
    }

    /// At stop: a last reading (so the saved state has the flows' times), then detach.
    func stop(_ translator: NATTranslator, lock: EngineLock, now: NATTime) {
        sync(translator, lock: lock, now: now)
        detachAll()
    }

    private func detachAll() {
        for index in [wanIndex] + lanIndexes { FastPathProgram.detach(ifindex: index) }
    }

    /// For `masqd flows`: whether a session is offloaded.
    func isOffloaded(_ flow: SessionSnapshot) -> Bool {
        offloaded[flow.flow] != nil
    }

    func metrics() -> [EngineMetric] {
        [
            .gauge("fast_path_flows_active", offloaded.count, "Flows the kernel fast path translates now (--fast-path)."),
            .gauge("fast_path_flows_max", settings.maxFlows, "Cap on flows in the fast path (--fast-path-max-flows)."),
            .counter("fast_path_flows_offloaded", counters[.offloaded], "Flows handed to the kernel fast path."),
            .counter("fast_path_flows_removed", counters[.removed], "Flows taken back from the fast path (FIN/RST/SYN seen by the BPF program, expired, flushed, ended otherwise)."),
            .counter("fast_path_map_full", counters[.mapFull], "Flows left on the engine's path because the fast path's map was full."),
            .counter("fast_path_map_errors", counters[.mapErrors], "Map entries the kernel refused for another reason: those flows stay on the engine's path."),
            .counter("fast_path_events_dropped", counters[.eventsDropped], "NAT events the fast path's queue had no room for."),
            .counter("fast_path_pending_full", counters[.pendingFull], "Flows not offloaded because more than --fast-path-max-flows were waiting out --fast-path-delay."),
            .counter("fast_path_packets", counters[.packets], "Packets the fast path translated (GSO segments one by one; live flows as of the last reading, every second)."),
            .counter("fast_path_bytes", counters[.bytes], "IP bytes the fast path translated (as fast_path_packets)."),
        ]
    }
}
