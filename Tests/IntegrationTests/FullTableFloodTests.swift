import Foundation
import Masqd
import MasqdLab
import Testing

/// A LAN host fills the translation table with flows from spoofed sources of its own prefix
/// (which the reverse-path check cannot catch) and goes on sending new ones (issue #20 item
/// 5): the new flows are refused with a reclaim step at most every millisecond, while a TCP
/// connection opened before keeps answering. The spoofed datagrams are written on a raw
/// socket (no real peer sends from addresses it does not have). Queue index 144.
@Suite(.integrationLimit)
struct FullTableFloodTests {
    @Test("new flows from spoofed sources against a full table are refused cheaply; an established connection keeps flowing")
    func spoofedFloodAgainstAFullTable() throws {
        try Integration.withEngine("rde", queue: Integration.queue(144), options: ["--max-flows", "1024"]) { lab, masqd in
            let echo = try lab.spawn(.server, [LabTopology.python, "-u", "-c", """
                import socket
                t = socket.socket(); t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); t.bind(("", 7001)); t.listen(1)
                print("ready", flush=True)
                c, _ = t.accept()
                while True:
                    b = c.recv(64)
                    if not b: break
                    c.sendall(b)
                """], name: "echo")
            try #require(echo.waitForOutput(containing: "ready"))
            // The established connection: one round trip now, then one every 20 ms once told to start.
            let go = lab.workDir + "/go"
            let pinger = try lab.spawn(.host2, [LabTopology.python, "-u", "-c", """
                import os, socket, time
                s = socket.create_connection(("\(LabTopology.serverAddress)", 7001), timeout=2)
                s.sendall(b"x"); s.recv(1); print("connected", flush=True)
                while not os.path.exists("\(go)"): time.sleep(0.01)
                ok, worst = 0, 0.0
                for _ in range(100):
                    t = time.time(); s.sendall(b"x")
                    if s.recv(1) == b"x": ok += 1
                    worst = max(worst, time.time() - t); time.sleep(0.02)
                print("round trips %d worst %.1f ms" % (ok, worst * 1000), flush=True)
                """], name: "pinger")
            try #require(pinger.waitForOutput(containing: "connected"), "pinger:\n\(pinger.output)")
            // 30000 UDP datagrams from 192.0.2.100-227, ports 1024-1279 (32768 endpoints), as fast as Python goes.
            let flood = try lab.spawn(.host1, [LabTopology.python, "-u", "-c", """
                import socket, struct, time
                s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
                dst = socket.inet_aton("\(LabTopology.serverAddress)")
                start = time.time()
                for i in range(30000):
                    src = bytes([192, 0, 2, 100 + (i % 128)]); sport = 1024 + (i // 128) % 256
                    udp = struct.pack("!HHHH", sport, 9, 12, 0) + b"spoo"
                    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), i & 0xffff, 0, 64, 17, 0, src, dst)
                    s.sendto(ip + udp, ("\(LabTopology.serverAddress)", 0))
                print("flood sent in %.0f ms" % ((time.time() - start) * 1000), flush=True)
                """], name: "flood")
            #expect(FileManager.default.createFile(atPath: go, contents: nil))
            #expect(flood.waitForOutput(containing: "flood sent", timeout: 60), "flood:\n\(flood.output)")
            #expect(pinger.waitForOutput(containing: "round trips", timeout: 30), "pinger:\n\(pinger.output)")
            #expect(pinger.output.contains("round trips 100 "), "the established connection must keep answering:\n\(pinger.output)")
            let stats = try Semantics.stats(lab, masqd)
            let refused = (stats["drop_mapping_table_full"] ?? 0) + (stats["drop_session_table_full"] ?? 0)
            let steps = stats["reclaim_steps"] ?? -1, skipped = stats["reclaim_steps_skipped"] ?? -1
            let elapsed = Double(Semantics.line(flood.lines, startingWith: "flood sent in ")?.split(separator: " ")[3] ?? "0") ?? 0
            #expect(refused >= 20_000, "refused new flows: \(refused)")
            #expect(steps + skipped == refused, "every refused flow is a step or a skip: \(steps) + \(skipped) vs \(refused)")
            // At most one step per millisecond of flood (plus slack for the table filling up).
            #expect(steps >= 1 && Double(steps) <= elapsed + 50, "reclaim steps \(steps) in \(elapsed) ms (skipped \(skipped))")
            #expect(stats["flows_active"] ?? 0 <= 1024)
            print("full-table flood: \(refused) refused, \(steps) reclaim steps, \(skipped) skipped, flood \(elapsed) ms; \(pinger.lines.last ?? "")")
        }
    }
}
