import NATCore

// The NAT events for the HA sync's increments (Engine-HA.swift): copied out of the
// translator's ring under the engine lock by whoever drains it (NATEventSinks), taken by the
// main loop each round. Events that did not fit here, or that the translator's own ring lost
// (nat_events_lost grew), leave the increments incomplete: `takeAll` says so, and the active
// falls back to a full resync rather than let the standby's copy silently diverge.

final class SyncEventQueue {
    /// Two main-loop rounds of a busy router (and a 4096-row sweep's removals) with room to spare.
    static let capacity = 65536
    private var ring = NATEventRing()
    private var translatorLostSeen: UInt64 = 0
    private var lost = false
    /// Events that did not fit here (the main loop fell behind).
    private(set) var dropped: UInt64 = 0

    init() { ring.allocate(capacity: Self.capacity) }

    /// Under the lock (NATEventSinks.take): a copy of the translator's waiting events.
    func take(from translator: NATTranslator) {
        let missed = translator.copyEvents(into: &ring)
        if missed > 0 {
            dropped &+= UInt64(missed)
            lost = true
        }
        let translatorLost = translator.counters[.natEventsLost]
        if translatorLost != translatorLostSeen {
            translatorLostSeen = translatorLost
            lost = true
        }
    }

    /// Main loop, under the lock: hands `body` the events since the last call, oldest first;
    /// true when some were lost since then.
    func takeAll(_ body: (NATEvent) -> Void) -> Bool {
        ring.drain(body)
        defer { lost = false }
        return lost
    }
}
