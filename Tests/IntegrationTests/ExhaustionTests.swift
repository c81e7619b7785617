import Foundation
import Masqd
import MasqdLab
import MasqdShell
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Floods against the caps, end to end: SYN floods from outside (to a forward) and from
/// inside (to many ports), UDP port scans both ways, and PORT commands flooding the FTP
/// helper's expectations. In each, the cap is shown to hit (its counter moves, the table
/// stops at the cap), the other LAN host's traffic works during and after, and masqd's
/// memory stays flat (MemoryTrace). Every flood is sent in two halves of 10 000 packets at
/// 5 000 a second (the debug build keeps up; the legitimate flow shares the queue).
/// Serialized: two floods at once on a small machine would measure the machine, not masqd.
/// Queue indices 53-57.
@Suite(.serialized, .integrationLimit)
struct ExhaustionTests: LabAddresses {
    static let half = 10_000
    static let rate = 5_000
    /// Caps for these tests. Tables are sized by --max-flows at start: 4096 rows each of
    /// sessions, mappings and hosts with their hash indexes are well under 2 MiB; with the
    /// fragment pool (4 MiB), the helper buffers (~0.2 MiB) and the queue's receive buffer,
    /// everything a flood can touch for the first time is under 8 MiB.
    static let caps = ["--max-flows", "4096", "--max-flows-per-host", "1000"]
    static let tableBudgetKiB = 8 * 1024

    /// The server's HTTP root with a 4 MiB file; returns its sha256.
    private func serveFile(_ lab: LabTopology) throws -> String {
        try lab.serveRandomFile("file.bin", megabytes: 4, from: .server, port: 8000, rate: 2_000_000).sha256
    }

    /// h2 downloads the file at 2 MB/s (paced by the server) in the background (about 2 s: as long as a half).
    private func startDownload(_ lab: LabTopology, _ name: String) throws -> (BackgroundProcess, String) {
        let copy = lab.workDir + "/\(name).bin"
        let curl = try lab.spawnCurl(from: .host2, "http://\(server):8000/file.bin", to: copy, maxTime: 20, name: name)
        return (curl, copy)
    }

