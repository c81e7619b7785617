import Glibc
// The iptables rules that steer traffic into the queue (KERNEL-FACTS facts 1, 4, 6):
// inbound from the WAN in raw PREROUTING (before routing, so a rewritten destination is
// routed to the LAN host), outbound to the WAN in mangle POSTROUTING (after routing).
// No rule uses conntrack, so fragments and packets reach the engine untouched by it.
// Every rule carries a comment naming the queue: `remove` deletes exactly those.

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

public enum SteeringRules {
    public static func comment(queue: UInt16, count: UInt16 = 1) -> String {
        count > 1 ? "masqd queues \(queue)-\(queue + count - 1)" : "masqd queue \(queue)"
    }

    public static func rules(for settings: EngineSettings) -> [SteeringRule] {
        // Several queues: --queue-balance hashes the address pair (not cpu-fanout, which would
        // split one datagram's fragments over workers that each reassemble their own).
        let queueTarget = settings.queueCount > 1
            ? ["--queue-balance", "\(settings.queue):\(settings.queue + settings.queueCount - 1)"]
            : ["--queue-num", String(settings.queue)]
        // Fail-open (an explicit option): with no engine bound, the kernel accepts the packet
        // untranslated instead of dropping it.
        let target = ["-m", "comment", "--comment", comment(queue: settings.queue, count: settings.queueCount),
                      "-j", "NFQUEUE"] + queueTarget + (settings.failOpen ? ["--queue-bypass"] : [])
        var rules = [SteeringRule(table: "raw", chain: "PREROUTING", specification: ["-i", settings.wanInterface] + target)]
        if settings.internalPrefixes.isEmpty {
            // Every source that is not one of the router's own addresses.
            rules.append(SteeringRule(table: "mangle", chain: "POSTROUTING", specification:
                ["-o", settings.wanInterface, "-m", "addrtype", "!", "--src-type", "LOCAL"] + target))
        } else {
            for prefix in settings.internalPrefixes {
                rules.append(SteeringRule(table: "mangle", chain: "POSTROUTING", specification:
                    ["-o", settings.wanInterface, "-s", prefix.description] + target))
            }
        }
        if settings.hairpin {
            // From inside to one of the router's own addresses: the engine hairpins those for
            // the external address and a mapped or forwarded port, and passes the rest.
            let sources = settings.internalPrefixes.isEmpty ? [[String]()] : settings.internalPrefixes.map { ["-s", $0.description] }
            for source in sources {
                rules.append(SteeringRule(table: "raw", chain: "PREROUTING", specification:
                    ["!", "-i", settings.wanInterface] + source + ["-m", "addrtype", "--dst-type", "LOCAL"] + target))
            }
            // accept_local (which hairpinning needs) also lets a LAN host send with one of the
            // router's own addresses as source, and such a packet matches no rule above: it
            // would leave untranslated. The router never forwards its own packets, and
            // hairpinned ones leave inside, so whatever this queues is spoofed: the engine
            // drops it (drop_spoofed_source).
            rules.append(SteeringRule(table: "mangle", chain: "FORWARD", specification:
                ["-o", settings.wanInterface, "-m", "addrtype", "--src-type", "LOCAL"] + target))
        }
        // The router's own ICMP errors about packets it forwarded inbound quote internal
        // addresses; the engine translates their quoted packet.
        rules.append(SteeringRule(table: "mangle", chain: "POSTROUTING", specification:
            ["-o", settings.wanInterface, "-p", "icmp", "-m", "addrtype", "--src-type", "LOCAL"] + target))
        return rules
    }

    /// A hairpinned packet reaches routing with the router's external address as its source;
    /// Linux drops such a "martian" unless accept_local is set (rp_filter must be 0 or 2).
    public static let acceptLocalPath = "/proc/sys/net/ipv4/conf/all/accept_local"

    /// Adds the missing rules. If one fails, the ones added by this call are taken out again.
    public static func install(_ settings: EngineSettings) throws(MasqdError) {
        try checkInterface(settings.wanInterface)
        if settings.hairpin, !writeSysctl(acceptLocalPath, "1") {
            throw MasqdError("cannot set \(acceptLocalPath) to 1 (needed for hairpinning; --no-hairpin to do without)")
        }
        let iptables = try iptablesPath()
        var added: [SteeringRule] = []
        for rule in rules(for: settings) {
            if try exists(rule, iptables: iptables) { continue }
            let result = try run([iptables, "-w", "-t", rule.table, "-I", rule.chain, "1"] + rule.specification)
            guard result.succeeded else {
                for rule in added.reversed() {
                    _ = try? run([iptables, "-w", "-t", rule.table, "-D", rule.chain] + rule.specification)
                }
                throw MasqdError("iptables -t \(rule.table) -I \(rule.chain) failed: \(firstLine(result.stderr))")
            }
            added.append(rule)
        }
    }

    /// Deletes every copy of our rules; a rule that is absent is fine (idempotent).
    public static func remove(_ settings: EngineSettings) throws(MasqdError) {
        let iptables = try iptablesPath()
        for rule in rules(for: settings) {
            var guardCount = 0
            while try exists(rule, iptables: iptables), guardCount < 64 {
                let result = try run([iptables, "-w", "-t", rule.table, "-D", rule.chain] + rule.specification)
                guard result.succeeded else {
                    throw MasqdError("iptables -t \(rule.table) -D \(rule.chain) failed: \(firstLine(result.stderr))")
                }
                guardCount += 1
            }
        }
    }

    /// Sets a sysctl, leaving it untouched when it already has the value (so a sandbox that
    /// makes /proc/sys read-only is fine once the value is in place, e.g. from sysctl.d).
    static func writeSysctl(_ path: String, _ value: String) -> Bool {
        let current = open(path, O_RDONLY)
        if current >= 0 {
            var buffer = [UInt8](repeating: 0, count: 16)
            let n = read(current, &buffer, buffer.count)
            close(current)
            if n > 0, String(decoding: buffer[0..<n], as: UTF8.self).trimmingSpaces == value { return true }
        }
        let fd = open(path, O_WRONLY)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        return value.withCString { write(fd, $0, strlen($0)) } == value.utf8.count
    }

    public static func checkInterface(_ name: String) throws(MasqdError) {
        guard InterfaceAddressMonitor.interfaceExists(name) else {
            throw .option("--wan", name, "no such interface")
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
        do {
            return try Shell.run(argv, timeout: 30)
        } catch {
            throw MasqdError("\(argv[0]): \(error)")
        }
    }

    static func firstLine(_ text: String) -> String {
        text.split(separator: "\n").first.map(String.init) ?? "no message"
    }
}

extension String {
    var trimmingSpaces: String {
        String(self.drop(while: { $0 == " " || $0 == "\n" }).reversed().drop(while: { $0 == " " || $0 == "\n" }).reversed())
    }
}
