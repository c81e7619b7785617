import Glibc
import Synchronization

// SIGHUP asks the main loop to reload the settings (Engine-Reload.swift). As for SIGINT and
// SIGTERM (StopSignal.swift), the handler only sets a flag; the loop's poll() wakes with EINTR
// (or at its next timeout, when a worker thread took the signal) and looks.

let reloadRequested = Atomic<Bool>(false)

enum ReloadSignal {
    static func install() {
        installFlagHandler([SIGHUP]) { _ in reloadRequested.store(true, ordering: .relaxed) }
    }

    /// True once after one or more SIGHUPs (several before the loop looks make one reload).
    static func takeRequest() -> Bool { reloadRequested.exchange(false, ordering: .relaxed) }
}
