import Glibc
import MasqdShell

// The rules that steer traffic into the queue: the settings make one FirewallPlan, a backend
// writes it (Firewall/). Every rule carries a comment naming the queue: `remove` deletes
// exactly those.

public enum SteeringRules {
    public static func comment(queue: UInt16, count: UInt16 = 1) -> String {
        count > 1 ? "masqd queues \(queue)-\(queue + count - 1)" : "masqd queue \(queue)"
    }

    /// The iptables rules for these settings.
    public static func rules(for settings: EngineSettings) -> [SteeringRule] {
        IptablesBackend.rules(for: FirewallPlan(settings))
    }

    /// What `rules print` shows: shell commands that would install the rules.
    public static func printed(_ settings: EngineSettings) -> [String] {
        let plan = FirewallPlan(settings)
        let sysctl = plan.needsAcceptLocal ? ["sysctl -w net.ipv4.conf.all.accept_local=1"] : []
        switch backend(settings) {
        case .iptables: return sysctl + IptablesBackend.rules(for: plan).map(\.installCommand)
        case .nft: return sysctl + ["nft -f - <<'EOF'"] + NftablesBackend.script(plan).split(separator: "\n").map(String.init) + ["EOF"]
        }
    }

    public static func backend(_ settings: EngineSettings) -> FirewallChoice {
        settings.firewall ?? FirewallChoice.systemDefault()
    }

    /// A hairpinned packet reaches routing with the router's external address as its source;
    /// Linux drops such a "martian" unless accept_local is set (rp_filter must be 0 or 2).
    public static let acceptLocalPath = "/proc/sys/net/ipv4/conf/all/accept_local"

    /// Adds the missing rules (idempotent). The WAN interface need not exist yet: the rules
    /// match it by name, so they hold from the moment it appears (a late PPP or modem link).
    /// Returns a note for the output when it does not.
    @discardableResult
    public static func install(_ settings: EngineSettings) throws(MasqdError) -> String? {
        let plan = FirewallPlan(settings)
        if plan.needsAcceptLocal, !writeSysctl(acceptLocalPath, "1") {
            throw MasqdError("cannot set \(acceptLocalPath) to 1 (needed for hairpinning; --no-hairpin to do without)")
        }
        switch backend(settings) {
        case .iptables: try IptablesBackend.install(plan)
        case .nft: try NftablesBackend.install(plan)
        }
        guard InterfaceAddressMonitor.interfaceExists(settings.wanInterface) else {
            return "--wan \(settings.wanInterface): no such interface yet; the rules match it by name and apply once it appears"
        }
        return nil
    }

    /// Deletes every copy of our rules; a rule that is absent is fine (idempotent).
    public static func remove(_ settings: EngineSettings) throws(MasqdError) {
        switch backend(settings) {
        case .iptables: try IptablesBackend.remove(FirewallPlan(settings))
        case .nft: try NftablesBackend.remove(FirewallPlan(settings))
        }
        Engine.detachFastPath(settings)
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
