@testable import Masqd
@testable import MasqdLab
@testable import MasqdShell
import Foundation
import NATCore
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// HA increments (issue #18), end to end, with --sync-interval 60 so no periodic full resync
/// falls in the test's window: after the standby B holds its first (empty) resync, a TCP
/// connection opened through the active A reaches B as increments, a reset connection leaves
/// B when A removes it, and 1000 UDP flows follow; A is SIGKILLed, B takes over, and the TCP
/// connection carries a line from the same WAN address and port. The full resyncs counted
/// stay at the first, so increments, not resyncs, carried the flows. Bytes on the sync link:
/// A's increments for the 1000 flows, and the full resync B sends the returning A. The
/// returning A, a standby with --state-file, checkpoints its copy of B's flows, and restarted
/// with that file keeps them as its copy. An ESP packet (scapy) makes an address-only row on
/// A, which reaches B as an increment too and is translated by B after the takeover.
/// Namespaces mq<pid>hi-*.
@Suite(.integrationLimit, .serialized)
struct HAIncrementTests {
    /// 8001: an idle connection that gets a line each time TRIGGER-N appears and prints the
    /// answer with its peer; 8002: connections accepted and reported (the client resets them).
    static let serverScript = """
        import sys, threading
        \(HATopology.idleServerPython)
        trigger = sys.argv[1]
        idle, short = listener(8001), listener(8002)
        def shorts():
            while True:
                c, peer = short.accept(); print("short from %s:%d" % peer, flush=True)
        threading.Thread(target=shorts, daemon=True).start()
        serve_idle(idle, trigger)
        """

    /// The idle connection (one line, then echoes), and a second connection reset at once.
    static let clientScript = """
        import socket, struct, sys, time
        \(HATopology.idleClientPython)
        server = sys.argv[1]
        idle = socket.create_connection((server, 8001), timeout=10); idle.settimeout(None)
        idle.sendall(b"hello\\n")
        s = socket.create_connection((server, 8002), timeout=10)
        time.sleep(0.5)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)); s.close()
        print("reset sent", flush=True)
        echo_lines(idle)
        """

    /// N UDP flows: one datagram from each of N source ports to the server's port 9000.
    static let udpScript = """
        import socket, sys
        server, n = sys.argv[1], int(sys.argv[2])
        for i in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("", 20000 + i))
            s.sendto(b"x", (server, 9000)); s.close()
        print("sent %d" % n, flush=True)
        """

    static let udpFlows = 1000

