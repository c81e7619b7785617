import CLinux
import Glibc

// A dedicated OS thread for a packet worker (the packet loop is a thread, not async tasks).

struct WorkerThread {
    private let thread: pthread_t

    private final class Body {
        let run: () -> Void
        init(_ run: @escaping () -> Void) { self.run = run }
    }

    init(name: String, _ body: @escaping @Sendable () -> Void) throws(MasqdError) {
        let threadName = String(name.utf8.prefix(15))!
        let box = Unmanaged.passRetained(Body {
            _ = clinux_name_current_thread(threadName)
            body()
        }).toOpaque()
        var thread = pthread_t()
        let result = pthread_create(&thread, nil, { argument in
            let body = Unmanaged<Body>.fromOpaque(argument!).takeRetainedValue()
            body.run()
            return nil
        }, box)
        guard result == 0 else {
            Unmanaged<Body>.fromOpaque(box).release()
            throw MasqdError("cannot start the \(name) thread: \(String(cString: strerror(result)))")
        }
        self.thread = thread
    }

    /// Lets the thread run on `cpu` alone (`--worker-cpus`).
    func pin(to cpu: Int, name: String) throws(MasqdError) {
        let result = clinux_pin_thread(UInt(thread), Int32(cpu))
        guard result == 0 else {
            throw MasqdError("--worker-cpus: cannot pin \(name) to CPU \(cpu): \(String(cString: strerror(result)))")
        }
    }

    func join() {
        pthread_join(thread, nil)
    }
}
