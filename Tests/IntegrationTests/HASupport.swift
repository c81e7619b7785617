@testable import Masqd
@testable import MasqdShell
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Two routers A and B for the HA tests (issue #18), each with a LAN and a WAN leg: the LAN
/// host's namespace holds the LAN switch (a bridge with its own address on it), the server's
/// the WAN switch. keepalived moves the virtual addresses 192.0.2.1 (the host's gateway) and
/// 203.0.113.1 (masqd's --virtual-address) between A and B; the sync channel runs on the LAN.
/// Namespaces mq<pid><tag>-a|b|h|s, so concurrent runs never meet.
final class HATopology: @unchecked Sendable {
    enum Node: String { case a, b, host = "h", server = "s" }

    static let lanVIP = "192.0.2.1", wanVIP = "203.0.113.1"
    static let host = "192.0.2.10", server = "203.0.113.100"
    static let lanCIDR = "192.0.2.0/24"
    static let syncPort = 7400

    let prefix: String
    let workDir: String
    let queue: Int
    private let lock = NSLock()
    private var processes: [BackgroundProcess] = []

    init(tag: String, queue: Int) {
        prefix = Integration.prefix(tag)
        workDir = "/tmp/masqd-\(prefix)"
        self.queue = queue
    }

    /// Python for scripts that print from two threads: one lock, so a line is never cut by
    /// another thread's (print writes the text and the newline separately, and a test reads
    /// the output line by line).
    static let lockedPrintPython = """
        import builtins, threading
        printing = threading.Lock()
        def print(*args, **kwargs):
            with printing:
                builtins.print(*args, **kwargs)
        """

    /// Python for the HA tests' server: `listener(port)`, and `serve_idle(listener, trigger)`,
    /// which accepts one connection, prints its peer and first line, then sends a line each time
    /// the file TRIGGER-N appears and prints the answer with the peer it came from.
    static let idleServerPython = """
        import os, socket, time
        \(lockedPrintPython)
        def listener(port):
            t = socket.socket(); t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            t.bind(("", port)); t.listen(4); return t
        def serve_idle(idle, trigger):
            c, peer = idle.accept(); print("idle from %s:%d" % peer, flush=True)
            f = c.makefile("rb")
            print("idle got %s" % f.readline().decode().strip(), flush=True)
            n = 1
            while True:
                while not os.path.exists("%s-%d" % (trigger, n)): time.sleep(0.02)
                c.sendall(b"line-%d\\n" % n)
                reply = f.readline().decode().strip()
                print("idle reply %s from %s:%d" % ((reply,) + c.getpeername()), flush=True)
                n += 1
        """

    /// Python for the HA tests' LAN host: `echo_lines(sock)` echoes each line that comes until
    /// the connection closes.
    static let idleClientPython = """
        \(lockedPrintPython)
        def echo_lines(idle):
            f = idle.makefile("rb")
            while True:
                line = f.readline().decode().strip()
                if not line: print("idle closed", flush=True); break
                idle.sendall(("echo %s\\n" % line).encode())
        """

    /// A lab for an HA test (keepalived required): namespaces made, `scripts` (file name:
    /// Python) written to its work directory. The caller destroys it.
    static func make(tag: String, scripts: [String: String]) throws -> HATopology {
        guard Shell.which("keepalived") != nil else {
            throw IntegrationFailure("keepalived is missing (Deploy/install-deps.sh --tests installs it)")
        }
        let lab = HATopology(tag: tag, queue: Integration.queue(0))
        try lab.create()
        do {
            for (name, text) in scripts { try text.write(toFile: lab.workDir + "/" + name, atomically: true, encoding: .utf8) }
        } catch {
            lab.destroy()
            throw error
        }
        return lab
    }

    func namespace(_ node: Node) -> String { "\(prefix)-\(node.rawValue)" }
    static func lanAddress(_ router: Node) -> String { router == .a ? "192.0.2.2" : "192.0.2.3" }
    static func wanAddress(_ router: Node) -> String { router == .a ? "203.0.113.2" : "203.0.113.3" }
    static func peer(of router: Node) -> Node { router == .a ? .b : .a }
    func controlPath(_ router: Node) -> String { "/run/masqd/\(prefix)-\(router.rawValue).sock" }
    var keyPath: String { workDir + "/sync.key" }

    func create() throws {
        destroy()
        try FileManager.default.createDirectory(atPath: workDir, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: "/run/masqd", withIntermediateDirectories: true)
        try "an example shared secret for the two routers\n".write(toFile: keyPath, atomically: false, encoding: .utf8)
        chmod(keyPath, 0o600)
        var steps: [[String]] = []
        for node in [Node.a, .b, .host, .server] {
            steps += [["ip", "netns", "add", namespace(node)], ["ip", "-n", namespace(node), "link", "set", "lo", "up"]]
        }
        let h = namespace(.host), s = namespace(.server)
        steps += [
            ["ip", "-n", h, "link", "add", "br0", "type", "bridge"], ["ip", "-n", h, "link", "set", "br0", "up"],
            ["ip", "-n", h, "addr", "add", "\(Self.host)/24", "dev", "br0"],
            ["ip", "-n", s, "link", "add", "br0", "type", "bridge"], ["ip", "-n", s, "link", "set", "br0", "up"],
            ["ip", "-n", s, "addr", "add", "\(Self.server)/24", "dev", "br0"],
        ]
        for router in [Node.a, .b] {
            let r = namespace(router), side = router.rawValue
            steps += [
                ["ip", "-n", h, "link", "add", "l\(side)", "type", "veth", "peer", "name", "lan0", "netns", r],
                ["ip", "-n", h, "link", "set", "l\(side)", "master", "br0", "up"],
                ["ip", "-n", s, "link", "add", "w\(side)", "type", "veth", "peer", "name", "wan0", "netns", r],
                ["ip", "-n", s, "link", "set", "w\(side)", "master", "br0", "up"],
                ["ip", "-n", r, "addr", "add", "\(Self.lanAddress(router))/24", "dev", "lan0"],
                ["ip", "-n", r, "addr", "add", "\(Self.wanAddress(router))/24", "dev", "wan0"],
                ["ip", "-n", r, "link", "set", "lan0", "up"], ["ip", "-n", r, "link", "set", "wan0", "up"],
                ["ip", "netns", "exec", r, "sysctl", "-qw", "net.ipv4.ip_forward=1"],
            ]
        }
        steps.append(["ip", "-n", h, "route", "add", "default", "via", Self.lanVIP])
        do {
            for step in steps { try Shell.check(step, timeout: 10) }
        } catch {
            destroy()
            throw error
        }
    }

    func destroy() {
        let running: [BackgroundProcess] = lock.withLock { defer { processes.removeAll() }; return processes }
        for process in running { process.stop(grace: 2) }
        for node in [Node.a, .b, .host, .server] {
            let ns = namespace(node)
            guard FileManager.default.fileExists(atPath: "/run/netns/\(ns)") else { continue }
            // keepalived's VRRP child and the notify scripts were started inside: end them with it.
            if let pids = try? Shell.run(["ip", "netns", "pids", ns], timeout: 5) {
                for pid in pids.stdout.split(whereSeparator: \.isWhitespace).compactMap({ Int32($0) }) where pid > 1 { kill(pid, SIGKILL) }
            }
            _ = try? Shell.run(["ip", "netns", "del", ns], timeout: 10)
        }
        for router in [Node.a, .b] { unlink(controlPath(router)) }
        try? FileManager.default.removeItem(atPath: workDir)
    }

    @discardableResult
    func run(_ node: Node, _ argv: [String], timeout: Double = 30) throws -> CommandResult {
        try Shell.run(["ip", "netns", "exec", namespace(node)] + argv, timeout: timeout)
    }

    func spawn(_ node: Node, _ argv: [String], name: String) throws -> BackgroundProcess {
        let process = try BackgroundProcess(name: name, argv: ["ip", "netns", "exec", namespace(node)] + argv, logPath: "\(workDir)/\(name).log")
        lock.withLock { processes.append(process) }
        return process
    }

    func engineOptions(_ router: Node) -> [String] {
        ["--queue", String(queue), "--wan", "wan0", "--lan", Self.lanCIDR]
    }

    func haOptions(_ router: Node) -> [String] {
        ["--virtual-address", Self.wanVIP, "--role", "standby", "--sync-key", keyPath,
         "--sync-listen", "\(Self.lanAddress(router)):\(Self.syncPort)", "--sync-peer", "\(Self.lanAddress(Self.peer(of: router))):\(Self.syncPort)"]
    }

    /// Rules in, then `masqd run` as standby (with `extra` options); waits until it answers `masqd stats`.
    func startMasqd(_ router: Node, masqd: String, name: String, extra: [String] = []) throws -> BackgroundProcess {
        let rules = try run(router, [masqd, "rules", "install"] + engineOptions(router))
        guard rules.succeeded else { throw IntegrationFailure("rules install in \(router): \(rules.summary)") }
        let engine = try spawn(router, [masqd, "run"] + engineOptions(router) + haOptions(router) + extra + ["--control", controlPath(router)], name: name)
        let ready = Semantics.waitUntil(timeout: 10) { (try? stats(router, masqd: masqd)) != nil || !engine.isRunning }
        guard ready, engine.isRunning else { throw IntegrationFailure("\(name) did not come up:\n\(engine.output)") }
        return engine
    }

    /// `masqd stats` of a router as numbers (the info line `external_address` left out).
    func stats(_ router: Node, masqd: String) throws -> [String: Int] {
        let result = try run(router, [masqd, "stats", "--control", controlPath(router)], timeout: 5)
        guard result.succeeded else { throw IntegrationFailure("stats of \(router): \(result.summary)") }
        return Semantics.counters(result.stdout)
    }

    /// The shipped Deploy/keepalived/keepalived.conf, rewritten for this router: its
    /// interfaces and addresses, B's lower priority, a 0.1 s advert interval, and the shipped
    /// notify script called with this build's masqd and this router's control socket.
    func keepalivedConfiguration(_ router: Node, masqd: String, repository: String) throws -> String {
        var text = try String(contentsOfFile: repository + "/Deploy/keepalived/keepalived.conf", encoding: .utf8)
        let me = router, other = Self.peer(of: router)
        let replacements: [(String, String)] = [
            ("192.168.1.2", "@LAN-A@"), ("192.168.1.3", "@LAN-B@"), ("198.51.100.2", "@WAN-A@"), ("198.51.100.3", "@WAN-B@"),
            ("unicast_src_ip @LAN-A@", "unicast_src_ip \(Self.lanAddress(me))"), ("unicast_src_ip @WAN-A@", "unicast_src_ip \(Self.wanAddress(me))"),
            ("@LAN-B@", Self.lanAddress(other)), ("@WAN-B@", Self.wanAddress(other)),
            ("192.168.1.1/24 dev eth1", "\(Self.lanVIP)/24 dev lan0"), ("198.51.100.1/24 dev eth0", "\(Self.wanVIP)/24 dev wan0"),
            ("interface eth1", "interface lan0"), ("interface eth0", "interface wan0"),
            ("advert_int 0.2", "advert_int 0.1"), ("router_id masqd-a", "router_id \(prefix)-\(me.rawValue)"),
            ("virtual_router_id 51", "virtual_router_id \(51 + getpid() % 100)"), ("virtual_router_id 52", "virtual_router_id \(151 + getpid() % 100)"),
            ("/etc/keepalived/masqd-notify active\"", "\(repository)/Deploy/keepalived/masqd-notify active \(masqd) \(controlPath(me))\""),
            ("/etc/keepalived/masqd-notify standby\"", "\(repository)/Deploy/keepalived/masqd-notify standby \(masqd) \(controlPath(me))\""),
        ] + (router == .b ? [("priority 150", "priority 100")] : [])
        for (old, new) in replacements {
            guard text.contains(old) else { throw IntegrationFailure("Deploy/keepalived/keepalived.conf has no '\(old)' any more") }
            text = text.replacingOccurrences(of: old, with: new)
        }
        return text
    }

    /// keepalived (VRRP only, in the foreground, logging to its log) in a router.
    func startKeepalived(_ router: Node, masqd: String, repository: String, name: String) throws -> BackgroundProcess {
        let configuration = "\(workDir)/keepalived-\(router.rawValue).conf"
        try keepalivedConfiguration(router, masqd: masqd, repository: repository).write(toFile: configuration, atomically: true, encoding: .utf8)
        return try spawn(router, ["keepalived", "-n", "-l", "-P", "-D", "-f", configuration,
                                  "-p", "\(workDir)/\(name).pid", "-r", "\(workDir)/\(name)-vrrp.pid"], name: name)
    }

    /// The two routers' processes of a test.
    struct Pair {
        let masqdA, masqdB, keepalivedA, keepalivedB: BackgroundProcess
    }

    /// masqd on both routers (with `extra`), keepalived on A until A is active, then on B
    /// until it is backup and its masqd holds A's first full resync.
    func startPair(masqd: String, repository: String, extra: [String] = []) throws -> Pair {
        let masqdA = try startMasqd(.a, masqd: masqd, name: "masqd-a", extra: extra)
        let masqdB = try startMasqd(.b, masqd: masqd, name: "masqd-b", extra: extra)
        let keepalivedA = try startKeepalived(.a, masqd: masqd, repository: repository, name: "keepalived-a")
        let aActive = Semantics.waitUntil(timeout: 15) { (try? stats(.a, masqd: masqd))?["role_active"] == 1 }
        guard aActive else { throw IntegrationFailure("A never became active:\n\(keepalivedA.output)\n\(masqdA.output)") }
        let keepalivedB = try startKeepalived(.b, masqd: masqd, repository: repository, name: "keepalived-b")
        guard keepalivedB.waitForOutput(containing: "Entering BACKUP STATE", timeout: 10) else { throw IntegrationFailure("B:\n\(keepalivedB.output)") }
        let synced = Semantics.waitUntil(timeout: 10) { ((try? stats(.b, masqd: masqd))?["sync_resyncs_received"] ?? 0) >= 1 }
        guard synced else { throw IntegrationFailure("B never received a resync: \((try? stats(.b, masqd: masqd)) ?? [:])\n\(masqdB.output)") }
        return Pair(masqdA: masqdA, masqdB: masqdB, keepalivedA: keepalivedA, keepalivedB: keepalivedB)
    }

    /// SIGKILL of keepalived (the parent and its VRRP child) and masqd, then the router's links
    /// cut: a router that died, not one that stopped politely.
    func killRouter(_ router: Node, keepalived: BackgroundProcess, keepalivedName: String, masqd: BackgroundProcess) throws {
        if let text = try? String(contentsOfFile: "\(workDir)/\(keepalivedName)-vrrp.pid", encoding: .utf8),
           let child = Int32(text.trimmingCharacters(in: .whitespacesAndNewlines)) {
            kill(child, SIGKILL)
        }
        kill(keepalived.pid, SIGKILL)
        kill(masqd.pid, SIGKILL)
        try Shell.check(["ip", "-n", namespace(router), "link", "set", "lan0", "down"])
        try Shell.check(["ip", "-n", namespace(router), "link", "set", "wan0", "down"])
    }

    /// `killRouter`, then waits until the peer is active: the seconds that took, and the
    /// peer's stats then. `peerLog`: what to show when it never takes over.
    func killAndTakeOver(_ router: Node, keepalived: BackgroundProcess, keepalivedName: String, engine: BackgroundProcess,
                         masqd: String, peerLog: () -> String) throws -> (seconds: Double, stats: [String: Int]) {
        let peer = Self.peer(of: router)
        let killed = Date()
        try killRouter(router, keepalived: keepalived, keepalivedName: keepalivedName, masqd: engine)
        let tookOver = Semantics.waitUntil(timeout: 10) { (try? stats(peer, masqd: masqd))?["role_active"] == 1 }
        let seconds = Date().timeIntervalSince(killed)
        guard tookOver else { throw IntegrationFailure("\(peer) never became active:\n\(peerLog())") }
        return (seconds, try stats(peer, masqd: masqd))
    }

    /// The router boots again: no virtual address left on it (a reboot clears them), links up.
    func reviveRouter(_ router: Node) throws {
        _ = try run(router, ["ip", "addr", "del", "\(Self.lanVIP)/24", "dev", "lan0"])
        _ = try run(router, ["ip", "addr", "del", "\(Self.wanVIP)/24", "dev", "wan0"])
        try Shell.check(["ip", "-n", namespace(router), "link", "set", "lan0", "up"])
        try Shell.check(["ip", "-n", namespace(router), "link", "set", "wan0", "up"])
    }
}