    @Test("increments: a connection made after the last full resync survives a failover; a removed one leaves the standby")
    func incrementsCarryFlows() throws {
        let masqd = try Integration.masqdExecutable()
        let lab = try HATopology.make(tag: "hi", scripts: ["server.py": Self.serverScript, "client.py": Self.clientScript, "udp.py": Self.udpScript])
        defer { lab.destroy() }
        let trigger = lab.workDir + "/line"
        let slow = ["--sync-interval", "60"]

        // B holds A's state (empty) from a full resync before any flow exists.
        let pair = try lab.startPair(masqd: masqd, repository: HAFailoverTests.repository, extra: slow)
        let (masqdA, masqdB, keepalivedA, keepalivedB) = (pair.masqdA, pair.masqdB, pair.keepalivedA, pair.keepalivedB)
        usleep(500_000)
        let startA = try lab.stats(.a, masqd: masqd), startB = try lab.stats(.b, masqd: masqd)
        #expect(startB["sync_replicated_flows"] == 0 && startA["flows_active"] == 0, "A: \(startA)\nB: \(startB)")

        let server = try lab.spawn(.server, [LabTopology.python, "-u", lab.workDir + "/server.py", trigger], name: "server")
        usleep(300_000)
        let client = try lab.spawn(.host, [LabTopology.python, "-u", lab.workDir + "/client.py", HATopology.server], name: "client")
        try #require(server.waitForOutput(containing: "idle got hello"), "server:\n\(server.output)\nclient:\n\(client.output)")
        try #require(client.waitForOutput(containing: "reset sent"), "client:\n\(client.output)")
        let idlePeer = Semantics.line(server.lines, startingWith: "idle from ")?.dropFirst("idle from ".count) ?? ""
        #expect(idlePeer.hasPrefix("\(HATopology.wanVIP):"), "the server saw the idle connection from \(idlePeer)")

        // Both connections reach B as increments; the reset one leaves it when A removes it (10 s after the RST).
        let both = Semantics.waitUntil(timeout: 5) { (try? lab.stats(.b, masqd: masqd))?["sync_replicated_flows"] == 2 }
        #expect(both, "B never held both connections: \((try? lab.stats(.b, masqd: masqd)) ?? [:])")
        let oneLeft = Semantics.waitUntil(timeout: 20) {
            (try? lab.stats(.a, masqd: masqd))?["flows_active"] == 1 && (try? lab.stats(.b, masqd: masqd))?["sync_replicated_flows"] == 1
        }
        #expect(oneLeft, "the reset connection did not leave B with A: A \((try? lab.stats(.a, masqd: masqd)) ?? [:])\nB \((try? lab.stats(.b, masqd: masqd)) ?? [:])")

        // 1000 UDP flows: the increments' bytes on the sync link.
        let beforeUDP = try lab.stats(.a, masqd: masqd)
        let udp = try lab.run(.host, [LabTopology.python, lab.workDir + "/udp.py", HATopology.server, "\(Self.udpFlows)"])
        #expect(udp.succeeded, "\(udp.summary)")
        let allThere = Semantics.waitUntil(timeout: 10) { (try? lab.stats(.b, masqd: masqd))?["sync_replicated_flows"] == Self.udpFlows + 1 }
        let afterUDP = try lab.stats(.a, masqd: masqd), standby = try lab.stats(.b, masqd: masqd)
        #expect(allThere, "B holds \(standby["sync_replicated_flows"] ?? -1) flows, A \(afterUDP["flows_active"] ?? -1)")
        let incrementBytes = (afterUDP["sync_increment_bytes_sent"] ?? 0) - (beforeUDP["sync_increment_bytes_sent"] ?? 0)
        print("HA increments: \(Self.udpFlows) new UDP flows took \(incrementBytes) bytes of increment messages (\(String(format: "%.1f", Double(incrementBytes) / Double(Self.udpFlows))) B/flow)")
        // No full resync since the first: increments carried every flow.
        #expect(afterUDP["sync_resyncs_sent"] == startA["sync_resyncs_sent"] && standby["sync_resyncs_received"] == startB["sync_resyncs_received"],
                "a full resync happened: A \(afterUDP)\nB \(standby)")
        #expect((standby["sync_increments_applied"] ?? 0) >= 2 * Self.udpFlows + 4, "\(standby)")
        #expect(afterUDP["sync_resyncs_events_lost"] == 0 && afterUDP["nat_events_lost"] == 0, "\(afterUDP)")

        // An ESP row on A (address-only: no ports) reaches B as an increment, not a resync.
        let esp = try lab.run(.host, [LabTopology.python, "-c", """
            from scapy.all import *
            conf.verb = 0
            send(IP(dst="\(HATopology.server)", proto=50)/Raw(b"\\x00\\x00\\x10\\x01\\x00\\x00\\x00\\x01ha"))
            """])
        #expect(esp.succeeded, "\(esp.summary)")
        let espThere = Semantics.waitUntil(timeout: 5) { (try? lab.stats(.b, masqd: masqd))?["sync_replicated_other_flows"] == 1 }
        #expect(espThere, "B never held A's ESP row: \((try? lab.stats(.b, masqd: masqd)) ?? [:])")
        #expect(try lab.stats(.b, masqd: masqd)["sync_resyncs_received"] == startB["sync_resyncs_received"], "a full resync carried it")

