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
}

extension Engine {
    /// At start, before any queue is bound: restores the state file into the fresh translator.
    /// Only a state file whose directory is missing ends the start (a bad option); a file that
    /// cannot be used is refused and the engine starts empty.
    static func restoreState(_ settings: EngineSettings, into translator: NATTranslator, logger: Logger) throws(MasqdError) -> StateKeeping {
        var keeping = StateKeeping()
        keeping.lastSave = MonotonicClock.now()
        guard let path = settings.state?.path else { return keeping }
        try StateFile.checkDirectory(of: path)
        func refuse(_ reason: String, moveAside: Bool = true) {
            keeping.refused += 1
            let moved = moveAside ? StateFile.moveAside(path).map { " (moved to \($0))" } ?? "" : ""
            logger.warning("state file \(path) refused: \(reason); starting empty\(moved)")
        }
        let bytes: [UInt8]
        do {
            guard let read = try StateFile.read(path) else {
                logger.info("no saved state at \(path): starting empty")
                return keeping
            }
            bytes = read
        } catch {
            refuse(error.description, moveAside: false)
            return keeping
        }
        do throws(NATStateError) {
            let snapshot = try NATStateSnapshot(decoding: bytes)
            guard snapshot.sessionCount > 0 else {
                logger.info("no flows saved in \(path): starting empty")
                return keeping
            }
            let downtime = try snapshot.downtime(wallClockNow: WallClock.now())
            let summary = try translator.importState(snapshot, downtime: downtime, now: MonotonicClock.now())
            keeping.restore = summary
            var notRestored: [String] = []
            if summary.sessionsExpired > 0 { notRestored.append("\(summary.sessionsExpired) expired while down") }
            if summary.sessionsNoRoom > 0 { notRestored.append("\(summary.sessionsNoRoom) over the caps") }
            if summary.sessionsNotInConfiguration > 0 { notRestored.append("\(summary.sessionsNotInConfiguration) no longer in the configuration") }
            let rest = notRestored.isEmpty ? "" : "; not restored: " + notRestored.joined(separator: ", ")
            logger.notice("restored \(summary.sessionsRestored) of \(snapshot.sessionCount) flows from \(path) (saved \(downtime.wholeSeconds)s ago\(rest))")
        } catch {
            refuse(error.description)
        }
        return keeping
    }

    /// The state file's settings in force (a reload may change them).
    var stateFileSettings: StateFileSettings? { (reloading.current ?? settings).state }

    /// Main loop: saves a checkpoint when one is due.
    func checkpointIfDue(now: NATTime) {
        guard let state = stateFileSettings, state.checkpointInterval > 0,
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
        do {
            let flows = try saveState(to: state.path)
            logger.info("saved \(flows) flows to \(state.path)")
        } catch {
            logger.error("saving the state failed: \(error)")
        }
    }

    /// Copies the state under the lock, then encodes and writes it without holding it.
    /// Returns how many sessions were saved.
    func saveState(to path: String) throws(MasqdError) -> Int {
        let snapshot = withTranslator { $0.exportState(now: MonotonicClock.now(), savedAt: WallClock.now()) }
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
            .gauge("state_refused", stateKeeping.refused, "1 if the state file was refused at start (corrupt, stale, another WAN address): started empty."),
            .gauge("state_restored_flows", r.sessionsRestored, "Translations restored from the state file at start."),
            .gauge("state_not_restored_expired", r.sessionsExpired, "Saved translations whose idle timeout ran out while masqd was down."),
            .gauge("state_not_restored_no_room", r.sessionsNoRoom, "Saved translations refused at start by a cap."),
            .gauge("state_not_restored_configuration", r.sessionsNotInConfiguration, "Saved translations the configuration no longer allows."),
        ]
    }
}
