import Glibc
import Synchronization

// SIGINT/SIGTERM ask the packet loops to finish their batch and stop. The handler only sets a
// flag; a loop blocked in poll() or recvmmsg() wakes with EINTR (or at its timeout, when
// another thread took the signal) and checks it.

let stopRequested = Atomic<Bool>(false)

enum StopSignal {
    static func install() {
        installFlagHandler([SIGINT, SIGTERM]) { _ in stopRequested.store(true, ordering: .relaxed) }
        signal(SIGPIPE, SIG_IGN) // a control client that goes away must not kill the engine
    }

    static var isRequested: Bool { stopRequested.load(ordering: .relaxed) }

    /// Asks every loop to stop, as the signal would (a worker that failed does this).
    static func request() { stopRequested.store(true, ordering: .relaxed) }
}

/// Installs a handler that only sets a flag, without SA_RESTART, so blocking calls return
/// EINTR and the loops look at the flag.
func installFlagHandler(_ signals: [Int32], _ handler: @convention(c) (Int32) -> Void) {
    var action = sigaction()
    action.__sigaction_handler.sa_handler = handler
    sigemptyset(&action.sa_mask)
    action.sa_flags = 0
    for number in signals { sigaction(number, &action, nil) }
}
