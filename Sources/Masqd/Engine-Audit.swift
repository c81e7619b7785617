import Logging
import NATCore

// NAT events out of the engine (AuditExporter.swift): the translator records them only when
// --audit-log or --ipfix-collector asks; the workers and the main loop move them to the
// exporter's queue under the lock; the exporter's own thread writes them out.

extension Engine {
    /// With a consumer configured: switches the translator's events on (before any traffic
    /// or restored state, so both are recorded) and makes the exporter.
    static func makeAuditExporter(_ settings: EngineSettings, translator: NATTranslator, lock: EngineLock,
                                  logger: Logger) throws(MasqdError) -> AuditExporter? {
        guard settings.audit.isEnabled else { return nil }
        translator.enableEvents(capacity: AuditExporter.translatorRingCapacity, now: MonotonicClock.now())
        return try AuditExporter(settings: settings.audit, lock: lock, logger: logger)
    }

    /// Main loop: the events of housekeeping (the sweep, address changes, reloads) to the queue.
    /// With only the HA sync consuming them, its own round takes them (Engine-HA.swift): no
    /// second hold of the lock.
    func takeAuditEvents() {
        guard audit != nil || fastPath != nil else { return }
        withTranslator { eventSinks.take(from: $0) }
    }

    func auditDescription() -> String? {
        var parts: [String] = []
        if let level = settings.audit.journal { parts.append("journal lines for \(level)") }
        if let ipfix = settings.audit.ipfix { parts.append("IPFIX to \(ipfix.collector) (observation domain \(ipfix.domainID))") }
        return parts.isEmpty ? nil : "NAT events: " + parts.joined(separator: ", ")
    }

    /// For `masqd stats` and the metrics page (lock held).
    func auditMetrics() -> [EngineMetric] {
        let core = translator.counters
        let audit = self.audit?.counters ?? AuditExporter.Counters()
        return [
            .counter("nat_events_recorded", core[.natEventsRecorded], "NAT events (mappings and sessions created and removed) recorded for --audit-log and --ipfix-collector."),
            .counter("nat_events_lost", core[.natEventsLost], "NAT events lost because the translator's ring was full (a burst larger than it, such as a WAN address change flushing more translations)."),
            .gauge("audit_queue_waiting", self.audit?.waiting ?? 0, "NAT events waiting for the exporter thread."),
            .counter("audit_queue_dropped", audit[.queueDropped], "NAT events dropped because the exporter's queue was full: neither logged nor exported."),
            .counter("audit_lines", audit[.journalLines], "NAT event lines written to the log (--audit-log)."),
            .counter("ipfix_messages_sent", audit[.ipfixMessages], "IPFIX messages sent to the collector."),
            .counter("ipfix_records_sent", audit[.ipfixRecords], "IPFIX data records (NAT events) in messages sent."),
            .counter("ipfix_templates_sent", audit[.ipfixTemplates], "IPFIX messages with the template set (at start, then every 60 s)."),
            .counter("ipfix_send_errors", audit[.ipfixSendErrors], "IPFIX messages the kernel would not send (collector unreachable, socket buffer full): lost."),
        ]
    }
}
