import Logging
import NATCore

// High availability (issue #18): two routers, keepalived electing which one translates.
// The active streams its whole translation state — the state file's encoding
// (NATStateSnapshot), cut into chunks — to the standby over the sync channel (Sync/), when
// the standby (re)connects and every --sync-interval; the standby keeps the latest one
// decoded and translates nothing (QueueWorker-Standby.swift). `masqd role active` (keepalived's
// notify master) installs it as a restart with a state file does: every mapping keeps its
// external address and port, so the new active's port allocation cannot clash with a live
// flow. `masqd role standby` (notify backup/fault) drops the router's own flows: the peer
// translates them now, from the state this router sent it.
//
// Increments (a flow created or removed, between two resyncs) will come from the core's
// event ring; until then a takeover loses the flows made since the last resync.

/// The role and the sync channel; main loop only (the workers' `standby` flags under the lock).
struct HAState {
    var role: RouterRole = .active
    var session: SyncSession?
    var socket: SyncSocket?
    /// The standby's latest full resync from the peer, decoded.
    var latest: NATStateSnapshot?
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
    static func startHA(_ settings: EngineSettings) throws(MasqdError) -> HAState {
        var state = HAState()
        state.role = settings.role
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
                if let encoded = session.receive(datagram.bytes, fromPeer: datagram.fromPeer, now: now.nanoseconds, active: active) {
                    keepReplicated(encoded, session: &session)
                }
            }
        }
        if session.resyncDue(now: now.nanoseconds, active: active) {
            // Copied under the lock (the state file's benchmark: about 20 ms for 262144 flows), encoded outside it.
            let snapshot = withTranslator { $0.exportState(now: now, savedAt: WallClock.now()) }
            session.startResync(snapshot.encoded(), now: now.nanoseconds)
        }
        session.poll(now: now.nanoseconds, active: active) { socket.send($0) }
    }

    private func keepReplicated(_ encoded: [UInt8], session: inout SyncSession) {
        do throws(NATStateError) {
            ha.latest = try NATStateSnapshot(decoding: encoded)
            session.noteSnapshotReceived()
        } catch {
            session.noteSnapshotRefused()
            logger.warning("a full resync from the sync peer did not decode: \(error); keeping the previous one")
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
        switch role {
        case .standby:
            let removed = withTranslator { translator in
                for worker in workers { worker.standby = true }
                return translator.removeAllFlows()
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
        guard let snapshot = ha.latest else {
            ha.takeoversWithoutState &+= 1
            ha.lastTakeover = NATStateRestoreSummary()
            return "no replicated state from the peer: starting empty"
        }
        ha.latest = nil // installed once: a later takeover needs a newer resync
        translator.removeAllFlows()
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

    /// For `masqd stats` and the metrics page.
    func haMetrics() -> [EngineMetric] {
        let c = ha.session?.counters ?? SyncCounters()
        let outgoing = ha.session?.outgoing
        var list: [EngineMetric] = [
            .gauge("role_active", ha.role == .active ? 1 : 0, "1 while this router translates (HA role active), 0 as standby."),
            .counter("role_changes", ha.roleChanges, "Changes of the HA role (`masqd role`)."),
            .counter("standby_dropped", counters.standbyDropped, "Packets dropped as standby: outbound ones, and inbound ones to the WAN address (the active translates them)."),
            .counter("standby_passed", counters.standbyPassed, "Packets passed unchanged to the router's own stack as standby (VRRP, the sync channel, management)."),
            .counter("sync_messages_sent", c.messagesSent, "Sync channel messages sent (hellos, acks, nacks, resync chunks), resends included."),
            .counter("sync_messages_received", c.messagesReceived, "Sync channel messages received and accepted (authenticated, not replayed)."),
            .counter("sync_messages_resent", c.messagesResent, "Resync chunks sent again (a nack, or no ack in 300 ms)."),
            .counter("sync_sends_deferred", c.sendsDeferred, "Sync messages the socket would not take at once (sent in a later round)."),
        ]
        for reason in SyncDropReason.allCases {
            list.append(.counter("sync_dropped_\(reason.rawValue)", c.drops(reason), "Sync datagrams dropped, by reason.",
                                 family: "sync_dropped", labels: [("reason", reason.rawValue)]))
        }
        let age = ha.latest.map { WallClock.now() > $0.savedAt ? (WallClock.now() - $0.savedAt) / 1_000_000 : 0 } ?? 0
        list += [
            .counter("sync_resyncs_sent", c.resyncsSent, "Full resyncs the active started (the standby (re)connected, the interval, a nack it could not serve)."),
            .counter("sync_resyncs_too_large", c.resyncsTooLarge, "Full resyncs not sent: more chunks than the table caps allow."),
            .counter("sync_resyncs_received", c.snapshotsReceived, "Full resyncs the standby received whole and decoded."),
            .counter("sync_resyncs_refused", c.snapshotsRefused, "Full resyncs refused by the standby (over its caps, or not decodable)."),
            .counter("sync_peer_connects", c.peerConnects, "Times the sync peer appeared or restarted (a new epoch)."),
            .gauge("sync_lag_chunks", outgoing?.outstanding ?? 0, "Active: chunks of the resync under way the standby has not acknowledged."),
            .gauge("sync_lag_ms", age, "Standby: age of the latest replicated state, in milliseconds (0: none)."),
            .gauge("sync_replicated_flows", ha.latest?.sessionCount ?? 0, "Standby: flows in the latest replicated state, ready for a takeover."),
            .gauge("takeover_installed_flows", ha.lastTakeover.sessionsRestored, "Flows installed from the replicated state at the last `role active`."),
            .counter("takeovers_without_state", ha.takeoversWithoutState, "Takeovers (`role active`) with no replicated state: started empty."),
            .counter("takeovers_refused", ha.takeoverRefused, "Takeovers whose replicated state was refused (another WAN address, too old)."),
        ]
        return list
    }
}
