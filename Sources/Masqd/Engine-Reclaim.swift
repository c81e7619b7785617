import NATCore

// The full-table reclaim's counters (NATTranslator-Reclaim.swift), in Engine-Reports.swift's list.

extension Engine {
    /// Lock held.
    func reclaimMetrics() -> [EngineMetric] {
        let core = translator.counters
        return [
            .counter("reclaim_steps", core[.reclaimSteps], "New flows against a full table that looked for expired sessions (at most 64 rows each)."),
            .counter("reclaim_steps_skipped", core[.reclaimStepsSkipped], "New flows against a full table refused without looking: the last look, under 1 ms ago, found nothing."),
        ]
    }
}
