import NATCore

// Port block allocation's counters (--port-block-size; NATCore's PortBlocks.swift). Refused
// flows are the drop counter `drop_host_port_block_limit`.

extension Engine {
    /// Lock held. Empty without port blocks.
    func portBlockMetrics() -> [EngineMetric] {
        guard let blocks = translator.configuration.portBlocks else { return [] }
        let core = translator.counters
        return [
            .gauge("port_blocks_active", translator.portBlockCount, "Port blocks held by internal hosts (--port-block-size)."),
            .gauge("port_block_size", blocks.size, "Ports per block (--port-block-size)."),
            .gauge("port_blocks_per_host_max", blocks.maxPerHost, "Blocks one host may hold (--max-port-blocks-per-host)."),
            .counter("port_blocks_allocated", core[.portBlocksAllocated], "Port blocks given to hosts (restored ones included): one audit line each."),
            .counter("port_blocks_released", core[.portBlocksReleased], "Port blocks given back with their last mapping."),
            .counter("port_block_restore_conflicts", core[.portBlockRestoreConflicts],
                     "Restored mappings left out because another host already held their block (the block size changed since the save) or their port is in no block."),
        ]
    }
}
