import Foundation
import Masqd
import MasqdShell

#if canImport(Glibc)
import Glibc
#endif

/// A demo network in four network namespaces, named after a short prefix:
///
///     PREFIX-h1  eth0 192.0.2.10 ─┐
///                                 ├─ br0 192.0.2.1  PREFIX-r (router)  wan0 203.0.113.1 ── eth0 203.0.113.2  PREFIX-s
///     PREFIX-h2  eth0 192.0.2.11 ─┘
///
/// The LAN hosts route via 192.0.2.1; the server has no route to the LAN, so only traffic the
/// router masquerades behind 203.0.113.1 can be answered. Interfaces are created inside the
/// namespaces, so several topologies with different prefixes can exist at once.
///
/// With `farHost`, a fifth namespace sits one hop beyond the server, so the server is a
/// router too (for time-exceeded and path-MTU tests):
///
///     PREFIX-s  far0 198.51.100.1 ── eth0 198.51.100.2  PREFIX-f   (link MTU `farLinkMTU`)
///
/// The router reaches 198.51.100.0/24 via 203.0.113.2; the far host's default route is 198.51.100.1.
public final class LabTopology: @unchecked Sendable {
    public enum Node: String, CaseIterable, Sendable {
        case router = "r", host1 = "h1", host2 = "h2", server = "s", far = "f"
    }

    public static let lanCIDR = "192.0.2.0/24"
    public static let routerLANAddress = "192.0.2.1"
    public static let host1Address = "192.0.2.10"
    public static let host2Address = "192.0.2.11"
    public static let routerWANAddress = "203.0.113.1"
    public static let serverAddress = "203.0.113.2"
    public static let farCIDR = "198.51.100.0/24"
    public static let serverFarAddress = "198.51.100.1"
    public static let farAddress = "198.51.100.2"
    public static let wanInterface = "wan0"
    public static let python = "/usr/bin/python3"

    public let prefix: String
    /// Whether the optional far host (and the server's second link) exists.
    public let farHost: Bool
    /// MTU of both ends of the server–far link.
    public let farLinkMTU: Int
    /// `--firewall` for the rules and the engine; nil: the system's choice.
    public let firewall: FirewallChoice?
    /// Options added to every engine command line of this topology (a test run mode, e.g.
    /// `--fast-path`; a flag the test gives too may be given twice).
    public let modeOptions: [String]
    /// The namespaces this topology builds.
    public var nodes: [Node] { farHost ? Node.allCases : Node.allCases.filter { $0 != .far } }
    /// Scratch directory for the helper script, logs and served files; removed by `destroy`.
    public let workDir: String
    public var helperPath: String { workDir + "/labhelper.py" }
    /// The control socket the engine of this topology uses.
    public var controlPath: String { "/run/masqd/\(prefix).sock" }

    private let lock = NSLock()
    private var background: [BackgroundProcess] = []
    private var closed = false

    /// `prefix`: lower-case letters and digits, at most 12 characters.
    public init(prefix: String, farHost: Bool = false, farLinkMTU: Int = 1500, firewall: FirewallChoice? = nil, modeOptions: [String] = []) throws {
        guard !prefix.isEmpty, prefix.count <= 12,
              prefix.allSatisfy({ $0.isASCII && ($0.isLowercase || $0.isNumber) })
        else { throw ShellError("bad topology prefix '\(prefix)': use 1-12 lower-case letters and digits") }
        guard (576...9000).contains(farLinkMTU) else { throw ShellError("bad far link MTU \(farLinkMTU)") }
        self.prefix = prefix
        self.farHost = farHost
        self.farLinkMTU = farLinkMTU
        self.firewall = firewall
        self.modeOptions = modeOptions
        self.workDir = "/tmp/masqd-lab-\(prefix)"
    }

    public func namespace(_ node: Node) -> String { "\(prefix)-\(node.rawValue)" }

    public static func address(of node: Node) -> String {
        switch node {
        case .router: return routerLANAddress
        case .host1: return host1Address
        case .host2: return host2Address
        case .server: return serverAddress
        case .far: return farAddress
        }
    }

