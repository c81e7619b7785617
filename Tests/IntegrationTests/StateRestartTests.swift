import Foundation
import Masqd
import MasqdLab
import MasqdShell
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// `--state-file` (issue #8): a TCP connection left idle while masqd restarts goes on
/// afterwards, on the same connection and the same WAN port — and, as the control, does not
/// without the state file. A file that cannot be used is refused with one line, moved aside,
/// and the engine still comes up and translates. Namespaces st<pid><letter>, queues 41-44.
@Suite(.integrationLimit)
struct StateRestartTests: LabAddresses {
    static func prefix(_ tag: String) -> String { "st\(getpid() % 100_000)\(tag)" }

    /// The server: accepts one connection, reads a line, waits for the file `trigger`, sends
    /// a line, and reads the answer (printing the peer it came from).
    static let serverScript = """
        import os, socket, sys, time
        port, trigger = int(sys.argv[1]), sys.argv[2]
        t = socket.socket(); t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        t.bind(("", port)); t.listen(1); print("ready", flush=True)
        c, peer = t.accept(); print("accepted %s:%d" % peer, flush=True)
        f = c.makefile("rb")
        print("got %s" % f.readline().decode().strip(), flush=True)
        while not os.path.exists(trigger): time.sleep(0.05)
        try:
            c.sendall(b"after-restart\\n"); print("sent", flush=True)
            line = f.readline().decode().strip()
            print(("got %s from %s:%d" % ((line,) + c.getpeername())) if line else "closed", flush=True)
        except OSError as e:
            print("error %s" % e, flush=True)
        """

    /// The LAN client: connects, sends a line, then waits (idle) for the server's line and echoes it.
    static let clientScript = """
        import socket, sys
        s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5); s.settimeout(None)
        print("connected from %s:%d" % s.getsockname(), flush=True)
        s.sendall(b"before-restart\\n")
        line = s.makefile("rb").readline().decode().strip()
        print("received %s" % line, flush=True)
        s.sendall(("echo %s\\n" % line).encode())
        """

    /// `masqd run` in the router namespace, logging to `name`.log; waits until `masqd stats` answers.
    static func startEngine(_ lab: LabTopology, _ masqd: String, queue: Int, extra: [String], name: String) throws -> BackgroundProcess {
        try Integration.startRun(lab, masqd, lab.engineOptions(queue: queue) + ["--control", lab.controlPath] + extra, name: name)
    }

    /// Stops an engine with SIGTERM and checks it went promptly and cleanly.
    static func stop(_ engine: BackgroundProcess) {
        let started = Date()
        let status = engine.stop(grace: 5)
        #expect(status == 0, "\(engine.name) exited with status \(status):\n\(engine.output)")
        #expect(Date().timeIntervalSince(started) < 4.5, "\(engine.name) took more than 4.5 s to stop")
    }

