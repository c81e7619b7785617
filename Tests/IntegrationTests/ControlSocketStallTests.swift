import Foundation
import Masqd
import MasqdLab
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Issue #20 item 10: slow control clients must not stall the engine's main loop. Two real
/// clients (Python sockets) hold the control socket the whole time, reconnecting whenever the
/// engine closes them: one connects and sends nothing, one sends a byte every 0.5 s. Meanwhile
/// `masqd stats` from another client and a SIGHUP reload must complete promptly. Before the
/// fix the dribbler held the main loop until it stopped (one byte read per call, 1 s each).
/// Namespace prefix mq<pid>cs?, NFQUEUE index 91.
@Suite(.serialized, .integrationLimit)
struct ControlSocketStallTests {
    static let slowClient = #"""
import socket, sys, time
path, mode, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
end = time.time() + seconds; connections = 0
while time.time() < end:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(path)
    except OSError:
        time.sleep(0.05); continue
    connections += 1
    print("connected %d" % connections, flush=True)
    s.settimeout(0.5)
    while time.time() < end:
        if mode == "dribble":
            try: s.send(b"x")
            except OSError: break
        try:
            if s.recv(1) == b"": break       # the engine closed us: come back
        except socket.timeout: pass
        except OSError: break
    s.close()
print("done %d" % connections, flush=True)
"""#

    @Test("a silent and a dribbling control client, reconnecting for 8 s: masqd stats answers within 1.5 s each time, SIGHUP reloads within 1.5 s")
    func slowClientsDoNotStallTheMainLoop() throws {
        try ReloadAndMetricsTests.withConfiguredEngine("csa", queueIndex: 91, yaml: { lab, queue in
            ReloadAndMetricsTests.baseYAML(lab, queue: queue, forwards: ["udp:5353=192.0.2.10:53"])
        }) { lab, masqd, _, engine in
            let script = lab.workDir + "/slowclient.py"
            try Self.slowClient.write(toFile: script, atomically: true, encoding: .utf8)
            let silent = try lab.spawn(.router, [LabTopology.python, "-u", script, lab.controlPath, "silent", "8"], name: "silent")
            let dribbler = try lab.spawn(.router, [LabTopology.python, "-u", script, lab.controlPath, "dribble", "8"], name: "dribbler")
            defer { silent.stop(); dribbler.stop() }
            #expect(silent.waitForOutput(containing: "connected 1", timeout: 5) && dribbler.waitForOutput(containing: "connected 1", timeout: 5),
                    "the slow clients did not connect:\n\(silent.output)\n\(dribbler.output)")
            usleep(300_000)

            // Slow clients hold only their own buffers: a stats request is answered at once,
            // never after the dribbler stops (7.7 s on the code before the fix).
            var timings: [Double] = []
            for _ in 0..<3 {
                let started = Date()
                let stats = try lab.masqd(masqd, ["stats", "--control", lab.controlPath], timeout: 15)
                let took = Date().timeIntervalSince(started)
                timings.append(took)
                #expect(stats.succeeded && stats.stdout.contains("packets_received "), "masqd stats failed:\n\(stats.summary)")
                #expect(took < 1.5, "masqd stats took \(took) s with slow control clients connected")
                usleep(500_000)
            }
            let started = Date()
            let line = try ReloadAndMetricsTests.hangUp(engine, expecting: "reloaded")
            let reloadTook = Date().timeIntervalSince(started)
            #expect(reloadTook < 1.5, "the SIGHUP reload took \(reloadTook) s with slow control clients connected: \(line)")

            _ = dribbler.waitForOutput(containing: "done", timeout: 10)
            _ = silent.waitForOutput(containing: "done", timeout: 10)
            let after = try Semantics.stats(lab, masqd)
            // Each slow connection was closed at its deadline and came back: several times each in 8 s.
            #expect((after["control_clients_timed_out"] ?? 0) >= 4,
                    "control_clients_timed_out \(after["control_clients_timed_out"] ?? -1); stats took \(timings) s\n\(silent.output)\n\(dribbler.output)")
            #expect(dribbler.output.contains("connected 2") && silent.output.contains("connected 2"),
                    "the slow clients should have been closed and reconnected:\n\(silent.output)\n\(dribbler.output)")
        }
    }
}
