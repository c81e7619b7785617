import MasqdShell

// The plan as iptables rules: raw PREROUTING, mangle FORWARD and POSTROUTING, each rule
// inserted at the top of its chain with the plan's comment, so `remove` deletes exactly those.

public struct SteeringRule: Sendable, Equatable {
    public var table: String
    public var chain: String
    /// The rule's match and target, without table, chain or command.
    public var specification: [String]

    /// The shell command that adds this rule (for `rules print`).
    public var installCommand: String {
        (["iptables", "-w", "-t", table, "-I", chain, "1"] + specification).map(SteeringRule.quote).joined(separator: " ")
    }

    static func quote(_ word: String) -> String {
        word.allSatisfy({ $0.isLetter || $0.isNumber || "-_./:=,!".contains($0) }) ? word : "'\(word)'"
    }
}

enum IptablesBackend {
    static func rules(for plan: FirewallPlan) -> [SteeringRule] {
        // Several queues: --queue-balance hashes the address pair (not cpu-fanout, which would
        // split one datagram's fragments over workers that each reassemble their own).
        let queueTarget = plan.queue.count > 1
            ? ["--queue-balance", "\(plan.queue.first):\(plan.queue.last)"]
            : ["--queue-num", String(plan.queue.first)]
        let comment = ["-m", "comment", "--comment", plan.comment]
        // Fail-open (an explicit option): with no engine bound, the kernel accepts the packet
        // untranslated instead of dropping it.
        let queue = comment + ["-j", "NFQUEUE"] + queueTarget + (plan.queue.bypass ? ["--queue-bypass"] : [])
        return plan.points.map { point in
            let (table, chain) = place(point.hook)
            let target = switch point.action {
            case .queue: queue
            case .drop: comment + ["-j", "DROP"]
            case .exempt: comment + ["-j", "ACCEPT"]
            }
            return SteeringRule(table: table, chain: chain, specification: matches(point) + target)
        }
    }

    static func place(_ hook: FirewallPlan.Hook) -> (table: String, chain: String) {
        switch hook {
        case .prerouting: ("raw", "PREROUTING")
        case .forward: ("mangle", "FORWARD")
        case .postrouting: ("mangle", "POSTROUTING")
        case .output: ("mangle", "OUTPUT")
        }
    }

    static func matches(_ point: FirewallPlan.SteeringPoint) -> [String] {
        var words: [String] = []
        switch point.input {
        case .named(let name): words += ["-i", name]
        case .notNamed(let name): words += ["!", "-i", name]
        case nil: break
        }
        if let output = point.output { words += ["-o", output] }
        if let source = point.source { words += ["-s", source.description] }
        if let destination = point.destination { words += ["-d", destination.description] }
        if let ipProtocol = point.ipProtocol { words += ["-p", ipProtocol] }
        if let port = point.tcpSourcePort { words += ["-p", "tcp", "--sport", String(port)] }
        if let port = point.tcpDestinationPort { words += ["-p", "tcp", "--dport", String(port)] }
        if point.sourceType != nil || point.destinationType != nil {
            words += ["-m", "addrtype"]
            if let type = point.sourceType { words += (type == .local ? [] : ["!"]) + ["--src-type", "LOCAL"] }
            if let type = point.destinationType { words += (type == .local ? [] : ["!"]) + ["--dst-type", "LOCAL"] }
        }
        // --accept-local: the router's own addresses as source are the spoofing rule's and the engine's.
        if point.reversePathFails { words += ["-m", "rpfilter", "--accept-local", "--invert"] }
        return words
    }

    /// Adds the missing rules. If one fails, the ones added by this call are taken out again.
    /// Exempt rules go in after the queueing ones and drop rules last (each at the top), so
    /// a chain reads drops, exemptions, queueing.
    static func install(_ plan: FirewallPlan) throws(MasqdError) {
        let iptables = try iptablesPath()
        let all = rules(for: plan)
        let pairs = zip(plan.points, all)
        let ordered = pairs.filter { $0.0.action == .queue } + pairs.filter { $0.0.action == .exempt } + pairs.filter { $0.0.action == .drop }
        var added: [SteeringRule] = []
        for (point, rule) in ordered {
            if try exists(rule, iptables: iptables) {
                // A rule put back above an existing drop or exempt rule would shadow it: reseat it.
                guard point.action != .queue, !added.isEmpty else { continue }
                _ = try run([iptables, "-w", "-t", rule.table, "-D", rule.chain] + rule.specification)
            }
            let result = try run([iptables, "-w", "-t", rule.table, "-I", rule.chain, "1"] + rule.specification)
            guard result.succeeded else {
                for rule in added.reversed() {
                    _ = try? run([iptables, "-w", "-t", rule.table, "-D", rule.chain] + rule.specification)
                }
                throw MasqdError("iptables -t \(rule.table) -I \(rule.chain) failed: \(SteeringRules.firstLine(result.stderr))")
            }
            added.append(rule)
        }
    }

    /// Deletes every copy of our rules; a rule that is absent is fine (idempotent).
    static func remove(_ plan: FirewallPlan) throws(MasqdError) {
        let iptables = try iptablesPath()
        for rule in rules(for: plan) {
            var guardCount = 0
            while try exists(rule, iptables: iptables), guardCount < 64 {
                let result = try run([iptables, "-w", "-t", rule.table, "-D", rule.chain] + rule.specification)
                guard result.succeeded else {
                    throw MasqdError("iptables -t \(rule.table) -D \(rule.chain) failed: \(SteeringRules.firstLine(result.stderr))")
                }
                guardCount += 1
            }
        }
    }

    static func exists(_ rule: SteeringRule, iptables: String) throws(MasqdError) -> Bool {
        try run([iptables, "-w", "-t", rule.table, "-C", rule.chain] + rule.specification).succeeded
    }

    static func iptablesPath() throws(MasqdError) -> String {
        guard let path = Shell.which("iptables") else {
            throw MasqdError("iptables: not found (install the iptables package)")
        }
        return path
    }

    static func run(_ argv: [String]) throws(MasqdError) -> CommandResult {
        try SteeringRules.run(argv)
    }
}
