import Foundation
import Masqd
import MasqdLab
import MasqdShell
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Issue #20 item 1: a LAN host must not take the router's own ports. The router listens on
/// UDP 4500 (NAT-T); a server outside sends to WAN:4500 from its port 4500 every 0.3 s; a LAN
/// host sends once from its port 4500 to the server's 4500 — with port preservation alone
/// its mapping would be WAN:4500, and the server's packets would go to it instead of the
/// router. Real sockets in every namespace (python3), the real masqd and rules. Queue index 90.
@Suite(.integrationLimit)
struct LocalPortTests: LabAddresses {
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
        try Integration.withEngine("lpa", queue: Integration.queue(90)) { lab, masqd in
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

    @Test("a TCP listener the router opens while masqd runs is kept from mappings at the next 2 s refresh, which reads listeners by sock_diag (not /proc/net/tcp)")
    func tcpListenerFoundByRefresh() throws {
        let masqd = try Integration.masqdExecutable()
        try Integration.withTopology("lpt") { lab in
            let engine = try lab.startEngine(masqd: masqd, queue: Integration.queue(197))
            defer { engine.stop(grace: 5) }
            #expect(engine.waitForOutput(containing: "kept from mappings: 0 TCP", timeout: 10), "no first reading:\n\(engine.output)")
            // After the forced full read at start: only a refresh between full reads can find it.
            let listener = try lab.spawnHelper(.router, ["tcpsink", "4501"], name: "router-tcp-4501")
            defer { listener.stop(grace: 1) }
            #expect(engine.waitForOutput(containing: "kept from mappings: 1 TCP", timeout: 6),
                    "the router's TCP listener on 4501 was not found by the refresh:\n\(engine.output)")
            #expect(engine.isRunning, "masqd run died (status \(engine.exitStatus ?? -1)):\n\(engine.output)")
        }
    }

    @Test("a TCP connection of the router's own, seen by the full read at start, stays kept from mappings through the 2 s refreshes that read only listeners")
    func routerConnectionKeptBetweenFullReads() throws {
        let masqd = try Integration.masqdExecutable()
        try Integration.withTopology("lpk") { lab in
            let sink = try lab.spawnHelper(.server, ["tcpsink", "5001"], name: "server-sink")
            defer { sink.stop(grace: 1) }
            #expect(sink.waitForOutput(containing: "ready", timeout: 10), "the sink did not start:\n\(sink.output)")
            // The router's own connection from its WAN address, open for 10 s.
            let client = try lab.spawn(.router, [LabTopology.python, "-u", "-c", """
                import socket, time
                s = socket.create_connection(("\(server)", 5001), source_address=("\(wan)", 0)); print("connected", flush=True)
                time.sleep(10)
                """], name: "router-client")
            defer { client.stop(grace: 1) }
            #expect(client.waitForOutput(containing: "connected", timeout: 10), "the router did not connect:\n\(client.output)")
            let engine = try lab.startEngine(masqd: masqd, queue: Integration.queue(198))
            defer { engine.stop(grace: 5) }
            #expect(engine.waitForOutput(containing: "kept from mappings: 1 TCP", timeout: 10), "the start's full read missed the connection:\n\(engine.output)")
            usleep(4_500_000) // two refreshes that read listeners only
            #expect(!engine.output.contains("kept from mappings: 0 TCP"),
                    "a refresh between full reads dropped the router's connection:\n\(engine.output)")
            #expect(engine.isRunning, "masqd run died (status \(engine.exitStatus ?? -1)):\n\(engine.output)")
        }
    }

    /// The port the server's udpecho saw a LAN host's datagram from ("… seen-from WAN:PORT'").
    static func seenPort(_ reply: CommandResult) -> Int? {
        guard let range = reply.stdout.range(of: "seen-from \(LabTopology.routerWANAddress):") else { return nil }
        return Int(reply.stdout[range.upperBound...].prefix { $0.isNumber })
    }

    @Test("the router's ephemeral range is kept from mappings by default; a reload with reserve-local-port-range: no preserves ports in it")
    func ephemeralRangeReservedThenReleased() throws {
        try ReloadAndMetricsTests.withConfiguredEngine("lpc", queueIndex: 92, yaml: { lab, queue in
            ReloadAndMetricsTests.baseYAML(lab, queue: queue, forwards: ["tcp:8080=\(LabTopology.host1Address):80"])
        }) { lab, masqd, config, engine in
            let range = try lab.check(.router, ["cat", "/proc/sys/net/ipv4/ip_local_port_range"]).stdout
            #expect(range.split(whereSeparator: \.isWhitespace) == ["32768", "60999"], "the router namespace's range: \(range)")
            _ = try lab.spawnHelper(.server, ["udpecho", "9999"], name: "udpecho")
            let first = try lab.run(.host1, lab.helper(["udpsend", server, "9999", "--sport", "40000", "--msg", "reserved"]), timeout: 15)
            let port = Self.seenPort(first)
            #expect(port.map { !(32768...60999).contains($0) && $0 >= 1024 } == true, "h1's 40000 went out as \(port ?? -1):\n\(first.output)")
            var stats = try Semantics.stats(lab, masqd)
            #expect(stats["local_ports_reserved"] == 60999 - 32768 + 1 && stats["ports_skipped_local"] == 1, "\(stats.filter { $0.key.contains("local") })")

            let yaml = try String(contentsOfFile: config, encoding: .utf8) + "\nreserve-local-port-range: no\n"
            try yaml.write(toFile: config, atomically: true, encoding: .utf8)
            let line = try ReloadAndMetricsTests.hangUp(engine, expecting: "reloaded")
            #expect(line.contains("reserve-local-port-range now no"), "\(line)")
            let second = try lab.run(.host2, lab.helper(["udpsend", server, "9999", "--sport", "40001", "--msg", "free"]), timeout: 15)
            #expect(Self.seenPort(second) == 40001, "h2's 40001 should be preserved now:\n\(second.output)")
            stats = try Semantics.stats(lab, masqd)
            #expect(stats["local_ports_reserved"] == 0 && stats["ports_skipped_local"] == 1, "\(stats.filter { $0.key.contains("local") })")
        }
    }
}
