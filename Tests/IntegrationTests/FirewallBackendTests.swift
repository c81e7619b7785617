import Foundation
@testable import Masqd
@testable import MasqdLab
@testable import MasqdShell
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// `--firewall nft|iptables` (Firewall/): the plan both backends write, the nft script and the
/// iptables rules exactly, the option in files and reloads, the nft backend on this kernel,
/// and two rule-set fixes on both backends — WAN packets claiming a router address are dropped
/// (issue #20 item 8) and rules installed before a late WAN interface exists hold when it
/// appears (item 7). Queue indices 74-76 (+100 on nft).
@Suite(.integrationLimit)
struct FirewallBackendTests: LabAddresses {
    // MARK: the rules, as text (no root)

    @Test("the nft script: one table per first queue, chains at raw/mangle priorities, the spoof drop first, names matched by name")
    func nftScript() throws {
        let s = try OptionCheck.settings(["--queue", "7", "--wan", "eth1", "--lan", "192.0.2.0/24", "--lan", "10.1.0.0/16", "--firewall", "nft"])
        let comment = #"comment "masqd queue 7""#
        #expect(SteeringRules.printed(s) == [
            "sysctl -w net.ipv4.conf.all.accept_local=1",
            "nft -f - <<'EOF'",
            "table ip masqd_7",
            "delete table ip masqd_7",
            "table ip masqd_7 {",
            "\tchain prerouting {",
            "\t\ttype filter hook prerouting priority -300; policy accept;",
            "\t\tiifname \"eth1\" fib saddr type local counter drop \(comment)",
            "\t\tiifname != \"eth1\" fib saddr type != local fib saddr . iif oif missing counter drop \(comment)",
            "\t\tiifname \"eth1\" counter queue num 7 \(comment)",
            "\t\tiifname != \"eth1\" ip saddr 192.0.2.0/24 fib daddr type local counter queue num 7 \(comment)",
            "\t\tiifname != \"eth1\" ip saddr 10.1.0.0/16 fib daddr type local counter queue num 7 \(comment)",
            "\t}",
            "\tchain forward {",
            "\t\ttype filter hook forward priority -150; policy accept;",
            "\t\toifname \"eth1\" fib saddr type local counter queue num 7 \(comment)",
            "\t}",
            "\tchain postrouting {",
            "\t\ttype filter hook postrouting priority -150; policy accept;",
            "\t\toifname \"eth1\" ip saddr 192.0.2.0/24 counter queue num 7 \(comment)",
            "\t\toifname \"eth1\" ip saddr 10.1.0.0/16 counter queue num 7 \(comment)",
            "\t\toifname \"eth1\" ip protocol icmp fib saddr type local counter queue num 7 \(comment)",
            "\t}",
            "}",
            "EOF",
        ])
        // Queue 0 owns the plain name; a balanced range without fanout, bypass when failing open.
        let balanced = try OptionCheck.settings(["--queues", "0-2", "--wan", "ppp0", "--no-hairpin", "--fail-open", "--firewall", "nft"])
        let lines = SteeringRules.printed(balanced)
        #expect(lines.first == "nft -f - <<'EOF'" && lines.contains("table ip masqd {"), "\(lines)")
        #expect(lines.contains("\t\toifname \"ppp0\" fib saddr type != local counter queue num 0-2 bypass comment \"masqd queues 0-2\""), "\(lines)")
        #expect(!lines.contains { $0.contains("fanout") || $0.contains("chain forward") || $0.contains("daddr") }, "\(lines)")
    }

    @Test("the iptables rules gain only the spoof drop (raw PREROUTING, same comment); everything else is as before")
    func iptablesRules() throws {
        let s = try OptionCheck.settings(["--queue", "7", "--wan", "eth1", "--lan", "192.0.2.0/24", "--firewall", "iptables"])
        let c = "-m comment --comment 'masqd queue 7'"
        #expect(SteeringRules.printed(s) == [
            "sysctl -w net.ipv4.conf.all.accept_local=1",
            "iptables -w -t raw -I PREROUTING 1 -i eth1 \(c) -j NFQUEUE --queue-num 7",
            "iptables -w -t raw -I PREROUTING 1 -i eth1 -m addrtype --src-type LOCAL \(c) -j DROP",
            "iptables -w -t mangle -I POSTROUTING 1 -o eth1 -s 192.0.2.0/24 \(c) -j NFQUEUE --queue-num 7",
            "iptables -w -t raw -I PREROUTING 1 ! -i eth1 -s 192.0.2.0/24 -m addrtype --dst-type LOCAL \(c) -j NFQUEUE --queue-num 7",
            "iptables -w -t mangle -I FORWARD 1 -o eth1 -m addrtype --src-type LOCAL \(c) -j NFQUEUE --queue-num 7",
            "iptables -w -t mangle -I POSTROUTING 1 -o eth1 -p icmp -m addrtype --src-type LOCAL \(c) -j NFQUEUE --queue-num 7",
            "iptables -w -t raw -I PREROUTING 1 ! -i eth1 -m addrtype ! --src-type LOCAL -m rpfilter --accept-local --invert \(c) -j DROP",
        ])
    }

    @Test("--firewall: a bad value and an interface name nft cannot quote are one-line errors; the file key is the flag; a reload refuses a change of it")
    func option() throws {
        #expect(OptionCheck.message(["--wan", "eth0", "--firewall", "pf"]) == "--firewall pf: expected nft or iptables")
        #expect(OptionCheck.message(["--wan", "eth\"0"]) == "--wan eth\"0: not an interface name")
        #expect(try OptionCheck.settings(["--wan", "eth0"]).firewall == nil)
        let path = try OptionCheck.write("wan: eth0\nfirewall: nft\n")
        defer { OptionCheck.remove(path) }
        let fromFile = try OptionCheck.settings(["--config", path])
        #expect(fromFile.firewall == .nft)
        #expect(try OptionCheck.settings(["--config", path, "--firewall", "iptables"]).firewall == .iptables, "the command line wins")
        var other = fromFile
        other.firewall = nil
        #expect(Engine.unchangeable(fromFile, other).map(\.key) == ["firewall"])
        #expect(Engine.unchangeable(fromFile, fromFile).isEmpty)
        let bad = try OptionCheck.write("wan: eth0\nfirewall: ipfw\n")
        defer { OptionCheck.remove(bad) }
        #expect(OptionCheck.message(["--config", bad]) == "\(bad):2: firewall ipfw: expected nft or iptables")
    }

    // MARK: the nft backend on this kernel (root)

    @Test("nft: install twice gives one table, foreign rules stay, remove restores the ruleset; without nft's queue in the kernel it fails whole and is not the default")
    func nftInstallRemove() throws {
        let masqd = try Integration.masqdExecutable()
        try Integration.withTopology("fwa", firewall: .nft) { lab in
            let options = lab.engineOptions(queue: Integration.queue(74, .nft))
            let table = "masqd_\(Integration.queue(74, .nft))"
            try lab.check(.router, ["nft", "add", "table", "ip", "foreign"])
            try lab.check(.router, ["nft", "add", "chain", "ip", "foreign", "c", "{ type filter hook prerouting priority -300; }"])
            try lab.check(.router, ["nft", "add", "rule", "ip", "foreign", "c", "iifname", "wan0", "counter"])
            let before = try lab.check(.router, ["nft", "list", "ruleset"]).stdout
            let install = try lab.masqd(masqd, ["rules", "install"] + options)
            if Integration.nftQueueAvailable {
                try #require(install.succeeded, "\(install.summary)")
                try #require(try lab.masqd(masqd, ["rules", "install"] + options).succeeded, "a second install")
                let listed = try #require(try Integration.nftTable(lab, table), "no table \(table) after install")
                #expect(listed.components(separatedBy: "queue num").count - 1 == 6, "six queueing rules, once each:\n\(listed)")
                #expect(listed.contains("iifname \"wan0\" fib saddr type local counter drop"), "\(listed)")
            } else {
                // The script is one transaction: the refused queue statement leaves nothing behind.
                #expect(!install.succeeded && install.stderr.split(separator: "\n").count == 1
                        && install.stderr.contains("nft -f (rules install) failed") && install.stderr.contains("queue num"),
                        "\(install.summary)")
                #expect(try Integration.nftTable(lab, table) == nil, "a refused install left table \(table)")
                // Everything but the queue statement is accepted by this kernel: the printed script
                // with `accept` in its place passes `nft -c` (which changes nothing).
                let script = try lab.masqd(masqd, ["rules", "print"] + options).stdout.split(separator: "\n")
                    .filter { !$0.hasPrefix("sysctl") && !$0.hasPrefix("nft -f") && $0 != "EOF" }
                    .map { $0.replacingOccurrences(of: #"queue num [0-9-]+"#, with: "accept", options: .regularExpression) }
                let path = lab.workDir + "/no-queue.nft"
                try (script.joined(separator: "\n") + "\n").write(toFile: path, atomically: true, encoding: .utf8)
                let check = try lab.run(.router, ["nft", "-c", "-f", path])
                #expect(check.succeeded && script.contains { $0.contains("fib saddr type local counter drop") }, "\(check.summary)")
                let printed = try lab.masqd(masqd, ["rules", "print", "--wan", LabTopology.wanInterface])
                #expect(printed.stdout.contains("iptables -w -t raw"), "the default must be iptables on a kernel without nft's queue:\n\(printed.output)")
            }
            for round in 1...2 {
                let remove = try lab.masqd(masqd, ["rules", "remove"] + options)
                try #require(remove.succeeded, "rules remove (\(round)): \(remove.summary)")
                #expect(try lab.check(.router, ["nft", "list", "ruleset"]).stdout == before, "after rules remove (\(round)) the ruleset differs")
            }
        }
    }

    // MARK: #20 item 8: WAN packets claiming a router address

    @Test("from the WAN, the router's LAN address and a second local address as source reach neither the router nor h1; the real remote and hairpinning do",
          arguments: Integration.firewalls)
    func spoofedLocalSourceFromWAN(firewall: FirewallChoice) throws {
        try Integration.withEngine(scapy: true, Integration.tag("fwb", firewall), queue: Integration.queue(75, firewall),
                              options: ["--forward", "udp:9000=\(h1):9000"], firewall: firewall) { lab, masqd, _ in
            // A management address besides the LAN and WAN ones.
            try lab.check(.router, ["ip", "link", "add", "mgmt0", "type", "veth", "peer", "name", "mgmt1"])
            try lab.check(.router, ["ip", "addr", "add", "198.18.0.1/24", "dev", "mgmt0"])
            try lab.check(.router, ["ip", "link", "set", "mgmt0", "up"])
            let router = try lab.spawnHelper(.router, ["listen", "5353"], name: "listen-router")
            let host = try lab.spawnHelper(.host1, ["listen", "9000"], name: "listen-h1")
            let routerMAC = try Robust.mac(lab, .router, LabTopology.wanInterface)
            try Robust.scapy(lab, .server, """
            def wire(src, dst, dport, sport):
                sendp(Ether(dst="\(routerMAC)")/IP(src=src, dst=dst)/UDP(sport=sport, dport=dport)/b"spoof", iface="eth0")
            for dst in ("\(wan)", "198.18.0.1", "\(LabTopology.routerLANAddress)"):
                wire("\(LabTopology.routerLANAddress)", dst, 5353, 7001)   # the router's LAN address
                wire("198.18.0.1", dst, 5353, 7002)                        # its management address
            wire("\(LabTopology.routerLANAddress)", "\(wan)", 9000, 7003) # to the forward
            wire("198.18.0.1", "\(h1)", 9000, 7004)                       # straight to h1
            send(IP(dst="\(wan)")/UDP(sport=7100, dport=5353)/b"real")   # the positive control
            """)
            #expect(Semantics.waitUntil(timeout: 5) { router.output.contains("udp from \(server):7100") },
                    "the real remote's datagram did not reach the router:\n\(router.output)")
            usleep(300_000)
            #expect(!router.output.contains(":700"), "a spoofed datagram reached the router:\n\(router.output)")
            #expect(!host.output.contains("udp from"), "a spoofed datagram reached h1:\n\(host.output)")
            // Hairpinning needs accept_local, which is why the drop is in the rules: it still works.
            try lab.run(.host2, lab.helper(["udpsend", wan, "9000", "--msg", "hairpin", "--tries", "1"]), timeout: 15)
            #expect(Semantics.waitUntil(timeout: 5) { host.output.contains("udp from \(wan):") },
                    "the hairpinned datagram did not reach h1:\n\(host.output)")
            let dropped = try Self.spoofDrops(lab, firewall, queue: Integration.queue(75, firewall))
            #expect(dropped == 8, "the spoof drop rule counted \(dropped) packets, expected 8")
            _ = masqd
        }
    }

    /// Packets the WAN spoof drop rule has dropped, from the kernel's rule counter.
    static func spoofDrops(_ lab: LabTopology, _ firewall: FirewallChoice, queue: Int) throws -> Int {
        switch firewall {
        case .iptables:
            let listed = try lab.check(.router, ["iptables", "-w", "-t", "raw", "-L", "PREROUTING", "-v", "-x", "-n"]).stdout
            let line = listed.split(separator: "\n").first { $0.contains("DROP") && $0.contains("src-type LOCAL") }
            return line.flatMap { Int($0.split(separator: " ")[0]) } ?? -1
        case .nft:
            let listed = try lab.check(.router, ["nft", "list", "chain", "ip", "masqd_\(queue)", "prerouting"]).stdout
            let line = listed.split(separator: "\n").first { $0.contains("fib saddr type local counter") && $0.contains("drop") }
            let words = line?.split(separator: " ") ?? []
            return words.firstIndex(of: "packets").flatMap { Int(words[$0 + 1]) } ?? -1
        }
    }
}