    static func fileSize(_ path: String) -> Int {
        ((try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? Int) ?? -1
    }

    /// An idle connection across a restart of masqd: the client on host1 and the server talk,
    /// masqd stops (SIGTERM) and starts again; then the SERVER speaks first — with no
    /// translation for it, its packet would be handed to the router's stack and never reach
    /// host1. `withState: false` is the control: the same restart without --state-file.
    /// Returns what the client and the server printed (the topology and its logs are gone by
    /// then), the second engine's stats and both engines' logs.
    /// `addressLate`: the WAN address is taken away before the second start (a router booting
    /// before DHCP), so the saved flow must wait for it — with the file left alone — and be
    /// restored when the address comes back.
    func idleConnection(tag: String, queue: Int, withState: Bool, addressLate: Bool = false) throws -> (client: String, server: String, stats: [String: Int], logs: String) {
        let masqd = try Integration.masqdExecutable()
        let lab = try LabTopology(prefix: Self.prefix(tag), modeOptions: Integration.modeOptions)
        defer { lab.destroy() }
        try lab.create()
        try lab.installRules(masqd: masqd, queue: queue)
        let stateFile = lab.workDir + "/masqd.state"
        let stateOptions = ["--state-file", stateFile, "--checkpoint-interval", "1"]
        try Self.serverScript.write(toFile: lab.workDir + "/server.py", atomically: true, encoding: .utf8)
        try Self.clientScript.write(toFile: lab.workDir + "/client.py", atomically: true, encoding: .utf8)
        let trigger = lab.workDir + "/send-now"

        let first = try Self.startEngine(lab, masqd, queue: queue, extra: stateOptions, name: "masqd-1")
        #expect(first.output.contains("no saved state at \(stateFile): starting empty"), "\(first.output)")
        let serverProcess = try lab.spawn(.server, [LabTopology.python, "-u", lab.workDir + "/server.py", "7000", trigger], name: "server")
        try #require(serverProcess.waitForOutput(containing: "ready"), "server:\n\(serverProcess.output)")
        let client = try lab.spawn(.host1, [LabTopology.python, "-u", lab.workDir + "/client.py", server, "7000"], name: "client")
        try #require(serverProcess.waitForOutput(containing: "got before-restart"), "server:\n\(serverProcess.output)\nclient:\n\(client.output)")
        let accepted = Semantics.line(serverProcess.lines, startingWith: "accepted ") ?? ""
        #expect(accepted.hasPrefix("accepted \(wan):"), "the server saw \(accepted), expected \(wan):PORT")

        // A checkpoint appears while running, with the one flow (56-byte header, a 12-byte
        // mapping and a 24-byte session record, an 8-byte checksum).
        let checkpointed = Semantics.waitUntil(timeout: 5) { Self.fileSize(stateFile) == 100 }
        #expect(checkpointed, "no checkpoint with one flow in \(stateFile) within 5 s (size \(Self.fileSize(stateFile)))")
        let magic = (try? Data(contentsOf: URL(fileURLWithPath: stateFile)).prefix(8)).map { Array($0) } ?? []
        #expect(magic == Array("MASQDST\n".utf8))
        usleep(300_000) // the server's ACK has crossed: the connection is idle

        Self.stop(first)
        #expect(first.output.contains("saved 1 flows to \(stateFile)"), "\(first.output)")
        if addressLate {
            try lab.check(.router, ["ip", "addr", "del", "\(wan)/24", "dev", LabTopology.wanInterface])
        }
        let second = try Self.startEngine(lab, masqd, queue: queue, extra: withState ? stateOptions : [], name: "masqd-2")
        if addressLate {
            let waiting = "1 flows saved in \(stateFile) for WAN address \(wan) wait for \(LabTopology.wanInterface) to have an address"
            #expect(second.output.contains(waiting), "\(second.output)")
            let before = try Data(contentsOf: URL(fileURLWithPath: stateFile))
            let stats = try Semantics.stats(lab, masqd)
            #expect(stats["state_restore_waiting"] == 1 && stats["state_restored_flows"] == 0 && stats["state_refused"] == 0,
                    "\(stats.filter { $0.key.hasPrefix("state_") })")
            usleep(1_500_000) // more than the checkpoint interval: no checkpoint may overwrite the waiting flows
            #expect(try Data(contentsOf: URL(fileURLWithPath: stateFile)) == before, "the state file changed while its flows waited")
            try lab.check(.router, ["ip", "addr", "add", "\(wan)/24", "dev", LabTopology.wanInterface])
        }
        if withState {
            let restored = Semantics.waitUntil(timeout: 5) { second.output.contains("restored 1 of 1 flows from \(stateFile)") }
            #expect(restored, "\(second.output)")
        }
        #expect(FileManager.default.createFile(atPath: trigger, contents: nil))
        _ = client.waitForOutput(containing: "received", timeout: withState ? 10 : 5)
        _ = serverProcess.waitForOutput(containing: withState ? "got echo" : "sent", timeout: 5)
        let stats = try Semantics.stats(lab, masqd)
        #expect(second.isRunning, "masqd-2 died:\n\(second.output)")
        Self.stop(second)
        return (client.output, serverProcess.output, stats, first.output + second.output)
    }

