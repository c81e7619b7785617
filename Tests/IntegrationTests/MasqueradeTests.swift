import Foundation
import Masqd
import MasqdLab
import MasqdShell
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// End to end through real namespaces, real iptables and the real masqd binary (issue #2).
/// Every test has its own namespaces (prefix mq<pid><letter>) and its own NFQUEUE number,
/// so they run in parallel.
@Suite(.integrationLimit)
struct MasqueradeTests: LabAddresses {
    @Test("two LAN hosts ping the server at once with the same ICMP identifier", arguments: Integration.firewalls)
    func pingSameIdentifier(firewall: FirewallChoice) throws {
        try Integration.withEngine(Integration.tag("a", firewall), queue: Integration.queue(1, firewall), firewall: firewall) { lab, _ in
            let sniff = try lab.spawnHelper(.server, ["sniff", "eth0"], name: "sniff")
            let pings = try [LabTopology.Node.host1, .host2].map { node in
                try lab.spawn(node, lab.helper(["ping", server, "--count", "5", "--id", "4660", "--interval", "0.1"]), name: "ping-\(node.rawValue)")
            }
            for ping in pings {
                let status = ping.waitForExit(timeout: 30)
                #expect(status == 0 && ping.output.contains("5 sent, 5 received"), "\(ping.name):\n\(ping.output)")
            }
            usleep(200_000)
            let seen = SniffedPacket.parse(sniff.lines).filter(\.incoming)
            let requests = seen.filter { $0.proto == "icmp" && $0.icmpKind == "echo-request" }
            #expect(requests.count >= 10, "the server saw \(requests.count) echo requests, expected 10:\n\(sniff.output)")
            #expect(seen.allSatisfy { $0.source == wan }, "the server saw a source other than \(wan):\n\(sniff.output)")
            let ids = Set(requests.compactMap(\.icmpID))
            #expect(ids.count == 2, "two hosts pinging with id 4660 must reach the server as two distinct identifiers, saw \(ids.sorted())")
        }
    }

    @Test("a LAN host downloads 8 MB over HTTP; the server sees only the WAN address", arguments: Integration.firewalls)
    func httpDownload(firewall: FirewallChoice) throws {
        try Integration.withEngine(Integration.tag("b", firewall), queue: Integration.queue(2, firewall), firewall: firewall) { lab, _ in
            let file = try lab.serveRandomFile("big.bin", megabytes: 8, from: .server, port: 8080)
            let copy = lab.workDir + "/download.bin"
            let curl = try lab.curl(from: .host1, "http://\(server):8080/big.bin", to: copy, writeOut: "%{size_download}")
            #expect(curl.succeeded, "\(curl.summary)")
            #expect(curl.stdout == "8388608", "downloaded \(curl.stdout) bytes, expected 8388608")
            let sum = try Semantics.sha256(copy)
            #expect(sum == file.sha256, "sha256 differs: \(sum), served \(file.sha256)")
            let clients = file.clients
            #expect(!clients.isEmpty, "the HTTP server logged no request:\n\(file.http.output)")
            #expect(clients.allSatisfy { $0 == wan }, "the HTTP server saw clients \(clients), expected only \(wan)")
        }
    }

    @Test("UDP from two LAN hosts with the same source port gets two WAN ports and both replies")
    func udpSameSourcePort() throws {
        try Integration.withEngine("c", queue: Integration.queue(3)) { lab, masqd in
            let echo = try lab.spawnHelper(.server, ["udpecho", "9999"], name: "udpecho")
            let senders = try [LabTopology.Node.host1, .host2].map { node in
                (node, try lab.spawn(node, lab.helper(["udpsend", server, "9999", "--sport", "40000", "--msg", "from-\(node.rawValue)"]), name: "udp-\(node.rawValue)"))
            }
            for (node, sender) in senders {
                let status = sender.waitForExit(timeout: 20)
                #expect(status == 0, "\(sender.name) got no reply:\n\(sender.output)")
                #expect(sender.output.contains("'echo from-\(node.rawValue) seen-from \(wan):"), "\(sender.name) got someone else's reply:\n\(sender.output)")
            }
            // "udp from 203.0.113.1:40000 'from-h1'"
            var portsByHost: [String: Set<String>] = [:]
            for line in echo.lines where line.hasPrefix("udp from ") {
                let f = line.split(separator: " ")
                let peer = f[2].split(separator: ":")
                #expect(peer[0] == wan, "the server saw \(f[2]), expected \(wan):PORT")
                portsByHost[String(f[3].dropFirst().dropLast()), default: []].insert(String(peer[1]))
            }
            let h1 = portsByHost["from-h1"] ?? [], h2 = portsByHost["from-h2"] ?? []
            #expect(h1.count == 1 && h2.count == 1, "each host must keep one WAN port: \(portsByHost)\n\(echo.output)")
            #expect(h1.isDisjoint(with: h2), "both hosts got the same WAN port: \(portsByHost)")

            let flows = try lab.masqd(masqd, ["flows", "--control", lab.controlPath])
            #expect(flows.succeeded, "\(flows.summary)")
            for host in [LabTopology.host1Address, LabTopology.host2Address] {
                #expect(flows.lines.contains { $0.contains("udp") && $0.contains("\(host):40000") }, "masqd flows lacks \(host):40000:\n\(flows.output)")
            }
        }
    }

