import Foundation
import Masqd
import MasqdLab
import MasqdShell
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// NAT behaviour end to end (issue #3): port forwards, ICMP errors translated both ways
/// (port unreachable, time exceeded, fragmentation needed), many flows, the mapping and
/// filtering behaviour a STUN client classifies, per-host limits and endpoint-independent
/// filtering. Real namespaces, real iptables, the real masqd binary; every test has its own
/// namespace prefix (mq<pid>s?) and NFQUEUE number (indices 8-15, next to MasqueradeTests' 1-7).
@Suite(.integrationLimit)
struct NATSemanticsTests: LabAddresses {
    // MARK: 1. port forwards

    @Test("port forwards: tcp:8080 → h1:80 serves a WAN client that h1 sees as itself; udp:9000 → h2:9999 answers from the WAN address")
    func portForward() throws {
        let options = ["--forward", "tcp:8080=\(h1):80", "--forward", "udp:9000=\(h2):9999"]
        try Integration.withEngine("sa", queue: Integration.queue(8), options: options) { lab, _ in
            let file = try lab.serveRandomFile("forwarded.bin", megabytes: 4, from: .host1, port: 80, helperName: "http-h1")
            let copy = lab.workDir + "/fetched.bin"
            let echo = try lab.spawnHelper(.host2, ["udpecho", "9999"], name: "udpecho-h2")

            // TCP: the WAN server fetches from the router's WAN address and port 8080.
            let curl = try lab.curl(from: .server, "http://\(wan):8080/forwarded.bin", to: copy, writeOut: "%{remote_ip}:%{remote_port} %{size_download}")
            #expect(curl.succeeded, "\(curl.summary)")
            #expect(curl.stdout == "\(wan):8080 4194304", "curl on the server: \(curl.stdout)")
            let sum = try Semantics.sha256(copy)
            #expect(sum == file.sha256, "the forwarded download differs: sha256 \(sum), served \(file.sha256)")
            let clients = file.clients
            #expect(!clients.isEmpty, "h1's HTTP server logged no request:\n\(file.http.output)")
            #expect(clients.allSatisfy { $0 == server }, "h1 saw clients \(clients), expected the real remote \(server) only")

            // UDP: the echo on h2 sees the real remote; the reply comes back from 203.0.113.1:9000.
            let udp = try lab.run(.server, lab.helper(["udpsend", wan, "9000", "--sport", "45000", "--msg", "fwd-udp"]), timeout: 15)
            #expect(udp.succeeded, "\(udp.summary)")
            #expect(udp.stdout.contains("reply from \(wan):9000 'echo fwd-udp seen-from \(server):45000'"),
                    "the UDP forward's reply must come from \(wan):9000 and show h2 saw \(server):45000:\n\(udp.output)")
            #expect(echo.lines.contains("udp from \(server):45000 'fwd-udp'"), "h2's echo log:\n\(echo.output)")
        }
    }

    // MARK: 2. port unreachable

    @Test("UDP to a closed port on the server: the LAN client's connected socket gets ECONNREFUSED")
    func udpClosedPort() throws {
        try Integration.withEngine("sb", queue: Integration.queue(9)) { lab, _ in
            let sniff = try lab.spawnHelper(.server, ["sniff", "eth0", "--outgoing"], name: "sniff-s")
            // Nothing listens on 5555 in the server namespace.
            let plain = try lab.run(.host1, lab.helper(["udpprobe", server, "5555", "--sport", "41000"]), timeout: 15)
            #expect(plain.succeeded && plain.stdout.contains("refused (ECONNREFUSED)"),
                    "connected UDP socket to \(server):5555 did not get ECONNREFUSED:\n\(plain.summary)")
            // The same with IP_RECVERR: the error names the server and is a port unreachable (3/3).
            let detail = try lab.run(.host1, lab.helper(["udpprobe", server, "5555", "--sport", "41001", "--recverr"]), timeout: 15)
            #expect(detail.stdout.contains("icmp-error from \(server) type=3 code=3 errno=ECONNREFUSED"),
                    "IP_RECVERR did not report the server's port unreachable:\n\(detail.summary)")
            usleep(200_000)
            // The server really answered the WAN address (so the error was translated on the way in).
            let seen = SniffedPacket.parse(sniff.lines)
            #expect(seen.contains { $0.incoming && $0.proto == "udp" && $0.source == wan },
                    "the server saw no UDP from \(wan):\n\(sniff.output)")
            #expect(seen.contains { !$0.incoming && $0.proto == "icmp" && $0.source == server && $0.destination == wan && $0.icmpKind == nil },
                    "the server sent no ICMP error to \(wan):\n\(sniff.output)")
        }
    }

    // MARK: 3. time exceeded

    @Test("TTL-limited probes to a host beyond the server get time exceeded from 203.0.113.2, quoted packet translated back")
    func timeExceeded() throws {
        try Integration.withEngine("sc", queue: Integration.queue(10), farHost: true) { lab, _ in
            // ICMP echo with TTL 2: the router forwards it with TTL 1, the server cannot.
            // Both hosts use identifier 4242; each must get its own probe back, quoted untranslated.
            for node in [LabTopology.Node.host1, .host2] {
                let me = LabTopology.address(of: node)
                let icmp = try lab.run(node, lab.helper(["icmpprobe", far, "--ttl", "2", "--id", "4242"]), timeout: 15)
                #expect(icmp.succeeded, "\(node.rawValue): \(icmp.summary)")
                #expect(icmp.stdout.contains("icmp type=11 code=0 from \(server) quoting \(me) -> \(far) type=8 id=4242 "),
                        "\(node.rawValue): expected a time exceeded from \(server) quoting \(me) -> \(far) echo id 4242:\n\(icmp.output)")
                #expect(icmp.stdout.contains("checksums=ok"), "\(node.rawValue): bad ICMP or quoted IP checksum:\n\(icmp.output)")
            }
            // UDP probe with TTL 2 (traceroute-style): IP_RECVERR reports the server as the hop.
            let udp = try lab.run(.host1, lab.helper(["udpprobe", far, "33434", "--ttl", "2", "--recverr"]), timeout: 15)
            #expect(udp.stdout.contains("icmp-error from \(server) type=11 code=0 errno=EHOSTUNREACH"),
                    "TTL 2 UDP probe: expected time exceeded from \(server):\n\(udp.summary)")
            // Control: with TTL 3 the probe reaches the far host, which answers port unreachable.
            let reach = try lab.run(.host1, lab.helper(["udpprobe", far, "33435", "--ttl", "3", "--recverr"]), timeout: 15)
            #expect(reach.stdout.contains("icmp-error from \(far) type=3 code=3 errno=ECONNREFUSED"),
                    "TTL 3 UDP probe: expected port unreachable from \(far):\n\(reach.summary)")
        }
    }

    // MARK: 4. path MTU discovery

    @Test("PMTU: an 8 MB TCP upload to a host behind a 1280-byte link completes; h1 learns path MTU 1280")
    func pathMTU() throws {
        try Integration.withEngine("sd", queue: Integration.queue(11), farHost: true, farLinkMTU: 1280) { lab, _ in
            // The far host advertises MSS 1460 although its link has MTU 1280, so h1 sends
            // 1500-byte DF segments and only a translated "fragmentation needed" can save the upload.
            try lab.check(.far, ["ip", "route", "change", "default", "via", LabTopology.serverFarAddress, "advmss", "1460"])
            let sniff = try lab.spawnHelper(.server, ["sniff", "eth0", "--outgoing"], name: "sniff-s")
            let sink = try lab.spawnHelper(.far, ["tcpsink", "7000"], name: "tcpsink-f")
            let file = lab.workDir + "/upload.bin"
            let hash = try ServedFile.random(file, megabytes: 8)

            let upload = try lab.run(.host1, lab.helper(["tcpupload", far, "7000", file, "--timeout", "30"]), timeout: 90)
            #expect(upload.succeeded, "\(upload.summary)")
            #expect(upload.stdout.contains("sent 8388608 bytes sha256 \(hash)"), "\(upload.output)")
            #expect(upload.stdout.contains("sink says 8388608 \(hash)"), "the far host received something else:\n\(upload.output)")
            #expect(sink.waitForOutput(containing: "received 8388608 bytes sha256 \(hash) from \(wan):", timeout: 5),
                    "far host's sink:\n\(sink.output)")
            #expect(upload.stdout.contains("path mtu 1280 "), "h1's socket did not learn path MTU 1280:\n\(upload.output)")
            let route = try lab.check(.host1, ["ip", "route", "get", far])
            #expect(route.stdout.contains("mtu 1280"), "h1 has no cached path MTU 1280 for \(far):\n\(route.stdout)")
            // The server did send "fragmentation needed" to the WAN address (PMTUD was exercised).
            #expect(SniffedPacket.parse(sniff.lines).contains {
                !$0.incoming && $0.proto == "icmp" && $0.source == server && $0.destination == wan && $0.icmpKind == nil
            }, "the server sent no ICMP error to \(wan), so PMTU discovery was not exercised:\n\(sniff.output)")
        }
    }

    // MARK: 5. many flows

    @Test("3000 concurrent UDP flows from one LAN host are all answered; flows_active >= 3000")
    func manyFlows() throws {
        try Integration.withEngine("se", queue: Integration.queue(12)) { lab, masqd in
            let echo = try lab.spawnHelper(.server, ["udpecho", "9999", "--rcvbuf", "8388608"], name: "udpecho")
            let flows = try lab.run(.host1, lab.helper(["udpflows", server, "9999", "--count", "3000", "--tries", "5", "--timeout", "2"]), timeout: 120)
            #expect(flows.succeeded && flows.stdout.contains("answered 3000 of 3000, wrong 0"), "\(flows.summary)")
            let stats = try Semantics.stats(lab, masqd)
            #expect((stats["flows_active"] ?? 0) >= 3000, "flows_active \(stats["flows_active"] ?? -1), expected >= 3000")
            #expect(stats["drop_session_table_full"] == 0 && stats["drop_host_session_limit"] == 0, "\(stats)")
            // "udp from 203.0.113.1:PORT 'flow-N'": every flow from the WAN address, each with its own port.
            var portOf: [String: Set<String>] = [:]
            var foreign: [String] = []
            for line in echo.lines where line.hasPrefix("udp from ") {
                let f = line.split(separator: " ")
                let peer = f[2].split(separator: ":")
                if peer[0] != wan { foreign.append(line) }
                portOf[String(f[3]), default: []].insert(String(peer[1]))
            }
            #expect(foreign.isEmpty, "the server saw sources other than \(wan): \(foreign.prefix(5))")
            #expect(portOf.count == 3000, "the server saw \(portOf.count) distinct flows, expected 3000")
            #expect(portOf.values.allSatisfy { $0.count == 1 }, "a flow changed its WAN port between retries")
            #expect(Set(portOf.values.flatMap { $0 }).count == 3000, "3000 flows should use 3000 distinct WAN ports")
        }
    }

    // MARK: 6. STUN classification

    @Test("STUN: stun-client on h1 classifies masqd as independent mapping, preserving ports, port-dependent filter")
    func stunClassification() throws {
        guard let stun = Shell.which("stun"), let stund = Shell.which("stund") else {
            throw IntegrationFailure("this test needs stun-client and stun-server (apt-get install -y stun-client stun-server)")
        }
        try Integration.withEngine("sf", queue: Integration.queue(13)) { lab, _ in
            let second = "203.0.113.3"
            try lab.check(.server, ["ip", "addr", "add", "\(second)/24", "dev", "eth0"])
            let daemon = try lab.spawn(.server, [stund, "-h", server, "-a", second], name: "stund")
            let listening = try Semantics.waitUntil(timeout: 10) {
                let ss = try lab.run(.server, ["ss", "-Hlun"], timeout: 5).stdout
                return ss.contains("\(server):3478") && ss.contains("\(second):3479")
            }
            guard listening else { throw IntegrationFailure("stund did not start in the server namespace:\n\(daemon.output)") }

            // stun 0.97 prints e.g.
            // "Primary: Independent Mapping, Port Dependent Filter, preserves ports, no hairpin"
            // From a port above the router's ephemeral range (32768-60999): ports in it are not
            // preserved by default (--reserve-local-port-range, issue #20 item 1).
            let client = try lab.run(.host1, [stun, server, "-p", "61234"], timeout: 60)
            #expect(!client.timedOut, "\(client.summary)")
            let primary = Semantics.line(client.lines, startingWith: "Primary: ") ?? ""
            #expect(primary.contains("Primary: Independent Mapping,"), "stun did not report independent mapping:\n\(client.output)")
            #expect(primary.contains(", preserves ports,"), "stun did not report port preservation:\n\(client.output)")
            #expect(primary.contains(", Port Dependent Filter,"),
                    "with the default address-and-port-dependent filtering stun should report a port dependent filter:\n\(client.output)")
        }
    }

    // MARK: 7. per-host limit

    @Test("--max-flows-per-host 20: of 30 UDP flows from h1 exactly 20 are answered, the rest dropped and counted; h2 still works")
    func perHostLimit() throws {
        try Integration.withEngine("sg", queue: Integration.queue(14), options: ["--max-flows-per-host", "20"]) { lab, masqd in
            let echo = try lab.spawnHelper(.server, ["udpecho", "9999"], name: "udpecho")
            let flows = try lab.run(.host1, lab.helper(["udpflows", server, "9999", "--count", "30", "--tries", "2", "--timeout", "1"]), timeout: 30)
            #expect(flows.stdout.contains("answered 20 of 30, wrong 0"), "\(flows.summary)")
            let stats = try Semantics.stats(lab, masqd)
            #expect((stats["drop_host_session_limit"] ?? 0) > 0, "drop_host_session_limit is \(stats["drop_host_session_limit"] ?? -1)")
            let h1Flows = Set(echo.lines.filter { $0.hasPrefix("udp from ") && $0.contains("'flow-") }.map { $0.split(separator: " ")[3] })
            #expect(h1Flows.count == 20, "the server saw \(h1Flows.count) of h1's flows, expected 20:\n\(echo.output)")

            let other = try lab.run(.host2, lab.helper(["udpsend", server, "9999", "--msg", "from-h2"]), timeout: 15)
            #expect(other.succeeded && other.stdout.contains("'echo from-h2 seen-from \(wan):"), "h2 is affected by h1's limit:\n\(other.summary)")
        }
    }

    // MARK: 8. filtering

    @Test("endpoint-independent filtering admits a datagram from a new server port to an open mapping; the default filtering does not")
    func endpointIndependentFiltering() throws {
        let queue = Integration.queue(15)
        let eif = try holePunchFromNewPort("sh", queue: queue, options: ["--filtering", "endpoint-independent"])
        #expect(eif.delivered, "with --filtering endpoint-independent, 203.0.113.2:7777 → \(wan):PORT did not reach h1:\n\(eif.log)")
        let apdf = try holePunchFromNewPort("si", queue: queue, options: [])
        #expect(!apdf.delivered, "with the default filtering, 203.0.113.2:7777 → \(wan):PORT reached h1:\n\(apdf.log)")
    }

    /// h1 sends from port 40100 to the server's echo on 9999 (opening a mapping), then the
    /// server sends from port 7777 to the mapped WAN port. Returns whether h1 got that datagram.
    private func holePunchFromNewPort(_ tag: String, queue: Int, options: [String]) throws -> (delivered: Bool, log: String) {
        try Integration.withEngine(tag, queue: queue, options: options) { lab, _ in
            let echo = try lab.spawnHelper(.server, ["udpecho", "9999"], name: "udpecho")
            let open = try lab.spawnHelper(.host1, ["udpopen", server, "9999", "--sport", "40100", "--msg", "open", "--wait", "4"], name: "udpopen")
            var mapped: String?
            _ = Semantics.waitUntil(timeout: 5) {
                // "udp from 203.0.113.1:40100 'open'"
                mapped = echo.lines.first { $0.hasPrefix("udp from \(wan):") && $0.hasSuffix("'open'") }
                    .map { String($0.split(separator: " ")[2].split(separator: ":")[1]) }
                return mapped != nil
            }
            guard let port = mapped else { throw IntegrationFailure("the server never saw h1's datagram:\n\(echo.output)") }
            // The mapping works for the endpoint h1 talked to.
            #expect(open.waitForOutput(containing: "udp from \(server):9999 'echo open", timeout: 3), "h1 got no echo:\n\(open.output)")
            _ = try lab.run(.server, lab.helper(["udpsend", wan, port, "--sport", "7777", "--tries", "1", "--timeout", "0.3", "--msg", "from-new-port"]), timeout: 10)
            _ = open.waitForExit(timeout: 10)
            let delivered = open.lines.contains("udp from \(server):7777 'from-new-port'")
            return (delivered, "mapped port \(port)\n\(options.joined(separator: " "))\nh1:\n\(open.output)")
        }
    }
}