    // MARK: building and tearing down

    /// Builds the namespaces (removing leftovers of an earlier run with the same prefix first).
    public func create() throws {
        removeNamespaces()
        try? FileManager.default.removeItem(atPath: workDir)
        try FileManager.default.createDirectory(atPath: workDir, withIntermediateDirectories: true)
        try LabHelperScript.source.write(toFile: helperPath, atomically: true, encoding: .utf8)

        let r = namespace(.router), s = namespace(.server)
        var steps: [[String]] = []
        for node in nodes {
            steps.append(["ip", "netns", "add", namespace(node)])
            steps.append(["ip", "-n", namespace(node), "link", "set", "lo", "up"])
        }
        steps += [
            ["ip", "-n", r, "link", "add", "br0", "type", "bridge"],
            ["ip", "-n", r, "addr", "add", "\(Self.routerLANAddress)/24", "dev", "br0"],
            ["ip", "-n", r, "link", "set", "br0", "up"],
        ]
        for (index, node) in [Node.host1, .host2].enumerated() {
            let h = namespace(node), port = "lan\(index + 1)"
            steps += [
                ["ip", "-n", r, "link", "add", port, "mtu", "1500", "type", "veth", "peer", "name", "eth0", "mtu", "1500", "netns", h],
                ["ip", "-n", r, "link", "set", port, "master", "br0", "up"],
                ["ip", "-n", h, "addr", "add", "\(Self.address(of: node))/24", "dev", "eth0"],
                ["ip", "-n", h, "link", "set", "eth0", "up"],
                ["ip", "-n", h, "route", "add", "default", "via", Self.routerLANAddress],
            ]
        }
        steps += [
            ["ip", "-n", r, "link", "add", Self.wanInterface, "mtu", "1500", "type", "veth", "peer", "name", "eth0", "mtu", "1500", "netns", s],
            ["ip", "-n", r, "addr", "add", "\(Self.routerWANAddress)/24", "dev", Self.wanInterface],
            ["ip", "-n", r, "link", "set", Self.wanInterface, "up"],
            ["ip", "-n", s, "addr", "add", "\(Self.serverAddress)/24", "dev", "eth0"],
            ["ip", "-n", s, "link", "set", "eth0", "up"],
            ["ip", "netns", "exec", r, "sysctl", "-qw", "net.ipv4.ip_forward=1"],
        ]
        if farHost {
            let f = namespace(.far), mtu = String(farLinkMTU)
            steps += [
                ["ip", "-n", s, "link", "add", "far0", "mtu", mtu, "type", "veth", "peer", "name", "eth0", "mtu", mtu, "netns", f],
                ["ip", "-n", s, "addr", "add", "\(Self.serverFarAddress)/24", "dev", "far0"],
                ["ip", "-n", s, "link", "set", "far0", "up"],
                ["ip", "-n", f, "addr", "add", "\(Self.farAddress)/24", "dev", "eth0"],
                ["ip", "-n", f, "link", "set", "eth0", "up"],
                ["ip", "-n", f, "route", "add", "default", "via", Self.serverFarAddress],
                ["ip", "netns", "exec", s, "sysctl", "-qw", "net.ipv4.ip_forward=1"],
                ["ip", "-n", r, "route", "add", Self.farCIDR, "via", Self.serverAddress],
            ]
        }
        do {
            for step in steps { try Shell.check(step, timeout: 10) }
        } catch {
            destroy()
            throw error
        }
    }

    /// Stops everything started here and removes the namespaces and scratch files. Safe to call twice.
    public func destroy() {
        let running: [BackgroundProcess] = lock.withLock {
            closed = true
            defer { background.removeAll() }
            return background
        }
        for process in running { process.stop(grace: 2) }
        removeNamespaces()
        try? FileManager.default.removeItem(atPath: workDir)
        try? FileManager.default.removeItem(atPath: controlPath)
    }