    @Test("unsolicited inbound traffic to the WAN address never reaches a LAN host")
    func unsolicitedInbound() throws {
        try Integration.withEngine("d", queue: Integration.queue(4)) { lab, _ in
            let sniff1 = try lab.spawnHelper(.host1, ["sniff", "eth0"], name: "sniff-h1")
            let sniff2 = try lab.spawnHelper(.host2, ["sniff", "eth0"], name: "sniff-h2")
            let listener = try lab.spawnHelper(.host1, ["listen", "8080"], name: "listen-h1")

            let ports = ["22", "80", "1024", "8080", "9999", "40000", "65000"]
            for port in ports {
                let tcp = try lab.run(.server, lab.helper(["tcpconnect", wan, port, "--timeout", "2"]), timeout: 10)
                // Nothing listens on the router itself: its own stack must refuse the connection.
                #expect(tcp.stdout.hasPrefix("refused"), "TCP SYN to \(wan):\(port): \(tcp.output)")
                _ = try lab.run(.server, lab.helper(["udpsend", wan, port, "--sport", "5353", "--tries", "1", "--timeout", "0.2"]), timeout: 10)
            }
            let ping = try lab.run(.server, lab.helper(["ping", wan, "--count", "2", "--id", "4660"]), timeout: 15)
            #expect(ping.succeeded, "the router itself should answer a ping to its WAN address: \(ping.output)")
            usleep(500_000)

            for sniff in [sniff1, sniff2] {
                let leaked = SniffedPacket.parse(sniff.lines).filter { $0.incoming && !$0.source.isLAN }
                #expect(leaked.isEmpty, "unsolicited packets reached \(sniff.name):\n\(sniff.output)")
            }
            #expect(!listener.lines.contains { $0.hasPrefix("tcp") || $0.hasPrefix("udp") }, "the LAN listener was reached:\n\(listener.output)")

            // Control: the sniffer does see traffic that is let in, a reply to a flow h1 opened.
            _ = try lab.spawnHelper(.server, ["udpecho", "9999"], name: "udpecho")
            let reply = try lab.run(.host1, lab.helper(["udpsend", server, "9999", "--sport", "40000"]), timeout: 15)
            #expect(reply.succeeded, "\(reply.summary)")
            usleep(200_000)
            #expect(SniffedPacket.parse(sniff1.lines).contains { $0.incoming && $0.source == server && $0.proto == "udp" },
                    "the h1 sniffer did not see the solicited reply, so it proves nothing:\n\(sniff1.output)")
        }
    }

    @Test("a second masqd run on the same queue fails at once: queue N is already in use")
    func queueAlreadyInUse() throws {
        let queue = Integration.queue(5)
        try Integration.withEngine("e", queue: queue) { lab, masqd in
            let second = try lab.masqd(masqd, ["run"] + lab.engineOptions(queue: queue) + ["--control", lab.workDir + "/second.sock"], timeout: 10)
            #expect(!second.timedOut && second.status != 0, "the second masqd run did not fail: \(second.summary)")
            #expect(second.seconds < 5, "the second masqd run took \(second.seconds) s to fail")
            #expect(second.lines.count == 1, "expected a one-line message: \(second.summary)")
            #expect(second.output.contains("queue \(queue) is already in use"), "\(second.summary)")
            let stats = try lab.masqd(masqd, ["stats", "--control", lab.controlPath])
            #expect(stats.succeeded, "the first engine no longer answers: \(stats.summary)")
        }
    }

    @Test("bad options end run and rules install at once with a one-line message naming the value")
    func badOptions() throws {
        let masqd = try Integration.masqdExecutable()
        let queue = String(Integration.queue(6))
        try Integration.withTopology("f") { lab in
            let lan = LabTopology.lanCIDR, wanIf = LabTopology.wanInterface
            let cases: [(options: [String], culprit: String)] = [
                // An absent interface is not an error (a late PPP WAN: FirewallBackendTests); a
                // name no interface can have is.
                (["--queue", queue, "--wan", "no/such", "--lan", lan], "no/such"),
                (["--queue", queue, "--wan", wanIf, "--lan", "192.0.2.0/33"], "192.0.2.0/33"),
                (["--queue", queue, "--wan", wanIf, "--lan", "banana"], "banana"),
                (["--queue", "70000", "--wan", wanIf, "--lan", lan], "70000"),
                (["--queue", queue, "--wan", wanIf, "--lan", lan, "--forward", "junk"], "junk"),
            ]
            let before = try Integration.iptablesSave(lab)
            for (options, culprit) in cases {
                for command in [["run"], ["rules", "install"]] {
                    let extra = command == ["run"] ? ["--control", lab.workDir + "/f.sock"] : []
                    let result = try lab.masqd(masqd, command + options + extra, timeout: 10)
                    let what = "masqd \((command + options).joined(separator: " "))"
                    #expect(!result.timedOut && result.status != 0, "\(what) did not fail: \(result.summary)")
                    #expect(result.seconds < 5, "\(what) took \(result.seconds) s to fail")
                    #expect(result.lines.count == 1, "\(what): expected a one-line message: \(result.summary)")
                    #expect(result.output.contains(culprit), "\(what): the message does not name \(culprit): \(result.summary)")
                    #expect(try Integration.iptablesSave(lab) == before, "\(what) changed iptables in the router namespace")
                }
            }
        }
    }

    @Test("rules install twice then rules remove restores iptables exactly; foreign rules stay; print changes nothing")
    func rulesLifecycle() throws {
        let masqd = try Integration.masqdExecutable()
        let queue = Integration.queue(7)
        try Integration.withTopology("g") { lab in
            let options = lab.engineOptions(queue: queue)
            // Foreign rules, one of them an NFQUEUE rule much like masqd's own, in every table masqd uses.
            for rule in [
                ["-t", "mangle", "-A", "POSTROUTING", "-o", "wan0", "-s", LabTopology.lanCIDR, "-j", "NFQUEUE", "--queue-num", String(queue + 1)],
                ["-t", "raw", "-A", "PREROUTING", "-i", "wan0", "-p", "tcp", "--dport", "22", "-j", "ACCEPT"],
                ["-t", "filter", "-A", "INPUT", "-i", "wan0", "-p", "tcp", "--dport", "23", "-j", "DROP"],
            ] { try lab.check(.router, ["iptables"] + rule) }
            let before = try Integration.iptablesSave(lab)

            let printed = try lab.masqd(masqd, ["rules", "print"] + options)
            #expect(printed.succeeded, "\(printed.summary)")
            #expect(printed.lines.contains { $0.contains("iptables") && $0.contains("NFQUEUE") && $0.contains(String(queue)) },
                    "rules print shows no iptables NFQUEUE command for queue \(queue):\n\(printed.output)")
            #expect(try Integration.iptablesSave(lab) == before, "rules print changed iptables")

            try lab.installRules(masqd: masqd, queue: queue)
            let installed = try Integration.iptablesSave(lab)
            let ours = installed.split(separator: "\n").filter { $0.contains("NFQUEUE") && $0.contains("--queue-num \(queue)") }
            #expect(ours.contains { $0.contains("-A PREROUTING") && $0.contains("-i wan0") }, "no inbound NFQUEUE rule in raw PREROUTING:\n\(installed)")
            #expect(ours.contains { $0.contains("-A POSTROUTING") && $0.contains("-o wan0") }, "no outbound NFQUEUE rule in mangle POSTROUTING:\n\(installed)")
            #expect(!installed.contains("conntrack") && !installed.contains("*nat"), "the rules must not use conntrack:\n\(installed)")
            try lab.installRules(masqd: masqd, queue: queue)

            for round in 1...2 {
                let removed = try lab.masqd(masqd, ["rules", "remove"] + options)
                #expect(removed.succeeded, "rules remove (\(round)): \(removed.summary)")
                let after = try Integration.iptablesSave(lab)
                #expect(after == before, "after rules remove (\(round)) iptables differs:\n--- before\n\(before)\n--- after\n\(after)")
            }
        }
    }

    @Test("masqd lab runs the demo end to end and cleans up")
    func labDemo() throws {
        try Integration.requireEnvironment()
        let masqd = try Integration.masqdExecutable()
        let lab = try Shell.run([masqd, "lab"], timeout: 150)
        #expect(lab.succeeded, "\(lab.summary)")
        #expect(lab.output.contains("http client \(wan)"), "the lab's HTTP server did not log \(wan):\n\(lab.output)")
        #expect(!lab.output.contains("FAILED"), "\(lab.output)")
        let namespaces = try Shell.check(["ip", "netns", "list"]).stdout
        #expect(!namespaces.contains("mqlab-"), "masqd lab left namespaces behind:\n\(namespaces)")
    }
}
