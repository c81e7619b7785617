import Logging
import NATCore

// High availability (issue #18): two routers, keepalived electing which one translates.
// The active streams its whole translation state — the state file's encoding
// (NATStateSnapshot), cut into chunks — to the standby over the sync channel (Sync/) when
// the standby (re)connects or asks, when increments cannot bring it up to date, and every
// --sync-interval; between those it streams increments: the translator's NAT events
// (mappings and sessions created, established, removed; SyncEventQueue.swift), in numbered
// batches. The standby keeps the latest resync with the increments applied (NATReplica) and
// translates nothing (QueueWorker-Standby.swift). `masqd role active` (keepalived's notify
// master) installs that copy as a restart with a state file does: every mapping keeps its
// external address and port, so the new active's port allocation cannot clash with a live
// flow. `masqd role standby` (notify backup/fault) drops the router's own flows: the peer
// translates them now, from the state this router sent it.

/// The role and the sync channel; main loop only (the workers' `standby` flags under the lock).
struct HAState {
    var role: RouterRole = .active
    var session: SyncSession?
    var socket: SyncSocket?
    /// The standby's copy of the peer's state: the latest full resync, increments applied.
    var replica: NATReplica?
    /// The translator's events for the increments (nil without --sync-*).
    var events: SyncEventQueue?
    /// The increments of the events taken this round (kept: its capacity is reused).
    var taken: [SyncIncrement] = []
    var roleChanges: UInt64 = 0
    /// Flows installed from the replicated state at the last `role active`.
    var lastTakeover = NATStateRestoreSummary()
    var takeoversWithoutState: UInt64 = 0
    var takeoverRefused: UInt64 = 0

    /// Chunks of the largest snapshot the table caps allow (header, every session and mapping
    /// record, every helper connection at a generous 4 KB), so a resync is bounded by them.
    static func maxChunks(_ nat: NATConfiguration) -> Int {
        let bytes = 64 + 24 * nat.maxSessions + 12 * nat.maxMappings + 4096 * nat.helperLimits.connections
        return bytes / SyncMessage.maxChunkData + 1
    }
}

extension Engine {
    /// At start (Engine.init): the role from --role, the channel from --sync-*.
    static func startHA(_ settings: EngineSettings, events: SyncEventQueue?) throws(MasqdError) -> HAState {
        var state = HAState()
        state.role = settings.role
        state.events = events
        guard let ha = settings.ha else { return state }
        state.socket = try SyncSocket(listen: ha.listen, peer: ha.peer)
        state.session = SyncSession(key: ha.key, epoch: WallClock.now(), resyncInterval: UInt64(ha.interval) * 1_000_000_000,
                                    maxChunks: HAState.maxChunks(settings.nat))
        return state
    }

    /// Main loop, each round: what arrived, a resync when due, what is due to be sent.
    func serveSync(readable: Bool, now: NATTime) {
        guard var session = ha.session, let socket = ha.socket else { return }
        ha.session = nil // taken out while it works: one owner, so its queue is not copied each round
        defer { ha.session = session }
        let active = ha.role == .active
        if readable {
            // At most a resync's worth per round: the loop's other duties wait for no flood.
            for _ in 0..<512 {
                guard let datagram = socket.receive() else { break }
                let deliveries = session.receive(datagram.bytes, fromPeer: datagram.fromPeer, now: now.nanoseconds, active: active)
                if !deliveries.isEmpty { keepReplicated(deliveries, session: &session) }
            }
        }
        streamIncrements(&session, active: active, now: now)
        session.poll(now: now.nanoseconds, active: active) { socket.send($0) }
    }

