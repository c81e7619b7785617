// `--max-other-flows N`: the cap on address-only translations (NATCore's AddressOnlyTable),
// for the protocols without ports. Its idle timeout is `--timeout other=SECONDS`.

extension EngineOptions {
    /// The range keeps the table's index (two slots per row) well inside memory a router has.
    func checkedMaxOtherFlows() throws(MasqdError) -> Int? {
        guard let maxOtherFlows else { return nil }
        guard let value = Int(maxOtherFlows), (1...1_048_576).contains(value) else {
            throw .option("--max-other-flows", maxOtherFlows, "expected a number from 1 to 1048576")
        }
        return value
    }
}
