import NATCore

// What `masqd replay` is given, as text, and its check. The translator's options are checked
// by the same code as `masqd run`'s (EngineOptions.checkedTranslation), so both accept and
// refuse the same values with the same messages.

public struct ReplayOptions: Sendable {
    /// The WAN (external) address packets are masqueraded behind.
    public var wanAddress: String?
    public var lan: [String] = []
    /// pcapng interface names (if_name) of the router's LAN and WAN sides.
    public var lanInterface: String?
    public var wanInterface: String?
    public var forward: [String] = []
    public var portRange: String?
    public var helpers: String?
    public var helperPorts: [String] = []
    public var filtering: String?
    public var maxFlows: String?
    public var maxFlowsPerHost: String?
    public var maxHelperFlowsPerHost: String?
    public var timeout: [String] = []

    public init() {}

    /// Checks every value; the first bad one is named in the error.
    public func settings() throws(MasqdError) -> ReplaySettings {
        guard let wanAddress else { throw MasqdError("--wan-address: required (the WAN address to masquerade behind)") }
        guard let external = IPv4Address(wanAddress) else {
            throw .option("--wan-address", wanAddress, "not an IPv4 address (A.B.C.D)")
        }
        // Directions are told by the LAN prefixes (which side a source is on), so there is no
        // "every source" default as in `masqd run`, which knows the interface a packet leaves by.
        guard !lan.isEmpty else { throw MasqdError("--lan: required (at least one internal prefix)") }
        // Parsed from no arguments, so every engine option holds its default (a default-built
        // EngineOptions traps on the first option read that was never parsed); then replay's own.
        var engine: EngineOptions
        do { engine = try EngineOptions.parse([]) } catch { throw MasqdError("replay: \(EngineOptions.message(for: error))") }
        engine.lan = lan
        engine.forward = forward
        engine.portRange = portRange
        engine.helpers = helpers
        engine.helperPorts = helperPorts
        engine.filtering = filtering
        engine.maxFlows = maxFlows
        engine.maxFlowsPerHost = maxFlowsPerHost
        engine.maxHelperFlowsPerHost = maxHelperFlowsPerHost
        engine.timeout = timeout
        var (nat, helperNames) = try engine.checkedTranslation()
        if let prefix = nat.internalPrefixes.first(where: { $0.contains(external) }) {
            throw .option("--wan-address", wanAddress, "is inside --lan \(prefix)")
        }
        nat.externalAddress = external
        for (option, name) in [("--lan-interface", lanInterface), ("--wan-interface", wanInterface)] {
            if let name, name.isEmpty { throw MasqdError("\(option): empty interface name") }
        }
        if let lanInterface, lanInterface == wanInterface {
            throw .option("--wan-interface", lanInterface, "is also --lan-interface")
        }
        return ReplaySettings(
            nat: nat, helperNames: helperNames,
            directions: ReplayDirectionRules(wanAddress: external, lanPrefixes: nat.internalPrefixes,
                                             lanInterface: lanInterface, wanInterface: wanInterface))
    }
}

/// A checked replay: the translator's configuration (external address set) and how
/// directions are decided.
public struct ReplaySettings: Sendable {
    public var nat: NATConfiguration
    public var helperNames: [String]
    public var directions: ReplayDirectionRules
}
