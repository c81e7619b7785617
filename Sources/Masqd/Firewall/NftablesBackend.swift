import Foundation
import MasqdShell

// The plan as one nftables table, `table ip masqd` (`masqd_N` for a first queue N other than
// 0, so instances on different queues each own a table): chains at the hooks and priorities
// of the iptables tables (raw prerouting -300, mangle forward/postrouting -150), loaded with
// one `nft -f` script, so the whole set goes in or nothing does. Interfaces are matched by
// name (iifname/oifname), which works before the interface exists (a late PPP WAN).
// `remove` deletes the table: nothing of anyone else's.

enum NftablesBackend {
    static func tableName(_ plan: FirewallPlan) -> String {
        plan.queue.first == 0 ? "masqd" : "masqd_\(plan.queue.first)"
    }

    /// The whole script: creating the table if missing, then deleting it, then declaring it
    /// makes the load idempotent and atomic (one transaction replaces whatever was there).
    static func script(_ plan: FirewallPlan) -> String {
        let table = tableName(plan)
        var lines = ["table ip \(table)", "delete table ip \(table)", "table ip \(table) {"]
        let chains: [(String, FirewallPlan.Hook)] = [("prerouting", .prerouting), ("forward", .forward), ("postrouting", .postrouting), ("output", .output)]
        for (name, hook) in chains {
            let points = plan.points.filter { $0.hook == hook }
            guard !points.isEmpty else { continue }
            lines.append("\tchain \(name) {")
            // OUTPUT as a route chain: an address the verdict changed is routed again (as mangle OUTPUT).
            lines.append("\t\ttype \(hook == .output ? "route" : "filter") hook \(name) priority \(hook.priority); policy accept;")
            // Drops first, then exemptions: a queueing rule of the same chain would otherwise take the packet.
            for point in points.filter({ $0.action == .drop }) + points.filter({ $0.action == .exempt }) + points.filter({ $0.action == .queue }) {
                lines.append("\t\t" + rule(point, plan))
            }
            lines.append("\t}")
        }
        lines.append("}")
        return lines.joined(separator: "\n") + "\n"
    }

    static func rule(_ point: FirewallPlan.SteeringPoint, _ plan: FirewallPlan) -> String {
        var words: [String] = []
        switch point.input {
        case .named(let name): words.append("iifname \(quoted(name))")
        case .notNamed(let name): words.append("iifname != \(quoted(name))")
        case nil: break
        }
        if let output = point.output { words.append("oifname \(quoted(output))") }
        if let source = point.source { words.append("ip saddr \(source)") }
        if let destination = point.destination { words.append("ip daddr \(destination)") }
        if let ipProtocol = point.ipProtocol { words.append("ip protocol \(ipProtocol)") }
        if let port = point.tcpSourcePort { words.append("tcp sport \(port)") }
        if let port = point.tcpDestinationPort { words.append("tcp dport \(port)") }
        if let type = point.sourceType { words.append("fib saddr type \(type == .local ? "" : "!= ")local") }
        if let type = point.destinationType { words.append("fib daddr type \(type == .local ? "" : "!= ")local") }
        if point.reversePathFails { words.append("fib saddr . iif oif missing") }
        words.append("counter")
        switch point.action {
        case .drop: words.append("drop")
        case .exempt: words.append("accept")
        case .queue:
            // A range without `fanout` hashes the address pair (nfqueue_hash, as iptables'
            // --queue-balance): every fragment of a datagram goes to the same queue.
            let numbers = plan.queue.count > 1 ? "\(plan.queue.first)-\(plan.queue.last)" : "\(plan.queue.first)"
            words.append("queue num \(numbers)" + (plan.queue.bypass ? " bypass" : ""))
        }
        words.append("comment \(quoted(plan.comment))")
        return words.joined(separator: " ")
    }

    /// Interface names are checked to hold no quote or backslash (EngineOptions), so this is exact.
    static func quoted(_ text: String) -> String { "\"\(text)\"" }

    static func install(_ plan: FirewallPlan) throws(MasqdError) {
        try load(script(plan), what: "install")
    }

    /// Creating the table if missing and deleting it, in one transaction: idempotent.
    static func remove(_ plan: FirewallPlan) throws(MasqdError) {
        let table = tableName(plan)
        try load("table ip \(table)\ndelete table ip \(table)\n", what: "remove")
    }

    static func load(_ script: String, what: String) throws(MasqdError) {
        let nft = try nftPath()
        guard let outcome = withScriptFile(script, { path in Result { () throws(MasqdError) in try SteeringRules.run([nft, "-f", path]) } }) else {
            throw MasqdError("nft: cannot write the rule script to a private directory in \(NSTemporaryDirectory())")
        }
        let result = try outcome.get()
        guard result.succeeded else {
            throw MasqdError("nft -f (rules \(what)) failed: \(errorLine(result.stderr))")
        }
    }

    /// Runs `body` with the path of a file holding `script`, in a fresh directory only root can
    /// enter (mkdtemp), so no other user can swap the file between writing and loading it.
    static func withScriptFile<T>(_ script: String, _ body: (String) -> T) -> T? {
        var template = Array((NSTemporaryDirectory() + "/masqd-nft-XXXXXX").utf8CString)
        guard let made = mkdtemp(&template) else { return nil }
        let directory = String(cString: made)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/rules.nft"
        guard FileManager.default.createFile(atPath: path, contents: Data(script.utf8)) else { return nil }
        return body(path)
    }

    /// nft's "FILE:L:C: Error: WHY" and the rule it names on the next line, as one line.
    static func errorLine(_ stderr: String) -> String {
        let lines = stderr.split(separator: "\n").map(String.init)
        guard let index = lines.firstIndex(where: { $0.contains("Error: ") }),
              let range = lines[index].range(of: "Error: ") else { return SteeringRules.firstLine(stderr) }
        let why = String(lines[index][range.upperBound...])
        let rule = index + 1 < lines.count ? lines[index + 1].trimmingCharacters(in: .whitespaces) : ""
        return rule.isEmpty ? why : "\(why) (in: \(rule))"
    }

    static func nftPath() throws(MasqdError) -> String {
        guard let path = Shell.which("nft") else {
            throw MasqdError("nft: not found (install the nftables package, or --firewall iptables)")
        }
        return path
    }
}