    private func expectDownload(_ download: (BackgroundProcess, String), sha: String, _ when: String,
                                sourceLocation: SourceLocation = #_sourceLocation) throws {
        let status = download.0.waitForExit(timeout: 25)
        #expect(status == 0, "h2's download \(when) failed (status \(status.map(String.init) ?? "still running")):\n\(download.0.output)",
                sourceLocation: sourceLocation)
        #expect(try Semantics.sha256(download.1) == sha, "h2's download \(when) differs", sourceLocation: sourceLocation)
    }

    /// h2's UDP echo through the NAT, after the flood.
    private func expectUDPWorks(_ lab: LabTopology, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let reply = try lab.run(.host2, lab.helper(["udpsend", server, "7777", "--msg", "after-flood"]), timeout: 15)
        #expect(reply.succeeded && reply.stdout.contains("'echo after-flood seen-from \(wan):"), "h2's UDP after the flood: \(reply.summary)",
                sourceLocation: sourceLocation)
    }

    /// Serves the file and h2's UDP echo, reads the counters, then runs the two halves, h2
    /// downloading during the first and after the second, and traces memory. Returns the
    /// counters from before the flood and the trace.
    private func flood(_ lab: LabTopology, _ masqd: String, engine: BackgroundProcess,
                       _ half: (_ first: Int) throws -> Void) throws -> (before: [String: Int], trace: MemoryTrace) {
        let sha = try serveFile(lab)
        _ = try lab.spawnHelper(.server, ["udpecho", "7777"], name: "udpecho")
        let before = try Semantics.stats(lab, masqd)
        var trace = MemoryTrace()
        #expect((try? String(contentsOfFile: "/proc/\(engine.pid)/comm", encoding: .utf8))?.hasPrefix("masqd") == true,
                "pid \(engine.pid) is not masqd")
        // Warm-up: one download, so buffers touched by ordinary traffic are in the baseline.
        try expectDownload(try startDownload(lab, "warmup"), sha: sha, "before the flood")
        trace.baseline = try Robust.rssKiB(pid: engine.pid)
        let (_, peak) = try Robust.peakRSS(pid: engine.pid) { () throws -> Void in
            // The download shares the first half, which fills the caps; the second half is
            // the flood alone, against full caps: the steady state a leak would show in.
            let during = try startDownload(lab, "during")
            try half(0)
            try expectDownload(during, sha: sha, "during the flood")
            trace.afterFirstHalf = try Robust.rssKiB(pid: engine.pid)
            try half(Self.half)
            trace.afterSecondHalf = try Robust.rssKiB(pid: engine.pid)
        }
        trace.peak = peak
        try expectDownload(try startDownload(lab, "after"), sha: sha, "after the flood")
        return (before, trace)
    }

    @Test("SYN flood from 250 outside addresses to a forwarded port: the target's cap holds at 1000, h2 is not affected")
    func synFloodToForward() throws {
        try Integration.withEngine(scapy: true, "rbc", queue: Integration.queue(53), options: ["--forward", "tcp:8080=\(h1):80"] + Self.caps) { lab, masqd, engine in
            let (before, trace) = try flood(lab, masqd, engine: engine) { first in
                try Flood.run(lab, from: .server, .synFromManySources, source: "198.51.100.0", destination: wan, destinationPort: 8080,
                              first: first, count: Self.half, rate: Self.rate, seed: first + 1)
            }
            try expectUDPWorks(lab)
            let stats = try Semantics.stats(lab, masqd)
            let moved = Robust.moved(before, stats)
            #expect(moved["sessions_opened_inbound"] == 1000, "the forward took \(moved["sessions_opened_inbound"] ?? 0) sessions, cap 1000: \(moved)")
            #expect((moved["drop_host_session_limit"] ?? 0) >= Self.half, "drop_host_session_limit moved by \(moved["drop_host_session_limit"] ?? 0)")
            #expect((stats["flows_active"] ?? .max) <= 1000 + 10, "flows_active \(stats["flows_active"] ?? -1)")
            trace.check(tableBudgetKiB: Self.tableBudgetKiB)
            print("synFloodToForward: \(trace); drops \(Robust.drops(moved))")
        }
    }

    @Test("SYN flood from h1 to thousands of ports: h1 stops at its cap of 1000 flows, h2 is not affected")
    func synFloodFromInside() throws {
        try Integration.withEngine(scapy: true, "rbd", queue: Integration.queue(54), options: Self.caps) { lab, masqd, engine in
            let (before, trace) = try flood(lab, masqd, engine: engine) { first in
                try Flood.run(lab, from: .host1, .synToManyPorts, source: h1, destination: server,
                              first: first, count: Self.half, rate: Self.rate, seed: first + 1)
            }
            try expectUDPWorks(lab)
            let stats = try Semantics.stats(lab, masqd)
            let moved = Robust.moved(before, stats)
            let h1Flows = try lab.masqd(masqd, ["flows", "--control", lab.controlPath, h1]).lines.count
            #expect(h1Flows == 1000, "h1 has \(h1Flows) flows, cap 1000")
            #expect((moved["drop_host_session_limit"] ?? 0) >= Self.half, "drop_host_session_limit moved by \(moved["drop_host_session_limit"] ?? 0)")
            #expect((stats["mappings_active"] ?? .max) <= 1000 + 10, "mappings_active \(stats["mappings_active"] ?? -1): refused flows must not keep mappings")
            trace.check(tableBudgetKiB: Self.tableBudgetKiB)
            print("synFloodFromInside: \(trace); drops \(Robust.drops(moved))")
        }
    }

    @Test("UDP scan of the WAN address from outside: everything goes to the router's stack, no flow is made")
    func udpScanFromOutside() throws {
        try Integration.withEngine(scapy: true, "rbe", queue: Integration.queue(55), options: Self.caps) { lab, masqd, engine in
            let (before, trace) = try flood(lab, masqd, engine: engine) { first in
                try Flood.run(lab, from: .server, .udpScan, source: server, destination: wan, sourcePort: 53000,
                              first: first, count: Self.half, rate: Self.rate)
            }
            let stats = try Semantics.stats(lab, masqd)
            let moved = Robust.moved(before, stats)
            // The scan itself is unmatched; the only flows are h2's three downloads (before,
            // during, after).
            #expect((moved["inbound_unmatched"] ?? 0) >= 2 * Self.half * 9 / 10, "inbound_unmatched moved by \(moved["inbound_unmatched"] ?? 0)")
            #expect(moved["flows_created"] == 3 && moved["mappings_created"] == 3,
                    "the scan made flows: \(moved.filter { !$0.key.hasPrefix("latency") })")
            #expect(moved["sessions_opened_inbound"] == nil, "the scan opened sessions: \(moved)")
            #expect(Robust.drops(moved).isEmpty, "drops during a scan of closed ports: \(Robust.drops(moved))")
            try expectUDPWorks(lab)
            trace.check(tableBudgetKiB: Self.tableBudgetKiB)
            print("udpScanFromOutside: \(trace); moved \(moved.filter { !$0.key.hasPrefix("latency") })")
        }
    }

    @Test("UDP scan from h1 over 20 000 ports with --max-flows-per-host 1000: 1000 flows, the rest dropped and counted; h2 is not affected")
    func udpScanFromInside() throws {
        try Integration.withEngine(scapy: true, "rbf", queue: Integration.queue(56), options: Self.caps) { lab, masqd, engine in
            let (before, trace) = try flood(lab, masqd, engine: engine) { first in
                try Flood.run(lab, from: .host1, .udpScan, source: h1, destination: server, sourcePort: 41000,
                              first: first, count: Self.half, rate: Self.rate)
            }
            try expectUDPWorks(lab)
            let stats = try Semantics.stats(lab, masqd)
            let moved = Robust.moved(before, stats)
            let h1Flows = try lab.masqd(masqd, ["flows", "--control", lab.controlPath, h1]).lines.count
            #expect(h1Flows == 1000, "h1 has \(h1Flows) flows, cap 1000")
            let limited = moved["drop_host_session_limit"] ?? 0
            #expect(limited >= 2 * Self.half * 9 / 10 - 1000 && limited <= 2 * Self.half - 1000,
                    "drop_host_session_limit moved by \(limited), expected up to \(2 * Self.half - 1000)")
            #expect(stats["mappings_active"].map { $0 <= 10 } == true, "one source port is one mapping: mappings_active \(stats["mappings_active"] ?? -1)")
            trace.check(tableBudgetKiB: Self.tableBudgetKiB)
            print("udpScanFromInside: \(trace); drops \(Robust.drops(moved))")
        }
    }

    @Test("200 PORT commands on one FTP control connection: 8 expectations (the per-connection cap), the rest refused and counted; h2's FTP transfer works")
    func ftpExpectationFlood() throws {
        try FTPLab.requireTools()
        try Integration.withEngine(scapy: true, "rbg", queue: Integration.queue(57), options: ["--helper-ports", "ftp=21,2121"] + Self.caps) { lab, masqd, engine in
            // Port 21: a sink that greets as an FTP server must (the helper follows nothing
            // else) and then never answers (so no PORT is ever used up by a data connection);
            // port 2121: a real FTP server for h2.
            let sinkScript = """
            import socket
            l = socket.socket(); l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            l.bind(("0.0.0.0", 21)); l.listen(1); print("listening", flush=True)
            c, _ = l.accept(); c.sendall(b"220 sink\\r\\n"); n = 0
            while True:
                d = c.recv(65536)
                if not d: break
                n += len(d)
            print("received %d" % n, flush=True); c.sendall(b"221 bye\\r\\n"); c.close()
            """
            let sink = try lab.spawn(.server, [LabTopology.python, "-c", sinkScript], name: "sink")
            #expect(sink.waitForOutput(containing: "listening", timeout: 5), "\(sink.output)")
            let root = lab.workDir + "/ftp"
            let sums = try FTPLab.makeFiles(in: root, [("file.bin", 1 << 20)])
            _ = try FTPLab.startPyftpdlib(lab, on: .server, bind: server, port: 2121, root: root, name: "pyftpdlib")
            let before = try Semantics.stats(lab, masqd)
            let baseline = try Robust.rssKiB(pid: engine.pid)
            let script = """
            import socket, time
            s = socket.create_connection(("\(server)", 21))
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            s.recv(100)  # the greeting first, as a real client waits for it
            for i in range(200):
                p = 20000 + i
                s.sendall(b"PORT 192,0,2,10,%d,%d\\r\\n" % (p >> 8, p & 255))
                time.sleep(0.005)
            s.shutdown(socket.SHUT_WR)
            print(s.recv(100).decode().strip(), flush=True)
            """
            let (flood, peak) = try Robust.peakRSS(pid: engine.pid) {
                try lab.run(.host1, [LabTopology.python, "-c", script], timeout: 30)
            }
            #expect(flood.succeeded, "\(flood.summary)")
            let copy = lab.workDir + "/h2.bin"
            let curl = try FTPLab.curl(lab, from: .host2, "ftp://\(server):2121/file.bin", to: copy, ["-P", "-", "--disable-eprt"])
            #expect(curl.succeeded, "h2's active-mode FTP download: \(curl.summary)")
            #expect(try Semantics.sha256(copy) == sums["file.bin"], "h2's FTP download differs")
            let stats = try Semantics.stats(lab, masqd)
            let moved = Robust.moved(before, stats)
            #expect(stats["helper_expectations_pending"] == 8, "pending expectations: \(stats["helper_expectations_pending"] ?? -1) (h1's 8)")
            #expect(moved["helper_ftp_expectations"] == 9, "expectations made: \(moved["helper_ftp_expectations"] ?? 0), expected h1's 8 + h2's 1")
            #expect((moved["helper_ftp_limit"] ?? 0) >= 150, "helper_ftp_limit moved by \(moved["helper_ftp_limit"] ?? 0)")
            #expect(sink.output.contains("received"), "the sink did not see the whole control stream:\n\(sink.output)")
            #expect(peak - baseline < Self.tableBudgetKiB, "masqd grew by \(peak - baseline) KiB")
            print("ftpExpectationFlood: VmRSS baseline \(baseline) KiB, peak \(peak) KiB; \(FTPLab.helperStats(stats))")
        }
    }
}
