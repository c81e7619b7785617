import Glibc
import Synchronization

// SIGHUP asks the main loop to reload the settings (Engine-Reload.swift). As for SIGINT and
// SIGTERM (StopSignal.swift), the handler only sets a flag; the loop's poll() wakes with EINTR
// (or at its next timeout, when a worker thread took the signal) and looks.

let reloadRequested = Atomic<Bool>(false)

enum ReloadSignal {
    static func install() {
        var action = sigaction()
        action.__sigaction_handler.sa_handler = { _ in reloadRequested.store(true, ordering: .relaxed) }
        sigemptyset(&action.sa_mask)
        action.sa_flags = 0 // no SA_RESTART: poll() must return so the loop sees the flag
        sigaction(SIGHUP, &action, nil)
    }

    /// True once after one or more SIGHUPs (several before the loop looks make one reload).
    static func takeRequest() -> Bool { reloadRequested.exchange(false, ordering: .relaxed) }
}
