import Glibc
import Logging
import NATCore
import MasqdShell

// --fast-path in the engine (FastPath.swift): made at start, before any packet or restored
// state (so the translator records what it needs from the first session on), attached last
// (once the queues are bound: a start that fails must not replace a running engine's
// programs), fed by NATEventSinks, serviced each main-loop round, read back and detached at stop.

extension Engine {
    static func makeFastPath(_ settings: EngineSettings, translator: NATTranslator, logger: Logger) throws(MasqdError) -> FastPath? {
        guard let fastPathSettings = settings.fastPath else { return nil }
        let wanIndex = if_nametoindex(settings.wanInterface)
        guard wanIndex != 0 else {
            throw MasqdError("--fast-path: WAN \(settings.wanInterface) does not exist (the fast path attaches at start)")
        }
        let lanIndexes = try lanInterfaceIndexes(settings, fastPath: fastPathSettings, wanIndex: wanIndex)
        let fastPath = try FastPath(settings: fastPathSettings, wanIndex: wanIndex, lanIndexes: lanIndexes, logger: logger)
        enableTwoWayEvents(translator)
        return fastPath
    }

    /// The LAN interfaces: --fast-path-lan-interface, or those the --lan prefixes are routed through.
    static func lanInterfaceIndexes(_ settings: EngineSettings, fastPath: FastPathSettings, wanIndex: UInt32) throws(MasqdError) -> [UInt32] {
        var names = fastPath.lanInterfaces
        if names.isEmpty {
            for prefix in settings.internalPrefixes {
                guard let name = routedInterface(prefix) else {
                    throw .option("--lan", prefix.description, "no route to it to find its interface (give --fast-path-lan-interface)")
                }
                guard name != settings.wanInterface else {
                    throw .option("--lan", prefix.description, "is routed through the WAN \(name) (give --fast-path-lan-interface)")
                }
                if !names.contains(name) { names.append(name) }
            }
        }
        return try names.map { name throws(MasqdError) -> UInt32 in
            let index = if_nametoindex(name)
            guard index != 0 else { throw .option("--fast-path-lan-interface", name, "no such interface") }
            return index
        }
    }

    /// `dev NAME` of the main table's route for exactly the prefix (a connected LAN), else of
    /// `ip route get` for its last address (a LAN behind a gateway; never the router's own).
    static func routedInterface(_ prefix: IPv4Prefix) -> String? {
        func device(_ argv: [String]) -> String? {
            guard let result = try? Shell.run(argv), result.status == 0, !result.stdout.hasPrefix("local ") else { return nil }
            let words = result.stdout.split(whereSeparator: { $0 == " " || $0 == "\n" })
            guard let dev = words.firstIndex(of: "dev"), dev + 1 < words.count else { return nil }
            return String(words[dev + 1])
        }
        let last = IPv4Address(prefix.network.value | ~IPv4Prefix.mask(prefix.length) &- (prefix.length < 31 ? 1 : 0))
        return device(["ip", "-4", "-o", "route", "show", "table", "main", "exact", prefix.description])
            ?? device(["ip", "-4", "-o", "route", "get", "\(last)"])
    }

    /// `rules remove` (the unit's ExecStopPost): takes masqd's tc programs off the WAN and the
    /// LAN interfaces, so that one left by an engine that crashed never translates with its
    /// dead state. With or without --fast-path (it may have been on before the crash).
    static func detachFastPath(_ settings: EngineSettings) {
        var indexes = [if_nametoindex(settings.wanInterface)]
        let lan = settings.fastPath ?? FastPathSettings()
        if let found = try? lanInterfaceIndexes(settings, fastPath: lan, wanIndex: indexes[0]) { indexes += found }
        for index in indexes where index != 0 { FastPathProgram.detach(ifindex: index) }
    }

    func fastPathDescription() -> String? {
        guard let fastPath else { return nil }
        let lan = fastPath.lanIndexes.map { index in
            var name = [CChar](repeating: 0, count: Int(IF_NAMESIZE))
            return if_indextoname(index, &name) != nil ? String(decoding: name.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self) : "\(index)"
        }
        return "fast path: \(fastPath.program.objectPath) on \(settings.wanInterface) (inbound) and \(lan.joined(separator: ", ")) (outbound), map id \(fastPath.program.mapID) (\(fastPath.program.mapCapacity) entries), delay \(Double(fastPath.settings.delay.nanoseconds) / 1e9) s"
    }
}
