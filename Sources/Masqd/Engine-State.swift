import Logging
import NATCore

// The translation state across restarts (issue #8), with `--state-file PATH`. The kernel keeps
// conntrack across a daemon upgrade; masqd keeps its sessions: on SIGTERM/SIGINT, after the
// workers have given their last verdicts, the state is saved (NATTranslator-State.swift,
// format in NATStateSnapshot.swift), and `masqd run` restores it before it binds a queue, so
// no packet is translated without it. Lifetimes lose the time the daemon was down (wall
// clock, saved in the file). While running, a checkpoint every `--checkpoint-interval`
// seconds (default 60; 0: only at stop) bounds what a crash or power cut loses.
//
// A file that cannot be used — corrupt, truncated, another format version, saved for another
// WAN address (an address change flushes, as in the kernel), older than the longest timeout,
// saved in the future — is refused whole with one line in the log, renamed to PATH.bad (so it
// is not read again, and stays to be looked at), and the engine starts empty. A missing file
// is a first start. Writes are atomic: PATH.tmp, fsync, rename.

/// The state file's counters and timer; main loop only.
struct StateKeeping {
    var lastSave = NATTime(nanoseconds: 0)
    var saves: UInt64 = 0
    var saveFailures: UInt64 = 0
    /// A failing checkpoint is logged once, until a save succeeds again.
    var failureLogged = false
    var refused: UInt64 = 0
    var restore = NATStateRestoreSummary()
    /// Saved flows read at start while the WAN interface had no address (a router booting
    /// before DHCP or PPP is up): restored when the address appears. Until then no
    /// checkpoint or stop overwrites the file they came from.
    var pending: PendingRestore?
    /// An HA standby's file, decoded, not imported: its copy of the peer's state (Engine.init
    /// makes it the NATReplica and clears this).
    var standbyCopy: NATStateSnapshot?
}

struct PendingRestore {
    let snapshot: NATStateSnapshot
    let path: String
}

extension Engine {
    /// At start, before any queue is bound: restores the state file into the fresh translator.
    /// Only a state file whose directory is missing ends the start (a bad option); a file that
    /// cannot be used is refused and the engine starts empty. With no WAN address yet, the
    /// decoded flows wait for one (`StateKeeping.pending`).
    static func restoreState(_ settings: EngineSettings, into translator: NATTranslator, logger: Logger) throws(MasqdError) -> StateKeeping {
        var keeping = StateKeeping()
        keeping.lastSave = MonotonicClock.now()
        guard let path = settings.state?.path else { return keeping }
        try StateFile.checkDirectory(of: path)
        let bytes: [UInt8]
        do {
            guard let read = try StateFile.read(path) else {
                logger.info("no saved state at \(path): starting empty")
                return keeping
            }
            bytes = read
        } catch {
            refuseState(path, error.description, moveAside: false, keeping: &keeping, logger: logger)
            return keeping
        }
        let snapshot: NATStateSnapshot
        do throws(NATStateError) {
            snapshot = try NATStateSnapshot(decoding: bytes)
        } catch {
            refuseState(path, error.description, keeping: &keeping, logger: logger)
            return keeping
        }
        guard snapshot.sessionCount + snapshot.redirectCount > 0 else {
            logger.info("no flows saved in \(path): starting empty")
            return keeping
        }
        if settings.role == .standby { // translates nothing: the file is its copy of the peer's state
            keeping.standbyCopy = snapshot
            return keeping
        }
        guard translator.configuration.externalAddress != nil else {
            keeping.pending = PendingRestore(snapshot: snapshot, path: path)
            let saved = snapshot.externalAddress.map { "\($0)" } ?? "none"
            logger.notice("\(snapshot.sessionCount) flows saved in \(path) for WAN address \(saved) wait for \(settings.wanInterface) to have an address; the file is kept until then")
            return keeping
        }
        restore(snapshot, from: path, into: translator, keeping: &keeping, logger: logger)
        return keeping
    }

    /// Restores decoded flows into a translator that has its WAN address and no session yet.
    static func restore(_ snapshot: NATStateSnapshot, from path: String, into translator: NATTranslator,
                        keeping: inout StateKeeping, logger: Logger) {
        do throws(NATStateError) {
            let downtime = try snapshot.downtime(wallClockNow: WallClock.now())
            let summary = try translator.importState(snapshot, downtime: downtime, now: MonotonicClock.now())
            keeping.restore = summary
            var notRestored: [String] = []
            if summary.sessionsExpired > 0 { notRestored.append("\(summary.sessionsExpired) expired while down") }
            if summary.sessionsNoRoom > 0 { notRestored.append("\(summary.sessionsNoRoom) over the caps") }
            if summary.sessionsNotInConfiguration > 0 { notRestored.append("\(summary.sessionsNotInConfiguration) no longer in the configuration") }
            let rest = notRestored.isEmpty ? "" : "; not restored: " + notRestored.joined(separator: ", ")
            logger.notice("restored \(summary.sessionsRestored) of \(snapshot.sessionCount) flows from \(path) (saved \(downtime.wholeSeconds)s ago\(rest))")
            if snapshot.redirectCount > 0 {
                logger.notice("restored \(summary.redirectsRestored) of \(snapshot.redirectCount) redirected connections (the rest expired, over the cap or no longer redirected)")
            }
        } catch {
            refuseState(path, error.description, keeping: &keeping, logger: logger)
        }
    }

