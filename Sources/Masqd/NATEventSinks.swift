import NATCore

// The consumers of the translator's NAT events: one drain, each consumer its copy. The
// workers (after each batch) and the main loop (each round) call `take` with the engine lock
// held. Consumers before the last copy (NATEventRing.copy); the last moves, which empties the
// translator's ring. A new consumer goes in here, before the audit exporter.

struct NATEventSinks {
    /// --fast-path: takes sessions becoming two-way and removed (FastPath.swift).
    var fastPath: FastPath?
    /// --sync-*: takes everything for the HA increments (SyncEventQueue.swift).
    var sync: SyncEventQueue?
    /// --audit-log, --ipfix-collector: takes everything (AuditExporter.swift).
    var audit: AuditExporter?

    @inline(__always)
    func take(from translator: NATTranslator) {
        guard translator.eventsWaiting > 0 else { return }
        fastPath?.take(from: translator)
        sync?.take(from: translator)
        if let audit { audit.take(from: translator) } else { translator.discardEvents() }
    }
}
