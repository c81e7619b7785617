import Foundation
import Masqd
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Issue #20 item 1: a LAN host must not take the router's own ports. The router listens on
/// UDP 4500 (NAT-T); a server outside sends to WAN:4500 from its port 4500 every 0.3 s; a LAN
/// host sends once from its port 4500 to the server's 4500 — with port preservation alone
/// its mapping would be WAN:4500, and the server's packets would go to it instead of the
/// router. Real sockets in every namespace (python3), the real masqd and rules. Queue index 90.
@Suite(.timeLimit(.minutes(3)))
struct LocalPortTests {
    let wan = LabTopology.routerWANAddress          // 203.0.113.1
    let server = LabTopology.serverAddress

    /// The server's socket on 4500: sends "tick N" to WAN:4500 every 0.3 s for `seconds`,
    /// printing what arrives (the router's echoes and the LAN host's datagram).
    func ticker(seconds: Double) -> [String] {
        [LabTopology.python, "-u", "-c", """
        import socket, select, time
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("", 4500)); print("ready", flush=True)
        end = time.time() + \(seconds); n = 0; last = 0
        while time.time() < end:
            if time.time() - last >= 0.3:
                s.sendto(b"tick %d" % n, ("\(wan)", 4500)); n += 1; last = time.time()
            if select.select([s], [], [], 0.05)[0]:
                data, peer = s.recvfrom(65535)
                print("udp from %s:%d %r" % (peer[0], peer[1], data.decode(errors="replace")), flush=True)
        print("sent %d" % n, flush=True)
        """]
    }

    @Test("the router listens on UDP 4500; a LAN host sending from 4500 to server:4500 gets none of the server's packets to WAN:4500")
    func lanHostCannotTakeRoutersPort() throws {
        try Semantics.withEngine("lpa", queue: Integration.queue(90)) { lab, masqd in
            // The router's socket exists before masqd's first read of the socket tables (at start
            // it read none): the periodic refresh (2 s) must find it.
            let router = try lab.spawnHelper(.router, ["udpecho", "4500"], name: "router-4500")
            usleep(2_500_000)
            let ticker = try lab.spawn(.server, ticker(seconds: 7), name: "server-ticker")
            #expect(ticker.waitForOutput(containing: "ready", timeout: 10), "the ticker did not start:\n\(ticker.output)")
            usleep(1_500_000)
            let before = router.lines.filter { $0.contains("'tick") }.count
            // The LAN host: one datagram from its port 4500, then 4 s of listening on that socket.
            let host = try lab.run(.host1, lab.helper(["udpopen", server, "4500", "--sport", "4500", "--msg", "from-h1", "--wait", "4"]), timeout: 15)
            #expect(host.succeeded, "\(host.summary)")
            _ = ticker.waitForExit(timeout: 10)
            let after = router.lines.filter { $0.contains("'tick") }.count

            let hijacked = host.lines.filter { $0.hasPrefix("udp from") }
            #expect(hijacked.isEmpty, "the LAN host received packets meant for the router's port 4500:\n\(host.output)")
            #expect(before >= 3, "the router received only \(before) ticks before the LAN host sent:\n\(router.output)")
            #expect(after >= before + 10, "the router stopped receiving after the LAN host sent (\(before) ticks before, \(after) in all):\n\(router.output)")
            // The LAN host's datagram did go out, from the WAN address but not from its port 4500.
            let arrived = ticker.lines.filter { $0.contains("'from-h1'") }
            #expect(arrived.count == 1 && arrived.allSatisfy { $0.hasPrefix("udp from \(wan):") && !$0.hasPrefix("udp from \(wan):4500 ") },
                    "the server should get h1's datagram once, from \(wan) and a port other than 4500:\n\(ticker.output)")
            let stats = try Semantics.stats(lab, masqd)
            #expect((stats["pass_local_port"] ?? 0) >= after, "pass_local_port \(stats["pass_local_port"] ?? -1) after \(after) ticks to the router")
            #expect(stats["ports_skipped_local"] == 1, "ports_skipped_local: \(stats["ports_skipped_local"] ?? -1)")
        }
    }
}
