import Dispatch
import Foundation
import Masqd
import MasqdShell

#if canImport(Glibc)
import Glibc
#endif

/// `masqd lab`: builds the demo network in namespaces, runs the engine in its router and shows
/// traffic crossing it. Everything it creates is removed at the end, also on Ctrl-C.
public enum Lab {
    static let prefix = "mqlab"
    static let queue = 0
    static let httpPort = 8080
    static let udpPort = 9999
    static let udpSourcePort = 40000

    public static func run(masqdExecutable: String) throws -> Int32 {
        guard Shell.isRoot else {
            printErr("masqd lab: must run as root (it creates network namespaces and iptables rules)")
            return 1
        }
        let missing = missingTools()
        guard missing.isEmpty else {
            printErr("masqd lab: missing tools: \(missing.map(\.tool).joined(separator: ", ")); install with: apt-get install -y \(missing.map(\.package).joined(separator: " "))")
            return 1
        }

        let topology = try LabTopology(prefix: prefix)
        let interrupts = installSignalHandlers(topology)
        signal(SIGPIPE, SIG_IGN)
        defer {
            interrupts.forEach { $0.cancel() }
            signal(SIGINT, SIG_DFL)
            signal(SIGTERM, SIG_DFL)
            signal(SIGPIPE, SIG_DFL)
        }

        var ok = false
        do {
            ok = try demo(topology, masqd: masqdExecutable)
        } catch {
            say("FAILED: \(error)")
        }
        // After Ctrl-C the signal handler owns the cleanup and the exit status (130).
        while interruption.isSet { pause() }
        heading("Cleaning up")
        topology.destroy()
        say("namespaces \(prefix)-{r,h1,h2,s} removed")
        return ok ? 0 : 1
    }

    // MARK: the demo

    static func demo(_ lab: LabTopology, masqd: String) throws -> Bool {
        var ok = true
        heading("Building the demo network")
        try lab.create()
        let h1 = "  \(lab.namespace(.host1))  192.0.2.10 ─", h2 = "  \(lab.namespace(.host2))  192.0.2.11 ─"
        let pad = String(repeating: " ", count: h1.count)
        say(h1 + "┐")
        say(pad + "├─ br0 192.0.2.1 [\(lab.namespace(.router)): masqd, NFQUEUE \(queue)] wan0 203.0.113.1 ── 203.0.113.2 [\(lab.namespace(.server))]")
        say(h2 + "┘")
        say("The server has no route to 192.0.2.0/24: it can only answer traffic masqueraded behind 203.0.113.1.")

        heading("Starting the engine")
        try lab.installRules(masqd: masqd, queue: queue)
        let engine = try lab.startEngine(masqd: masqd, queue: queue)
        say("$ masqd run \(lab.engineOptions(queue: queue).joined(separator: " ")) --control \(lab.controlPath)   (pid \(engine.pid))")
        if (lab.firewall ?? FirewallChoice.systemDefault()) == .nft {
            let table = try lab.run(.router, ["nft", "list", "table", "ip", queue == 0 ? "masqd" : "masqd_\(queue)"])
            say("nft rules in the router:")
            for line in table.lines where line.contains("comment \"masqd") { say("  " + line.trimmingCharacters(in: .whitespaces)) }
        } else {
            let rules = try lab.run(.router, ["iptables-save"])
            say("iptables rules in the router:")
            for line in rules.lines where line.contains("masqd queue") { say("  " + line) }
        }

        heading("ping: both LAN hosts -> server 203.0.113.2, same ICMP identifier 4660")
        let pings = try [LabTopology.Node.host1, .host2].map { node in
            (node, try lab.spawn(node, lab.helper(["ping", LabTopology.serverAddress, "--count", "3", "--id", "4660"]), name: "ping-\(node.rawValue)"))
        }
        for (node, ping) in pings {
            let status = ping.waitForExit(timeout: 20)
            say("\(lab.namespace(node)) (\(LabTopology.address(of: node))):")
            ping.lines.forEach { say("  " + $0) }
            if status != 0 { ok = false; say("  FAILED") }
        }

        heading("HTTP: \(lab.namespace(.host1)) downloads 4 MiB from http://203.0.113.2:\(httpPort)/")
        let www = lab.workDir + "/www"
        try FileManager.default.createDirectory(atPath: www, withIntermediateDirectories: true)
        try randomBytes(4 << 20).write(to: URL(fileURLWithPath: www + "/demo.bin"))
        let http = try lab.spawnHelper(.server, ["http", www, String(httpPort)], name: "http")
        let download = lab.workDir + "/download.bin"
        let curl = try lab.run(.host1, ["curl", "-sS", "--max-time", "30", "-o", download, "-w", "%{size_download} bytes in %{time_total} s (%{speed_download} bytes/s)",
                                        "http://\(LabTopology.serverAddress):\(httpPort)/demo.bin"], timeout: 40)
        let same = FileManager.default.contentsEqual(atPath: download, andPath: www + "/demo.bin")
        say("curl: \(curl.output.trimmingCharacters(in: .whitespacesAndNewlines)); content \(same ? "identical" : "DIFFERENT")")
        if !curl.succeeded || !same { ok = false; say("FAILED") }
        say("server log (the client must be 203.0.113.1):")
        http.lines.filter { $0.contains("http client") }.forEach { say("  " + $0) }
        http.stop()

        heading("UDP: both LAN hosts send from port \(udpSourcePort) to 203.0.113.2:\(udpPort)")
        let echo = try lab.spawnHelper(.server, ["udpecho", String(udpPort)], name: "udpecho")
        for node in [LabTopology.Node.host1, .host2] {
            let reply = try lab.run(node, lab.helper(["udpsend", LabTopology.serverAddress, String(udpPort), "--sport", String(udpSourcePort),
                                                      "--msg", "hello from \(lab.namespace(node))"]), timeout: 15)
            say("\(lab.namespace(node)): \(reply.output.trimmingCharacters(in: .whitespacesAndNewlines))")
            if !reply.succeeded { ok = false; say("  FAILED") }
        }
        say("server log (same LAN port, two different WAN ports):")
        echo.lines.filter { $0.hasPrefix("udp from") }.forEach { say("  " + $0) }

        heading("masqd flows")
        let flows = try lab.masqd(masqd, ["flows", "--control", lab.controlPath])
        flows.lines.forEach { say("  " + $0) }
        heading("masqd stats")
        let stats = try lab.masqd(masqd, ["stats", "--control", lab.controlPath])
        let zero = stats.lines.filter { $0.hasSuffix(" 0") && !$0.hasPrefix("queue ") }
        stats.lines.filter { !zero.contains($0) }.forEach { say("  " + $0) }
        if !zero.isEmpty { say("  (\(zero.count) counters at 0 not shown)") }

        if !engine.isRunning {
            ok = false
            say("FAILED: the engine exited with status \(engine.exitStatus ?? -1):\n\(engine.output)")
        }
        engine.stop()
        _ = try? lab.masqd(masqd, ["rules", "remove"] + lab.engineOptions(queue: queue))
        heading(ok ? "All traffic crossed the router masqueraded behind 203.0.113.1" : "Some steps FAILED (see above)")
        return ok
    }