    @Test("an idle TCP connection survives a restart with --state-file: the server's next line reaches the client, the answer comes from the same WAN address and port")
    func idleConnectionSurvivesRestart() throws {
        let (client, server, stats, logs) = try idleConnection(tag: "a", queue: Integration.queue(41), withState: true)
        #expect(client.contains("received after-restart"), "client:\n\(client)\nserver:\n\(server)\n\(logs)")
        let lines = server.split(separator: "\n").map(String.init)
        let accepted = Semantics.line(lines, startingWith: "accepted ")?.dropFirst("accepted ".count) ?? "?"
        #expect(server.contains("got echo after-restart from \(accepted)"),
                "the answer must come on the same connection from \(accepted):\n\(server)")
        #expect(stats["state_restored_flows"] == 1 && stats["state_refused"] == 0, "\(stats.filter { $0.key.hasPrefix("state_") })")
        #expect(stats["translated_inbound", default: 0] >= 1 && stats["inbound_unmatched"] == 0,
                "inbound \(stats["translated_inbound"] ?? -1), unmatched \(stats["inbound_unmatched"] ?? -1)")
    }

    @Test("a restart while the WAN has no address: the saved flow waits (the file untouched by checkpoints), is restored when the address comes, and the idle connection goes on")
    func savedFlowsWaitForTheWANAddress() throws {
        let (client, server, stats, logs) = try idleConnection(tag: "d", queue: Integration.queue(44), withState: true, addressLate: true)
        #expect(client.contains("received after-restart"), "client:\n\(client)\nserver:\n\(server)\n\(logs)")
        let lines = server.split(separator: "\n").map(String.init)
        let accepted = Semantics.line(lines, startingWith: "accepted ")?.dropFirst("accepted ".count) ?? "?"
        #expect(server.contains("got echo after-restart from \(accepted)"), "\(server)")
        #expect(stats["state_restore_waiting"] == 0 && stats["state_restored_flows"] == 1 && stats["state_refused"] == 0,
                "\(stats.filter { $0.key.hasPrefix("state_") })")
    }

    @Test("control: the same restart without --state-file loses the connection (the server's line is unmatched and never reaches the client)")
    func withoutStateTheConnectionIsLost() throws {
        let (client, server, stats, logs) = try idleConnection(tag: "b", queue: Integration.queue(42), withState: false)
        #expect(server.contains("sent"), "server:\n\(server)")
        #expect(client.contains("connected from") && !client.contains("received after-restart"), "client:\n\(client)\n\(logs)")
        #expect(stats["inbound_unmatched", default: 0] >= 1 && stats["state_restored_flows"] == 0,
                "unmatched \(stats["inbound_unmatched"] ?? -1), restored \(stats["state_restored_flows"] ?? -1)")
    }

    @Test("a corrupt, a damaged and a foreign state file are each refused with one line, moved aside, and the engine still translates new flows")
    func unusableStateFilesAreRefused() throws {
        let masqd = try Integration.masqdExecutable()
        let queue = 43
        let lab = try LabTopology(prefix: Self.prefix("c"), modeOptions: Integration.modeOptions)
        defer { lab.destroy() }
        try lab.create()
        try lab.installRules(masqd: masqd, queue: queue)
        let stateFile = lab.workDir + "/masqd.state"
        let options = ["--state-file", stateFile]
        let echo = try lab.spawnHelper(.server, ["udpecho", "9999"], name: "udpecho")
        _ = echo

        func runOnce(_ name: String, expecting message: String) throws {
            let engine = try Self.startEngine(lab, masqd, queue: queue, extra: options, name: name)
            let refusal = "state file \(stateFile) refused: \(message); starting empty (moved to \(stateFile).bad)"
            #expect(engine.output.contains(refusal), "\(name) should log '\(refusal)':\n\(engine.output)")
            #expect(engine.lines.filter { $0.contains("refused") }.count == 1, "one line:\n\(engine.output)")
            #expect(!FileManager.default.fileExists(atPath: stateFile), "the refused file must be moved away from \(stateFile)")
            #expect(FileManager.default.fileExists(atPath: stateFile + ".bad"))
            let udp = try lab.run(.host1, lab.helper(["udpsend", server, "9999", "--msg", name]), timeout: 20)
            #expect(udp.succeeded && udp.stdout.contains("seen-from \(wan):"), "\(name): a new flow must translate: \(udp.summary)")
            let stats = try Semantics.stats(lab, masqd)
            #expect(stats["state_refused"] == 1 && stats["state_restored_flows"] == 0, "\(stats.filter { $0.key.hasPrefix("state_") })")
            #expect(engine.isRunning, "\(name) died:\n\(engine.output)")
            Self.stop(engine)
            #expect(engine.output.contains("saved 1 flows to \(stateFile)"), "\(engine.output)")
        }

        // Not a state file at all.
        let garbage = Data("wan: eth0\nthis is not a state file\n".utf8)
        try garbage.write(to: URL(fileURLWithPath: stateFile))
        try runOnce("masqd-garbage", expecting: "not a masqd state file (no MASQDST magic)")
        #expect(try Data(contentsOf: URL(fileURLWithPath: stateFile + ".bad")) == garbage, "the refused file is kept as it was")

        // The file the last engine saved at stop (valid: one UDP flow), with one byte flipped.
        var saved = try Data(contentsOf: URL(fileURLWithPath: stateFile))
        #expect(saved.count == 100)
        saved[20] ^= 0x01
        try saved.write(to: URL(fileURLWithPath: stateFile))
        try runOnce("masqd-flipped", expecting: "checksum mismatch (the file is corrupt)")

        // A valid file saved for another WAN address: an address change flushes, as in the kernel.
        try lab.check(.router, ["ip", "addr", "del", "\(wan)/24", "dev", LabTopology.wanInterface])
        try lab.check(.router, ["ip", "addr", "add", "203.0.113.5/24", "dev", LabTopology.wanInterface])
        let moved = try Self.startEngine(lab, masqd, queue: queue, extra: options, name: "masqd-moved")
        let refusal = "state file \(stateFile) refused: saved for WAN address \(wan), the WAN now has 203.0.113.5; starting empty"
        #expect(moved.output.contains(refusal), "\(moved.output)")
        let udp = try lab.run(.host1, lab.helper(["udpsend", server, "9999", "--msg", "moved"]), timeout: 20)
        #expect(udp.succeeded && udp.stdout.contains("seen-from 203.0.113.5:"), "\(udp.summary)")
        Self.stop(moved)

        // A directory that does not exist is a bad option: the start ends with one line.
        let result = try lab.masqd(masqd, ["run"] + lab.engineOptions(queue: queue) + ["--control", lab.controlPath, "--state-file", "/nonexistent-masqd/state"])
        #expect(!result.succeeded && result.stderr.contains("--state-file /nonexistent-masqd/state: directory /nonexistent-masqd does not exist"),
                "\(result.summary)")
    }

    @Test("--checkpoint-interval needs --state-file, and takes 0-86400 seconds")
    func badStateOptions() throws {
        let masqd = try Integration.masqdExecutable()
        for (args, expected) in [
            (["--checkpoint-interval", "30"], "--checkpoint-interval 30: needs --state-file"),
            (["--state-file", "/tmp/x.state", "--checkpoint-interval", "soon"], "--checkpoint-interval soon: expected SECONDS from 0"),
            (["--state-file", "/tmp/x.state", "--checkpoint-interval", "90000"], "--checkpoint-interval 90000: expected SECONDS from 0"),
            (["--state-file", "/tmp/"], "--state-file /tmp/: not a file name"),
        ] {
            let result = try Shell.run([masqd, "rules", "print", "--wan", "lo"] + args)
            #expect(!result.succeeded, "\(args) was accepted")
            #expect(result.stderr.contains(expected), "\(args): \(result.stderr)")
        }
    }
}