    /// The events since the last round become increments (the active), and a full resync is
    /// exported when due: both under one hold of the lock, so the resync includes exactly the
    /// increments queued before it, and each helper connection whose state changed is read
    /// as it is now (once per round, at its last event). A standby's own events are dropped.
    private func streamIncrements(_ session: inout SyncSession, active: Bool, now: NATTime) {
        guard let queue = ha.events else { return }
        let due = session.resyncDue(now: now.nanoseconds, active: active)
        var records = ha.taken
        ha.taken = []
        records.removeAll(keepingCapacity: true)
        defer { ha.taken = records }
        var helperEvents: [(position: Int, event: NATEvent)] = []
        var helperStates: [(position: Int, state: SyncHelperState?)] = []
        var snapshot: NATStateSnapshot?
        let lost = withTranslator { translator in
            eventSinks.take(from: translator)
            let lost = queue.takeAll { event in
                if event.kind == .helperStateChanged {
                    helperEvents.append((records.count, event))
                } else if let record = SyncIncrement(event: event) {
                    records.append(record)
                }
            }
            if active { helperStates = Engine.latestHelperStates(helperEvents, translator) }
            // Copied under the lock (the state file's benchmark: about 20 ms for 262144 flows), encoded outside it.
            if due { snapshot = translator.exportState(now: now, savedAt: WallClock.now()) }
            return lost
        }
        guard active else { return }
        var eventsLost = lost
        let wallClock = WallClock.now()
        var start = 0
        for (position, state) in helperStates {
            session.queueIncrements(records[start..<position], wallClock: wallClock, now: now.nanoseconds)
            start = position
            if let state { session.queueHelperState(state, wallClock: wallClock, now: now.nanoseconds) } else { eventsLost = true }
        }
        if eventsLost, snapshot == nil { session.eventsLost() } // (a resync exported now already holds what was lost)
        session.queueIncrements(records[start...], wallClock: wallClock, now: now.nanoseconds)
        if let snapshot { session.startResync(snapshot.encoded(), now: now.nanoseconds) }
    }

    /// With the lock held: the state of each helper connection named by `events`, read now and
    /// placed at its last event (after the records of every event before it). A state that
    /// does not fit a message is nil (the increments cannot carry it: a full resync follows);
    /// a session gone since is left out (its removal follows).
    static func latestHelperStates(_ events: [(position: Int, event: NATEvent)],
                                   _ translator: NATTranslator) -> [(position: Int, state: SyncHelperState?)] {
        guard !events.isEmpty else { return [] }
        var last: [NATFlow: Int] = [:]
        for (i, e) in events.enumerated() { last[e.event.flow] = i }
        var out: [(position: Int, state: SyncHelperState?)] = []
        for (i, e) in events.enumerated() where last[e.event.flow] == i {
            switch translator.helperState(of: e.event, maxBytes: SyncHelperState.maxStateBytes) {
            case .found(let bytes):
                out.append((e.position, SyncHelperState(flow: e.event.flow, state: bytes)))
            case .tooLarge:
                out.append((e.position, nil))
            case .none:
                continue
            }
        }
        return out
    }

    /// The standby: a full resync replaces the copy (if it decodes; the increments after it
    /// are applied then); increments are applied to it.
    private func keepReplicated(_ deliveries: [SyncDelivery], session: inout SyncSession) {
        var configuration: NATConfiguration?
        func apply(_ batch: SyncIncrementBatch) {
            guard ha.replica != nil else { return }
            if configuration == nil { configuration = withTranslator { $0.configuration } } // its timeouts and pools
            var applied = 0
            for record in batch.records {
                guard let event = record.event,
                      ha.replica?.apply(event, wallClock: batch.wallClock, configuration: configuration!) == true else { continue }
                applied += 1
            }
            for helper in batch.helperStates where ha.replica?.applyHelperState(helper.event, state: helper.state, wallClock: batch.wallClock) == true {
                applied += 1
            }
            session.noteIncrementsApplied(applied)
        }
        for delivery in deliveries {
            switch delivery {
            case .snapshot(let encoded, let base):
                do throws(NATStateError) {
                    ha.replica = NATReplica(try NATStateSnapshot(decoding: encoded))
                    for batch in session.snapshotAccepted(base: base) { apply(batch) }
                } catch {
                    session.noteSnapshotRefused()
                    logger.warning("a full resync from the sync peer did not decode: \(error); keeping the previous copy and asking for another")
                }
            case .increments(let batch):
                apply(batch)
            }
        }
    }

