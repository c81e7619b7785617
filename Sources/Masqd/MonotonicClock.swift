import Glibc
import NATCore

// The daemon's one clock: CLOCK_MONOTONIC, read once per batch and handed to the core.

enum MonotonicClock {
    static func now() -> NATTime {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return NATTime(nanoseconds: UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec))
    }
}
