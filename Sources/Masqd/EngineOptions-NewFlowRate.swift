import NATCore

// `--max-new-flows-per-host RATE/s` (NATCore's NewFlowRate): how fast one internal host may
// open new flows, on top of --max-flows-per-host. Can change on reload.

extension EngineOptions {
    func checkedNewFlowRate() throws(MasqdError) -> NewFlowRate? {
        guard let maxNewFlowsPerHost else { return nil }
        guard let rate = NewFlowRate(maxNewFlowsPerHost) else {
            throw .option("--max-new-flows-per-host", maxNewFlowsPerHost, "expected RATE/s with RATE a whole number from 1 to \(NewFlowRate.maximumPerSecond)")
        }
        return rate
    }
}
