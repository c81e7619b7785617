@testable import Masqd
@testable import MasqdLab
@testable import MasqdShell
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// High availability (issue #18), end to end: two routers running the real masqd and the real
/// keepalived (the shipped Deploy/keepalived/ configuration and notify script), a LAN host and
/// a server. A rate-limited download and an idle TCP connection cross router A; A's masqd and
/// keepalived are SIGKILLed and its links cut; B takes over with the replicated state; the
/// download finishes with the right sha256 and the idle connection carries a line afterwards,
/// from the same WAN address and port. Then A comes back (as a rebooted router: standby,
/// nopreempt) without disturbing the flows, and a sync message with a bad HMAC, sent by the
/// test from A's address, is dropped and counted by B. Namespaces mq<pid>ha-*.
@Suite(.integrationLimit, .serialized)
struct HAFailoverTests {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path

    /// The server: a download of SIZE deterministic bytes at RATE bytes/s on port 8000 (it
    /// prints their sha256), and on 8001 an idle connection that gets a line each time the
    /// file TRIGGER-N appears and prints the answer with the peer it came from.
    static let serverScript = """
        import hashlib, os, socket, sys, threading, time
        \(HATopology.idleServerPython)
        size, rate, trigger = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
        dl, idle = listener(8000), listener(8001)
        def download():
            c, peer = dl.accept(); print("download from %s:%d" % peer, flush=True)
            h = hashlib.sha256(); sent = 0; block = 1400; start = time.time()
            while sent < size:
                chunk = hashlib.sha256(str(sent).encode()).digest() * 44
                chunk = chunk[:min(block, size - sent)]
                c.sendall(chunk); h.update(chunk); sent += len(chunk)
                ahead = sent / rate - (time.time() - start)
                if ahead > 0: time.sleep(ahead)
            c.close(); print("download sent %d %s" % (sent, h.hexdigest()), flush=True)
        threading.Thread(target=download, daemon=True).start()
        serve_idle(idle, trigger)
        """

    /// The LAN host: the download (sha256, bytes, the longest pause between two reads) and
    /// the idle connection (sends one line, then echoes whatever line comes).
    static let clientScript = """
        import hashlib, socket, sys, threading, time
        \(HATopology.idleClientPython)
        server = sys.argv[1]
        def download():
            s = socket.create_connection((server, 8000), timeout=60)
            h = hashlib.sha256(); n = 0; last = time.time(); gap = 0.0
            while True:
                b = s.recv(65536)
                now = time.time(); gap = max(gap, now - last); last = now
                if not b: break
                h.update(b); n += len(b)
            print("download got %d %s longest-gap %.3f" % (n, h.hexdigest(), gap), flush=True)
        idle = socket.create_connection((server, 8001), timeout=10); idle.settimeout(None)
        print("idle connected from %s:%d" % idle.getsockname(), flush=True)
        idle.sendall(b"hello\\n")
        threading.Thread(target=download, daemon=True).start()
        echo_lines(idle)
        time.sleep(30)
        """

    /// One forged sync message from A's sync address to B's: a well-formed hello whose MAC
    /// is made with another key.
    static let forgeScript = """
        import hashlib, hmac, socket, struct, sys
        src, dst, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
        body = b"MQSY" + bytes([\(SyncMessage.version), 1]) + struct.pack(">HQQ", 4, 2**62, 1) + bytes([1, 0, 0, 0])
        mac = hmac.new(b"not the routers' shared secret", body, hashlib.sha256).digest()
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind((src, 0))
        s.sendto(body + mac, (dst, port)); print("sent", flush=True)
        """

