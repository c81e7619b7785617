import NATCore

// `--max-flows` (sessions and mappings alike) and `--max-flows-per-host`: the caps on the
// translator's main tables. The other tables' caps sit with their feature's options.

extension EngineOptions {
    func checkCaps(into nat: inout NATConfiguration) throws(MasqdError) {
        if let maxFlows {
            guard let value = Int(maxFlows), (1...16_777_216).contains(value) else {
                throw .option("--max-flows", maxFlows, "expected a number from 1 to 16777216")
            }
            nat.maxSessions = value
            nat.maxMappings = value
        }
        if let maxFlowsPerHost {
            guard let value = Int(maxFlowsPerHost), value >= 1 else {
                throw .option("--max-flows-per-host", maxFlowsPerHost, "expected a positive number")
            }
            nat.maxSessionsPerHost = value
        }
    }
}