        // A dies; B takes over with the flows the increments brought.
        let (failover, after) = try lab.killAndTakeOver(.a, keepalived: keepalivedA, keepalivedName: "keepalived-a", engine: masqdA, masqd: masqd) {
            "\(keepalivedB.output)\n\(masqdB.output)"
        }
        print("HA increments: B active \(String(format: "%.2f", failover)) s after SIGKILL of A; installed \(after["takeover_installed_flows"] ?? -1) flows")
        #expect(after["takeover_installed_flows"] == Self.udpFlows + 1, "\(after)\n\(masqdB.output)")
        let otherFlows = try lab.run(.b, [masqd, "flows", "other", "--control", lab.controlPath(.b)])
        #expect(otherFlows.stdout.contains("esp \(HATopology.host) -> \(HATopology.server) via \(HATopology.wanVIP) expires "),
                "B after the takeover:\n\(otherFlows.stdout)")
        try Shell.check(["touch", trigger + "-1"])
        #expect(server.waitForOutput(containing: "idle reply echo line-1 from \(idlePeer)", timeout: 10),
                "the connection made after the resync did not answer from \(idlePeer) after the failover:\nserver:\n\(server.output)\nclient:\n\(client.output)\nB:\n\(masqdB.output)")

        // A returns as standby: B sends it one full resync of the same flows (its bytes, for comparison).
        let beforeResync = try lab.stats(.b, masqd: masqd)
        try lab.reviveRouter(.a)
        let stateFile = lab.workDir + "/a.state"
        let masqdA2 = try lab.startMasqd(.a, masqd: masqd, name: "masqd-a2", extra: slow + ["--state-file", stateFile, "--checkpoint-interval", "1"])
        let resynced = Semantics.waitUntil(timeout: 15) { ((try? lab.stats(.a, masqd: masqd))?["sync_replicated_flows"] ?? 0) == Self.udpFlows + 1 }
        #expect(resynced, "B's state never reached the returning A: \((try? lab.stats(.a, masqd: masqd)) ?? [:])\n\(masqdA2.output)")
        let afterResync = try lab.stats(.b, masqd: masqd)
        let resyncBytes = (afterResync["sync_resync_bytes_sent"] ?? 0) - (beforeResync["sync_resync_bytes_sent"] ?? 0)
        let resyncs = (afterResync["sync_resyncs_sent"] ?? 0) - (beforeResync["sync_resyncs_sent"] ?? 0)
        let resent = (afterResync["sync_messages_resent"] ?? 0) - (beforeResync["sync_messages_resent"] ?? 0)
        // Chunks resent (the returning router's first datagrams meet a neighbour entry that failed
        // while it was away) are full-size messages; the rest is the resync sent once.
        let once = resyncBytes - resent * (SyncMessage.maxSize)
        print("HA increments: \(resyncs) full resync(s) of the \(Self.udpFlows + 1) flows took \(resyncBytes) bytes with \(resent) chunks resent; sent once: \(once) bytes (\(String(format: "%.1f", Double(once) / Double(Self.udpFlows + 1))) B/flow)")
        #expect(resyncs == 1, "the returning standby got \(resyncs) full resyncs")
        #expect(resyncBytes > 0 && incrementBytes > 0)

        // The standby's checkpoint is its copy of B's flows; restarted with that file, it keeps
        // them as its copy until B's first resync.
        let saved = Semantics.waitUntil(timeout: 5) {
            (try? NATStateSnapshot(decoding: [UInt8](Data(contentsOf: URL(fileURLWithPath: stateFile)))))?.sessionCount == Self.udpFlows + 1
        }
        #expect(saved, "the standby's checkpoint does not hold the \(Self.udpFlows + 1) replicated flows")
        let status = masqdA2.stop(grace: 5)
        #expect(status == 0 && masqdA2.output.contains("saved \(Self.udpFlows + 1) flows to \(stateFile)"), "\(masqdA2.output)")
        let masqdA3 = try lab.startMasqd(.a, masqd: masqd, name: "masqd-a3", extra: slow + ["--state-file", stateFile])
        // The file's flows: the sessions and the ESP row.
        #expect(masqdA3.waitForOutput(containing: "standby: the \(Self.udpFlows + 2) flows of the state file are the copy", timeout: 5), "\(masqdA3.output)")
    }
}
