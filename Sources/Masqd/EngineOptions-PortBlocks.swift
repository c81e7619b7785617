import NATCore

// `--port-block-size N`, `--max-port-blocks-per-host K`: port block allocation (NATCore's
// PortBlocks.swift), RFC 7422 style. The block size is fixed while running (the blocks are
// cut at start); the per-host cap can change on reload.

extension EngineOptions {
    func checkedPortBlocks(ports: PortAllocator) throws(MasqdError) -> PortBlockSettings? {
        guard let portBlockSize else {
            if let maxPortBlocksPerHost { throw .option("--max-port-blocks-per-host", maxPortBlocksPerHost, "needs --port-block-size") }
            return nil
        }
        let sizes = PortBlockSettings.sizes
        guard let size = Int(portBlockSize), sizes.contains(size) else {
            throw .option("--port-block-size", portBlockSize, "expected a number of ports from \(sizes.lowerBound) to \(sizes.upperBound)")
        }
        let range = ports.portRange
        guard range.count / size >= 2 else {
            throw .option("--port-block-size", portBlockSize,
                          "the port range \(range.lowerBound)-\(range.upperBound) holds fewer than two blocks of \(size) ports")
        }
        var settings = PortBlockSettings(size: size)
        if let maxPortBlocksPerHost {
            guard let cap = Int(maxPortBlocksPerHost), (1...1024).contains(cap) else {
                throw .option("--max-port-blocks-per-host", maxPortBlocksPerHost, "expected a number from 1 to 1024")
            }
            settings.maxPerHost = cap
        }
        return settings
    }
}