    /// `role active|standby` on the control socket.
    func changeRole(_ word: String?) -> String {
        guard let word, let role = RouterRole(rawValue: word) else {
            return "error: role: expected active or standby\n"
        }
        guard role != ha.role else { return "role \(role.rawValue) (unchanged)\n" }
        ha.role = role
        ha.roleChanges &+= 1
        ha.session?.roleChanged(active: role == .active) // the copy and increments of one role are not the other's
        switch role {
        case .standby:
            let removed = withTranslator { translator in
                for worker in workers { worker.standby = true }
                return translator.removeAllFlows(now: MonotonicClock.now())
            }
            logger.notice("role standby: translating nothing; \(removed) flows of this router dropped (the peer translates them)")
            return "role standby: \(removed) flows dropped\n"
        case .active:
            let answer = withTranslator { translator in
                defer { for worker in workers { worker.standby = false } }
                return takeOver(translator)
            }
            logger.notice("role active: \(answer)")
            return "role active: \(answer)\n"
        }
    }

    /// With the lock held, the workers still standing by: installs the latest replicated state.
    private func takeOver(_ translator: NATTranslator) -> String {
        guard let snapshot = replicatedSnapshot() else {
            ha.takeoversWithoutState &+= 1
            ha.lastTakeover = NATStateRestoreSummary()
            return "no replicated state from the peer: starting empty"
        }
        ha.replica = nil // installed once: a later takeover needs a newer resync
        translator.removeAllFlows(now: MonotonicClock.now())
        do throws(NATStateError) {
            let age = try snapshot.downtime(wallClockNow: WallClock.now())
            let summary = try translator.importState(snapshot, downtime: age, now: MonotonicClock.now())
            ha.lastTakeover = summary
            return "installed \(summary.sessionsRestored) of \(snapshot.sessionCount) replicated flows (resync \(age.nanoseconds / 1_000_000) ms old; not installed: \(summary.sessionsNotRestored))"
        } catch {
            ha.takeoverRefused &+= 1
            return "the replicated state was refused: \(error); starting empty"
        }
    }

    /// Every replicated session starts with at least this much left at a takeover (or in the
    /// standby's state file): the peer still had it, and its next packet refreshes it.
    static let replicatedMinimumLifetime = NATDuration.seconds(60)

    /// The standby's copy as a snapshot, saved when it was last known current
    /// (`replicaCurrentAt`). Nil: none.
    func replicatedSnapshot() -> NATStateSnapshot? {
        guard let replica = ha.replica, let current = replicaCurrentAt() else { return nil }
        return replica.snapshot(savedAt: current, minimumRemaining: Self.replicatedMinimumLifetime)
    }

    /// Until when (wall clock, ns, never after now) the standby's copy is known current: the
    /// last time the peer was heard (its increments come within a round of each event),
    /// unless batches wait for a gap (then its last change), or it was never heard (a copy
    /// from the state file: when that was saved). Nil: no copy. The one measure of the copy's
    /// age: the takeover's snapshot and sync_lag_ms both use it.
    func replicaCurrentAt() -> UInt64? {
        guard let replica = ha.replica else { return nil }
        let now = WallClock.now()
        guard let heard = ha.session?.lastHeardFromPeer, ha.session?.inbox.gap == nil else { return min(replica.updatedAt, now) }
        let heardAgo = MonotonicClock.now().nanoseconds &- heard
        return min(max(replica.updatedAt, now &- min(heardAgo, now)), now)
    }