/// #20 item 7: a WAN interface (PPP, a modem) that appears after the rules and the engine.
extension FirewallBackendTests {
    @Test("rules install and masqd run with the WAN interface absent; it appears: no LAN source ever leaves it, and masquerading starts",
          arguments: Integration.firewalls)
    func lateWANInterface(firewall: FirewallChoice) throws {
        let masqd = try Integration.masqdExecutable()
        let queue = Integration.queue(76, firewall)
        try Integration.withTopology(Integration.tag("fwc", firewall), firewall: firewall) { lab in
            let r = lab.namespace(.router), s = lab.namespace(.server)
            try lab.check(.router, ["ip", "link", "del", LabTopology.wanInterface]) // takes the server's end too
            let install = try lab.masqd(masqd, ["rules", "install"] + lab.engineOptions(queue: queue))
            try #require(install.succeeded, "rules install must not refuse a WAN interface that is not there yet: \(install.summary)")
            #expect(install.stdout == "masqd: --wan wan0: no such interface yet; the rules match it by name and apply once it appears\n",
                    "\(install.summary)")
            let engine = try lab.startEngine(masqd: masqd, queue: queue)
            defer { _ = engine.stop(grace: 5) }
            // h1 keeps pinging while the link comes up; the server's end is up (and sniffing)
            // before the router's, so it sees whatever leaves from the first moment.
            let sender = try lab.spawn(.host1, lab.helper(["ping", server, "--count", "60", "--interval", "0.05"]), name: "ping-h1")
            try Shell.check(["ip", "-n", r, "link", "add", LabTopology.wanInterface, "mtu", "1500", "type", "veth", "peer", "name", "eth0", "mtu", "1500", "netns", s])
            try lab.check(.server, ["ip", "addr", "add", "\(server)/24", "dev", "eth0"])
            try lab.check(.server, ["ip", "link", "set", "eth0", "up"])
            let sniff = try lab.spawnHelper(.server, ["sniff", "eth0"], name: "sniff-s")
            try lab.check(.router, ["ip", "link", "set", LabTopology.wanInterface, "up"])
            usleep(300_000)
            try lab.check(.router, ["ip", "addr", "add", "\(wan)/24", "dev", LabTopology.wanInterface])
            _ = sender.waitForExit(timeout: 20)
            let echo = try lab.spawnHelper(.server, ["udpecho", "7777"], name: "udpecho")
            #expect(Semantics.waitUntil(timeout: 5) {
                (try? lab.run(.host1, lab.helper(["udpsend", server, "7777", "--msg", "late", "--tries", "1"]), timeout: 5))?
                    .stdout.contains("seen-from \(wan):") == true
            }, "no masqueraded exchange once the WAN address appeared:\n\(echo.output)\n\(engine.output)")
            let seen = SniffedPacket.parse(sniff.lines).filter(\.incoming)
            #expect(!seen.contains { $0.source.hasPrefix("192.0.2.") }, "a LAN source left the WAN:\n\(sniff.output)")
            #expect(seen.contains { $0.source == wan }, "nothing masqueraded reached the server:\n\(sniff.output)")
        }
    }
}
