import Glibc
import Synchronization

// SIGINT/SIGTERM ask the packet loop to finish its batch and stop. The handler only sets a
// flag; the loop's poll() wakes with EINTR and checks it.

let stopRequested = Atomic<Bool>(false)

enum StopSignal {
    static func install() {
        var action = sigaction()
        action.__sigaction_handler.sa_handler = { _ in stopRequested.store(true, ordering: .relaxed) }
        sigemptyset(&action.sa_mask)
        action.sa_flags = 0 // no SA_RESTART: poll() must return so the loop sees the flag
        sigaction(SIGINT, &action, nil)
        sigaction(SIGTERM, &action, nil)
        signal(SIGPIPE, SIG_IGN) // a control client that goes away must not kill the engine
    }

    static var isRequested: Bool { stopRequested.load(ordering: .relaxed) }

    /// Asks every loop to stop, as the signal would (a worker that failed does this).
    static func request() { stopRequested.store(true, ordering: .relaxed) }
}