    /// For `masqd stats` and the metrics page.
    func haMetrics() -> [EngineMetric] {
        let c = ha.session?.counters ?? SyncCounters()
        let outgoing = ha.session?.outgoing
        var list: [EngineMetric] = [
            .gauge("role_active", ha.role == .active ? 1 : 0, "1 while this router translates (HA role active), 0 as standby."),
            .counter("role_changes", ha.roleChanges, "Changes of the HA role (`masqd role`)."),
            .counter("standby_dropped", counters[.standbyDropped], "Packets dropped as standby: outbound ones, and inbound ones to the WAN address (the active translates them)."),
            .counter("standby_passed", counters[.standbyPassed], "Packets passed unchanged to the router's own stack as standby (VRRP, the sync channel, management)."),
            .counter("sync_messages_sent", c[.messagesSent], "Sync channel messages sent (hellos, acks, nacks, resync chunks), resends included."),
            .counter("sync_messages_received", c[.messagesReceived], "Sync channel messages received and accepted (authenticated, not replayed)."),
            .counter("sync_messages_resent", c[.messagesResent], "Resync chunks sent again (a nack, or no ack in 300 ms)."),
            .counter("sync_resync_bytes_sent", c[.resyncBytesSent], "Bytes of full resync messages sent (resends included)."),
            .counter("sync_increment_bytes_sent", c[.incrementBytesSent], "Bytes of increment messages sent (resends included)."),
            .counter("sync_increments_sent", c[.incrementRecordsSent], "Increments (mappings and sessions created, established, removed; helper connection states) sent, first sends."),
            .counter("sync_increment_batches_sent", c[.incrementBatchesSent], "Increment batches (one message each) sent the first time."),
            .counter("sync_increment_batches_resent", c[.incrementBatchesResent], "Increment batches sent again (a nack, or no ack in 300 ms)."),
            .counter("sync_increments_received", c[.incrementsReceived], "Standby: increments received in accepted batches."),
            .counter("sync_increments_applied", c[.incrementsApplied], "Standby: increments applied to the copy of the peer's state (in batch order, after the resync they follow)."),
            .gauge("sync_increment_lag_batches", ha.session?.outgoingIncrements.outstanding ?? 0, "Active: increment batches the standby has not acknowledged."),
            .gauge("sync_increments_waiting", ha.session?.inbox.waitingCount ?? 0, "Standby: increment batches waiting for a gap before them to be filled."),
            .counter("sync_resyncs_events_lost", c[.resyncsForLostEvents], "Full resyncs because NAT events were lost (nat_events_lost, or the sync's own queue full) or a helper connection's state did not fit an increment: increments alone would diverge."),
            .counter("sync_resyncs_increments_lost", c[.resyncsForIncrementsLost], "Full resyncs because the standby missed increment batches no longer held."),
            .counter("sync_increment_queue_overflows", c[.incrementQueueOverflows], "Times the active's increment queue (8192 batches) filled with batches the standby had not acknowledged: a full resync followed."),
            .counter("sync_resyncs_requested", c[.resyncsRequested], "Full resyncs the standby asked for (none yet, or its copy could not be brought up to date)."),
            .counter("sync_events_dropped", ha.events?.dropped ?? 0, "NAT events that did not fit the sync's queue (a full resync followed)."),
            .counter("sync_sends_deferred", c[.sendsDeferred], "Sync messages the socket would not take at once (sent in a later round)."),
        ]
        for reason in SyncDropReason.allCases {
            list.append(.counter("sync_dropped_\(reason)", c.drops(reason), "Sync datagrams dropped, by reason.",
                                 family: "sync_dropped", labels: [("reason", "\(reason)")]))
        }
        let age = replicaCurrentAt().map { (WallClock.now() &- $0) / 1_000_000 } ?? 0
        list += [
            .counter("sync_resyncs_sent", c[.resyncsSent], "Full resyncs the active started (the standby (re)connected, the interval, a nack it could not serve)."),
            .counter("sync_resyncs_too_large", c[.resyncsTooLarge], "Full resyncs not sent: more chunks than the table caps allow."),
            .counter("sync_resyncs_received", c[.snapshotsReceived], "Full resyncs the standby received whole and decoded."),
            .counter("sync_resyncs_refused", c[.snapshotsRefused], "Full resyncs refused by the standby (over its caps, or not decodable)."),
            .counter("sync_peer_connects", c[.peerConnects], "Times the sync peer appeared or restarted (a new epoch)."),
            .gauge("sync_lag_chunks", outgoing?.outstanding ?? 0, "Active: chunks of the resync under way the standby has not acknowledged."),
            .gauge("sync_lag_ms", age, "Standby: how old the copy of the peer's state may be, in milliseconds: since the peer was last heard, or since the copy last changed while increments wait for a gap or the peer was never heard (0: no copy)."),
            .gauge("sync_replicated_flows", ha.replica?.sessionCount ?? 0, "Standby: flows in the copy of the peer's state, ready for a takeover."),
            .gauge("sync_replicated_other_flows", ha.replica?.addressOnlyFlowCount ?? 0, "Standby: address-only translations (ESP, GRE, ...) in the copy of the peer's state."),
            .gauge("sync_replicated_redirects", ha.replica?.redirectCount ?? 0, "Standby: redirected connections in the copy of the peer's state."),
            .gauge("takeover_installed_flows", ha.lastTakeover.sessionsRestored, "Flows installed from the replicated state at the last `role active`."),
            .counter("takeovers_without_state", ha.takeoversWithoutState, "Takeovers (`role active`) with no replicated state: started empty."),
            .counter("takeovers_refused", ha.takeoverRefused, "Takeovers whose replicated state was refused (another WAN address, too old)."),
        ]
        return list
    }
}