    private func removeNamespaces() {
        for node in Node.allCases {
            let ns = namespace(node)
            guard FileManager.default.fileExists(atPath: "/run/netns/\(ns)") else { continue }
            // Whatever still runs inside (started through this topology) would keep the namespace alive.
            if let pids = try? Shell.run(["ip", "netns", "pids", ns], timeout: 5) {
                for pid in pids.stdout.split(whereSeparator: \.isWhitespace).compactMap({ Int32($0) }) where pid > 1 {
                    kill(pid, SIGKILL)
                }
            }
            _ = try? Shell.run(["ip", "netns", "del", ns], timeout: 10)
        }
    }

    // MARK: running things inside

    /// Runs a command in a node's namespace and waits for it.
    @discardableResult
    public func run(_ node: Node, _ argv: [String], timeout: Double = 30) throws -> CommandResult {
        try Shell.run(["ip", "netns", "exec", namespace(node)] + argv, timeout: timeout)
    }

    /// Like `run`, but throws with the output unless the command exits 0.
    @discardableResult
    public func check(_ node: Node, _ argv: [String], timeout: Double = 30) throws -> CommandResult {
        try Shell.check(["ip", "netns", "exec", namespace(node)] + argv, timeout: timeout)
    }

    /// Starts a command in a node's namespace in the background; `destroy` stops it.
    /// Its output goes to `workDir/NAME.log`.
    public func spawn(_ node: Node, _ argv: [String], name: String) throws -> BackgroundProcess {
        try lock.withLock {
            guard !closed else { throw ShellError("topology \(prefix) is already torn down") }
            let process = try BackgroundProcess(
                name: name, argv: ["ip", "netns", "exec", namespace(node)] + argv,
                logPath: "\(workDir)/\(name).log")
            background.append(process)
            return process
        }
    }

    /// Starts one of the helper's tools in the background and waits for it to say "ready".
    public func spawnHelper(_ node: Node, _ args: [String], name: String, timeout: Double = 10) throws -> BackgroundProcess {
        let process = try spawn(node, helper(args), name: name)
        guard process.waitForOutput(containing: "ready", timeout: timeout) else {
            process.stop()
            throw ShellError("\(name) (\(args.joined(separator: " "))) did not start in \(namespace(node)):\n\(process.output)")
        }
        return process
    }

    /// The command line that runs one of the helper's tools (ping, udpecho, udpsend, sniff, listen, tcpconnect, http).
    public func helper(_ args: [String]) -> [String] {
        [Self.python, "-u", helperPath] + args
    }

    // MARK: the engine

    /// The ENGINE OPTIONS for this topology.
    public func engineOptions(queue: Int) -> [String] {
        ["--queue", String(queue), "--wan", Self.wanInterface, "--lan", Self.lanCIDR] + (firewall.map { ["--firewall", $0.rawValue] } ?? []) + modeOptions
    }

    /// Runs `masqd ARGS` in the router namespace.
    @discardableResult
    public func masqd(_ executable: String, _ args: [String], timeout: Double = 30) throws -> CommandResult {
        try run(.router, [executable] + args, timeout: timeout)
    }

    /// `masqd rules install` for this topology.
    public func installRules(masqd executable: String, queue: Int) throws {
        let result = try masqd(executable, ["rules", "install"] + engineOptions(queue: queue))
        guard result.succeeded else { throw ShellError("rules install failed: \(result.summary)") }
    }

    /// Starts `masqd run` in the router namespace and waits until `masqd stats` answers.
    public func startEngine(masqd executable: String, queue: Int, extra: [String] = [], timeout: Double = 10) throws -> BackgroundProcess {
        try FileManager.default.createDirectory(atPath: "/run/masqd", withIntermediateDirectories: true)
        let engine = try spawn(.router, [executable, "run"] + engineOptions(queue: queue) + ["--control", controlPath] + extra, name: "masqd")
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if !engine.isRunning {
                throw ShellError("masqd run exited with status \(engine.exitStatus ?? -1) before it was ready:\n\(engine.output)")
            }
            if let stats = try? masqd(executable, ["stats", "--control", controlPath], timeout: 5), stats.succeeded {
                return engine
            }
            usleep(100_000)
        }
        engine.stop()
        throw ShellError("masqd run did not answer `masqd stats` within \(Int(timeout)) s:\n\(engine.output)")
    }
}
