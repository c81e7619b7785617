import NATCore

// How mappings are made and what they admit: `--port-range A-B` (the external ports handed
// out) and `--filtering` (which inbound packets a mapping lets in).

extension EngineOptions {
    func checkedPortRange() throws(MasqdError) -> PortAllocator {
        guard let portRange else { return PortAllocator() }
        guard let range = PortForward.parsePortRange(Substring(portRange)) else {
            throw .option("--port-range", portRange, "expected A-B with 1 <= A <= B <= 65535")
        }
        return PortAllocator(portRange: range, lowPortRange: nil)
    }

    func checkedFiltering() throws(MasqdError) -> NATFiltering? {
        guard let filtering else { return nil }
        guard let value = NATFiltering(rawValue: filtering) else {
            throw .option("--filtering", filtering, "expected address-and-port-dependent or endpoint-independent")
        }
        return value
    }
}