extension SyncHelperState {
    /// The session it names, as an event (for NATReplica.applyHelperState).
    var event: NATEvent {
        NATEvent(timeNanoseconds: 0, kind: .helperStateChanged, reason: .outbound, flow: flow, external: IPv4Endpoint(0, 0))
    }
}

extension SyncIncrement {
    /// The record of an event the increments carry, or nil. Port blocks are left out: the
    /// standby rebuilds them from the mappings at takeover (NATReplica).
    init?(event: NATEvent) {
        guard SyncIncrement.kinds.contains(event.kind.rawValue), !event.kind.isPortBlock else { return nil }
        self.init(kind: event.kind.rawValue, reason: event.reason.rawValue, flow: event.flow, externalEndpoint: event.externalEndpoint)
    }

    /// The event this record carries (its time is the batch's, on the peer's wall clock).
    var event: NATEvent? {
        guard let kind = NATEventKind(rawValue: kind) else { return nil }
        return NATEvent(timeNanoseconds: 0, kind: kind, reason: NATEventReason(rawValue: reason) ?? .outbound, flow: flow, external: externalEndpoint)
    }
}

extension Engine {
    /// With --sync-*: the increments' event queue, the translator's events switched on (and
    /// sessions becoming two-way and helper state changes recorded: a TCP session's
    /// ESTABLISHED and an FTP control connection's edits reach the standby).
    static func makeSyncEvents(_ settings: EngineSettings, translator: NATTranslator) -> SyncEventQueue? {
        guard settings.ha != nil else { return nil }
        enableTwoWayEvents(translator)
        translator.recordsHelperStateChanges = true // a helper connection's edits and state (NATTranslator-HelperState.swift)
        return SyncEventQueue()
    }
}

extension Engine {
    /// The translator's events on (if audit has not turned them on already), with sessions
    /// becoming two-way recorded: what the fast path and the HA increments both consume.
    static func enableTwoWayEvents(_ translator: NATTranslator) {
        if !translator.eventsEnabled {
            translator.enableEvents(capacity: AuditExporter.translatorRingCapacity, now: MonotonicClock.now())
        }
        translator.recordsEstablishedSessions = true
    }
}
