// `--reserve-local-port-range yes|no` (Engine-LocalPorts.swift applies it).

extension EngineOptions {
    func checkedReserveLocalPortRange() throws(MasqdError) -> Bool {
        guard let reserveLocalPortRange else { return true }
        switch reserveLocalPortRange {
        case "yes", "true": return true
        case "no", "false": return false
        default: throw .option("--reserve-local-port-range", reserveLocalPortRange, "expected yes or no")
        }
    }
}
