import Glibc
import NATCore

// `--fast-path` and its options: the kernel fast path (FastPath.swift). Checked here as far
// as values go; whether the kernel takes the program is known only when `run` loads it
// (Engine-FastPath.swift), which refuses to start with a one-line error if it does not.

public struct FastPathSettings: Sendable, Equatable, CustomStringConvertible {
    /// The BPF object; nil: the default places (`FastPathProgram.defaultObjectPaths`).
    public var objectPath: String?
    /// LAN interfaces by name; empty: those the --lan prefixes are routed through, found at start.
    public var lanInterfaces: [String] = []
    public var maxFlows = 32768
    /// How long a flow stays on the engine's path after becoming two-way.
    public var delay = NATDuration(nanoseconds: 0)

    public init() {}

    init(objectPath: String?, lanInterfaces: [String] = [], maxFlows: Int = 32768, delay: NATDuration = NATDuration(nanoseconds: 0)) {
        self.objectPath = objectPath
        self.lanInterfaces = lanInterfaces
        self.maxFlows = maxFlows
        self.delay = delay
    }

    public var description: String {
        "on (max-flows \(maxFlows), delay \(Double(delay.nanoseconds) / 1e9) s, lan \(lanInterfaces.isEmpty ? "routed" : lanInterfaces.joined(separator: ",")))"
    }
}

extension EngineOptions {
    func checkedFastPath(nat: NATConfiguration) throws(MasqdError) -> FastPathSettings? {
        guard fastPath else {
            for (name, given) in [("--fast-path-lan-interface", fastPathLanInterface.first), ("--fast-path-max-flows", fastPathMaxFlows),
                                  ("--fast-path-delay", fastPathDelay), ("--fast-path-object", fastPathObject)] {
                if let given { throw .option(name, given, "needs --fast-path") }
            }
            return nil
        }
        var settings = FastPathSettings(objectPath: fastPathObject)
        for name in fastPathLanInterface {
            guard !name.isEmpty, name.utf8.count < 16, !name.contains(where: { "/ \"\\".contains($0) }) else {
                throw .option("--fast-path-lan-interface", name, "not an interface name")
            }
            if name == wan { throw .option("--fast-path-lan-interface", name, "is the WAN interface") }
            settings.lanInterfaces.append(name)
        }
        if fastPathLanInterface.isEmpty, nat.internalPrefixes.isEmpty {
            throw MasqdError("--fast-path: needs --lan (to find the LAN interfaces) or --fast-path-lan-interface")
        }
        if let fastPathMaxFlows {
            guard let value = Int(fastPathMaxFlows), (1...1_048_576).contains(value) else {
                throw .option("--fast-path-max-flows", fastPathMaxFlows, "expected a number from 1 to 1048576")
            }
            settings.maxFlows = value
        }
        if let fastPathDelay {
            guard let seconds = Double(fastPathDelay), seconds.isFinite, (0...3600).contains(seconds) else {
                throw .option("--fast-path-delay", fastPathDelay, "expected seconds from 0 to 3600")
            }
            settings.delay = NATDuration(nanoseconds: UInt64(seconds * 1e9))
        }
        // Expiry learns an offloaded flow's last packet every FastPath.syncInterval: a timeout
        // close to that could end a live flow between two readings.
        let shortest = min(nat.timeouts.udp, nat.timeouts.tcpEstablished)
        if shortest < FastPath.shortestTimeout {
            throw MasqdError("--fast-path: the udp and tcp-established timeouts must be at least \(FastPath.shortestTimeout.wholeSeconds) s (the fast path reports activity every second)")
        }
        return settings
    }
}