    static func refuseState(_ path: String, _ reason: String, moveAside: Bool = true, keeping: inout StateKeeping, logger: Logger) {
        keeping.refused += 1
        let moved = moveAside ? StateFile.moveAside(path).map { " (moved to \($0))" } ?? "" : ""
        logger.warning("state file \(path) refused: \(reason); starting empty\(moved)")
    }

    /// Main loop, the WAN address having changed: flows waiting for an address are restored
    /// now (or refused, if it is not the one they were saved with). Called with the lock held:
    /// no packet is translated between the address and the restore.
    func restorePendingState(into translator: NATTranslator) {
        guard let pending = stateKeeping.pending, translator.configuration.externalAddress != nil else { return }
        stateKeeping.pending = nil
        Engine.restore(pending.snapshot, from: pending.path, into: translator, keeping: &stateKeeping, logger: logger)
    }

    /// The state file's settings in force (a reload may change them).
    var stateFileSettings: StateFileSettings? { (reloading.current ?? settings).state }

    /// Main loop: saves a checkpoint when one is due.
    func checkpointIfDue(now: NATTime) {
        guard stateKeeping.pending == nil, let state = stateFileSettings, state.checkpointInterval > 0,
              now.duration(since: stateKeeping.lastSave) >= .seconds(UInt64(state.checkpointInterval)) else { return }
        stateKeeping.lastSave = now
        do {
            _ = try saveState(to: state.path)
            stateKeeping.failureLogged = false
        } catch {
            if !stateKeeping.failureLogged {
                logger.error("state checkpoint failed: \(error) (logged once until a save succeeds)")
                stateKeeping.failureLogged = true
            }
        }
    }

    /// After the workers have stopped: the last save, with every session as the last packet left it.
    func saveStateAtStop() {
        guard let state = stateFileSettings else { return }
        if let pending = stateKeeping.pending {
            logger.info("\(pending.path) left as it was: its \(pending.snapshot.sessionCount) flows never got their WAN address")
            return
        }
        do {
            guard let flows = try saveState(to: state.path) else {
                logger.info("\(state.path) left as it was: a standby with no copy of its peer's state")
                return
            }
            logger.info("saved \(flows) flows to \(state.path)")
        } catch {
            logger.error("saving the state failed: \(error)")
        }
    }

    /// Copies the state under the lock, then encodes and writes it without holding it.
    /// Returns how many sessions were saved. An HA standby translates nothing: it saves its
    /// copy of the peer's state (what it would take over), and with none leaves the file as
    /// it was (nil) rather than overwrite a good one with nothing.
    func saveState(to path: String) throws(MasqdError) -> Int? {
        let snapshot: NATStateSnapshot
        if ha.role == .standby {
            guard let replicated = replicatedSnapshot() else { return nil }
            snapshot = replicated
        } else {
            snapshot = withTranslator { $0.exportState(now: MonotonicClock.now(), savedAt: WallClock.now()) }
        }
        do {
            try StateFile.write(snapshot.encoded(), to: path)
        } catch {
            stateKeeping.saveFailures &+= 1
            throw error
        }
        stateKeeping.saves &+= 1
        return snapshot.sessionCount
    }

    /// For `masqd stats` and the metrics page.
    func stateMetrics() -> [EngineMetric] {
        let r = stateKeeping.restore
        return [
            .counter("state_saves", stateKeeping.saves, "Saves of the translation state to --state-file (checkpoints and the one at stop)."),
            .counter("state_save_failures", stateKeeping.saveFailures, "Saves of the translation state that failed (the previous file is kept)."),
            .gauge("state_restore_waiting", stateKeeping.pending == nil ? 0 : 1, "1 while flows read from the state file wait for the WAN interface to have an address."),
            .gauge("state_refused", stateKeeping.refused, "1 if the state file was refused (corrupt, stale, another WAN address): started empty."),
            .gauge("state_restored_flows", r.sessionsRestored, "Translations restored from the state file (at start, or when the WAN address appeared)."),
            .gauge("state_not_restored_expired", r.sessionsExpired, "Saved translations whose idle timeout ran out while masqd was down."),
            .gauge("state_not_restored_no_room", r.sessionsNoRoom, "Saved translations refused at start by a cap."),
            .gauge("state_not_restored_configuration", r.sessionsNotInConfiguration, "Saved translations the configuration no longer allows."),
        ]
    }
}