    // MARK: plumbing

    static func randomBytes(_ count: Int) throws -> Data {
        guard let urandom = FileHandle(forReadingAtPath: "/dev/urandom") else { throw ShellError("cannot open /dev/urandom") }
        defer { try? urandom.close() }
        return urandom.readData(ofLength: count)
    }

    static func missingTools() -> [(tool: String, package: String)] {
        var missing: [(String, String)] = []
        if Shell.which("ip") == nil { missing.append(("ip", "iproute2")) }
        if Shell.which("iptables") == nil || Shell.which("iptables-save") == nil { missing.append(("iptables", "iptables")) }
        if Shell.which(LabTopology.python) == nil { missing.append((LabTopology.python, "python3")) }
        if Shell.which("curl") == nil { missing.append(("curl", "curl")) }
        return missing
    }

    /// On SIGINT/SIGTERM: remove the namespaces and exit 130.
    static func installSignalHandlers(_ topology: LabTopology) -> [DispatchSourceSignal] {
        [SIGINT, SIGTERM].map { number in
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler {
                guard interruption.set() else { return }
                printErr("\ninterrupted: removing the lab namespaces")
                topology.destroy()
                exit(130)
            }
            source.resume()
            return source
        }
    }

    static func heading(_ title: String) {
        say("\n== \(title) ==")
    }

    static func say(_ text: String) {
        if interruption.isSet { return }  // the demo's steps fail noisily once torn down
        // write(2) rather than FileHandle: a closed pipe (`masqd lab | head`) must not crash the cleanup.
        let line = Array((text + "\n").utf8)
        _ = line.withUnsafeBytes { write(STDOUT_FILENO, $0.baseAddress, $0.count) }
    }

    /// Set once by the first SIGINT/SIGTERM.
    final class Flag: @unchecked Sendable {
        private let lock = NSLock()
        private var value = false
        var isSet: Bool { lock.withLock { value } }
        /// Sets it; false if it was set already.
        func set() -> Bool { lock.withLock { defer { value = true }; return !value } }
    }

    static let interruption = Flag()

    static func printErr(_ text: String) {
        let line = Array((text + "\n").utf8)
        _ = line.withUnsafeBytes { write(STDERR_FILENO, $0.baseAddress, $0.count) }
    }
}