    @Test("failover: the download and an idle connection survive SIGKILL of the active router; its return disturbs nothing; forged sync is dropped")
    func failover() throws {
        let masqd = try Integration.masqdExecutable()
        let lab = try HATopology.make(tag: "ha", scripts: ["server.py": Self.serverScript, "client.py": Self.clientScript, "forge.py": Self.forgeScript])
        defer { lab.destroy() }
        let trigger = lab.workDir + "/line"

        let masqdA = try lab.startMasqd(.a, masqd: masqd, name: "masqd-a")
        let masqdB = try lab.startMasqd(.b, masqd: masqd, name: "masqd-b")
        // A first, so it is elected; B joins as backup.
        let keepalivedA = try lab.startKeepalived(.a, masqd: masqd, repository: Self.repository, name: "keepalived-a")
        let aActive = Semantics.waitUntil(timeout: 15) { (try? lab.stats(.a, masqd: masqd))?["role_active"] == 1 }
        try #require(aActive, "A never became active:\n\(keepalivedA.output)\n\(masqdA.output)")
        // The first election: no peer state to install, so A starts empty (and says so).
        #expect((try? lab.stats(.a, masqd: masqd))?["takeovers_without_state"] == 1)
        #expect(masqdA.waitForOutput(containing: "role active: no replicated state from the peer: starting empty", timeout: 2), "\(masqdA.output)")
        let keepalivedB = try lab.startKeepalived(.b, masqd: masqd, repository: Self.repository, name: "keepalived-b")
        try #require(keepalivedB.waitForOutput(containing: "Entering BACKUP STATE", timeout: 10), "B:\n\(keepalivedB.output)")

        // 1.6 MB at 160 KB/s: 10 s, spanning the failover and A's return.
        let server = try lab.spawn(.server, [LabTopology.python, "-u", lab.workDir + "/server.py", "1600000", "160000", trigger], name: "server")
        usleep(300_000)
        let client = try lab.spawn(.host, [LabTopology.python, "-u", lab.workDir + "/client.py", HATopology.server], name: "client")
        try #require(server.waitForOutput(containing: "idle got hello"), "server:\n\(server.output)\nclient:\n\(client.output)")
        let idlePeer = Semantics.line(server.lines, startingWith: "idle from ")?.dropFirst("idle from ".count) ?? ""
        #expect(idlePeer.hasPrefix("\(HATopology.wanVIP):"), "the server saw the idle connection from \(idlePeer), expected the WAN virtual address")
        try Shell.check(["touch", trigger + "-1"])
        try #require(server.waitForOutput(containing: "idle reply echo line-1"), "server:\n\(server.output)")

        // B holds both flows, replicated, before A dies.
        let replicated = Semantics.waitUntil(timeout: 10) { ((try? lab.stats(.b, masqd: masqd))?["sync_replicated_flows"] ?? 0) >= 2 }
        try #require(replicated, "B never held the 2 flows: \((try? lab.stats(.b, masqd: masqd)) ?? [:])\nA:\n\(masqdA.output)\nB:\n\(masqdB.output)")
        usleep(1_500_000) // a resync after the download has moved on
        let before = try lab.stats(.b, masqd: masqd)
        #expect(before["role_active"] == 0 && before["flows_active"] == 0, "the standby translates nothing: \(before)")
        #expect((before["sync_dropped_bad_hmac"] ?? -1) == 0)

        // The forged message, from the peer's own address: dropped for its MAC, counted.
        let forged = try lab.run(.a, [LabTopology.python, lab.workDir + "/forge.py", HATopology.lanAddress(.a), HATopology.lanAddress(.b), "\(HATopology.syncPort)"])
        #expect(forged.succeeded, "\(forged.summary)")
        let counted = Semantics.waitUntil(timeout: 3) { (try? lab.stats(.b, masqd: masqd))?["sync_dropped_bad_hmac"] == 1 }
        #expect(counted, "B did not count the forged message: \((try? lab.stats(.b, masqd: masqd)) ?? [:])")

        // A dies.
        let (failover, after) = try lab.killAndTakeOver(.a, keepalived: keepalivedA, keepalivedName: "keepalived-a", engine: masqdA, masqd: masqd) {
            "\(keepalivedB.output)\n\(masqdB.output)"
        }
        print("HA failover: B active \(String(format: "%.2f", failover)) s after SIGKILL of A; installed \(after["takeover_installed_flows"] ?? -1) flows")
        #expect((after["takeover_installed_flows"] ?? 0) >= 2, "\(after)\n\(masqdB.output)")

        // A comes back while the download runs: standby (nopreempt), it takes nothing over.
        usleep(2_000_000)
        try lab.reviveRouter(.a)
        let masqdA2 = try lab.startMasqd(.a, masqd: masqd, name: "masqd-a2")
        let keepalivedA2 = try lab.startKeepalived(.a, masqd: masqd, repository: Self.repository, name: "keepalived-a2")
        try #require(keepalivedA2.waitForOutput(containing: "Entering BACKUP STATE", timeout: 10), "A again:\n\(keepalivedA2.output)")
        let resynced = Semantics.waitUntil(timeout: 10) { ((try? lab.stats(.a, masqd: masqd))?["sync_replicated_flows"] ?? 0) >= 1 }
        #expect(resynced, "B's state never reached the returning A: \((try? lab.stats(.a, masqd: masqd)) ?? [:])\n\(masqdA2.output)")

        // The download finishes whole; the idle connection answers from the same address and port.
        try #require(client.waitForOutput(containing: "download got", timeout: 30), "client:\n\(client.output)\nserver:\n\(server.output)\nB:\n\(masqdB.output)")
        let sent = Semantics.line(server.lines, startingWith: "download sent ")?.split(separator: " ") ?? []
        let got = Semantics.line(client.lines, startingWith: "download got ")?.split(separator: " ") ?? []
        #expect(sent.count == 4 && got.count == 6 && sent[2] == "1600000" && got[2] == "1600000" && sent[3] == got[3],
                "the download arrived changed or cut: sent \(sent), got \(got)")
        print("HA failover: the download's longest pause \(got.count == 6 ? String(got[5]) : "?") s")
        try Shell.check(["touch", trigger + "-2"])
        #expect(server.waitForOutput(containing: "idle reply echo line-2 from \(idlePeer)", timeout: 10),
                "the idle connection did not answer from \(idlePeer) after the failover:\nserver:\n\(server.output)\nclient:\n\(client.output)")
        let end = try lab.stats(.b, masqd: masqd)
        let returned = try lab.stats(.a, masqd: masqd)
        #expect(end["role_active"] == 1 && returned["role_active"] == 0, "B: \(end), A: \(returned)")
        // (Its standby_dropped counts its kernel's own ICMP errors to B's VRRP adverts before its
        // keepalived was up: outbound, so dropped, as a standby drops all it would send untranslated.)
        #expect(returned["flows_active"] == 0 && returned["translated_outbound"] == 0 && returned["translated_inbound"] == 0,
                "the returning A translated traffic: \(returned)")
        #expect((end["translated_inbound"] ?? 0) > 100 && end["verdict_drop"] == end["standby_dropped"], "B dropped nothing but as standby (a packet that met it between the address move and `role active`): \(end.filter { ($0.key.hasPrefix("drop") || $0.key.hasPrefix("standby") || $0.key.hasPrefix("verdict")) && $0.value != 0 })")
        #expect(masqdB.isRunning && masqdA2.isRunning)
    }
}
