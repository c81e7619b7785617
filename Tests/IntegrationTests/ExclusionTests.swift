import Foundation
@testable import Masqd
@testable import MasqdLab
import Testing

/// `--no-nat-to CIDR` (issue #15 item 2): the rules of both backends exactly, the option's
/// errors, the file key and reloads, and real traffic: a server in the excluded prefix (`far`)
/// sees the LAN address, one outside it (`server`) the WAN address. Queue indices 131-132
/// (+100 on nft).
@Suite(.integrationLimit)
struct ExclusionTests: LabAddresses {
    @Test("iptables: each excluded prefix is an ACCEPT above the queueing rules, out to it and (not to the router) back from it; run as printed, the spoof drop stays on top")
    func iptablesRules() throws {
        let s = try OptionCheck.settings(["--queue", "7", "--wan", "eth1", "--lan", "192.0.2.0/24", "--no-nat-to", "198.51.100.0/24",
                                   "--no-nat-to", "10.9.0.0/16", "--firewall", "iptables"])
        let c = "-m comment --comment 'masqd queue 7'"
        #expect(SteeringRules.printed(s) == [
            "sysctl -w net.ipv4.conf.all.accept_local=1",
            "iptables -w -t raw -I PREROUTING 1 -i eth1 \(c) -j NFQUEUE --queue-num 7",
            "iptables -w -t raw -I PREROUTING 1 -i eth1 -s 198.51.100.0/24 -m addrtype ! --dst-type LOCAL \(c) -j ACCEPT",
            "iptables -w -t raw -I PREROUTING 1 -i eth1 -s 10.9.0.0/16 -m addrtype ! --dst-type LOCAL \(c) -j ACCEPT",
            "iptables -w -t raw -I PREROUTING 1 -i eth1 -m addrtype --src-type LOCAL \(c) -j DROP",
            "iptables -w -t mangle -I POSTROUTING 1 -o eth1 -s 192.0.2.0/24 \(c) -j NFQUEUE --queue-num 7",
            "iptables -w -t raw -I PREROUTING 1 ! -i eth1 -s 192.0.2.0/24 -m addrtype --dst-type LOCAL \(c) -j NFQUEUE --queue-num 7",
            "iptables -w -t mangle -I FORWARD 1 -o eth1 -m addrtype --src-type LOCAL \(c) -j NFQUEUE --queue-num 7",
            "iptables -w -t mangle -I POSTROUTING 1 -o eth1 -p icmp -m addrtype --src-type LOCAL \(c) -j NFQUEUE --queue-num 7",
            "iptables -w -t mangle -I POSTROUTING 1 -o eth1 -d 198.51.100.0/24 \(c) -j ACCEPT",
            "iptables -w -t mangle -I POSTROUTING 1 -o eth1 -d 10.9.0.0/16 \(c) -j ACCEPT",
            // The reverse-path drop (--reverse-path-check, on by default) goes in last: on top of all.
            "iptables -w -t raw -I PREROUTING 1 ! -i eth1 -m addrtype ! --src-type LOCAL -m rpfilter --accept-local --invert \(c) -j DROP",
        ])
    }

    @Test("nft: drops, then the exemptions (accept), then the queueing rules of each chain")
    func nftScript() throws {
        let s = try OptionCheck.settings(["--wan", "eth1", "--no-hairpin", "--no-nat-to", "198.51.100.0/24", "--firewall", "nft"])
        let comment = #"comment "masqd queue 0""#
        let lines = SteeringRules.printed(s)
        let prerouting = try #require(lines.firstIndex(of: "\tchain prerouting {"))
        #expect(Array(lines[(prerouting + 2)...(prerouting + 6)]) == [
            "\t\tiifname \"eth1\" fib saddr type local counter drop \(comment)",
            "\t\tiifname != \"eth1\" fib saddr type != local fib saddr . iif oif missing counter drop \(comment)",
            "\t\tiifname \"eth1\" ip saddr 198.51.100.0/24 fib daddr type != local counter accept \(comment)",
            "\t\tiifname \"eth1\" counter queue num 0 \(comment)",
            "\t}",
        ], "\(lines)")
        let postrouting = try #require(lines.firstIndex(of: "\tchain postrouting {"))
        #expect(Array(lines[(postrouting + 2)...(postrouting + 5)]) == [
            "\t\toifname \"eth1\" ip daddr 198.51.100.0/24 counter accept \(comment)",
            "\t\toifname \"eth1\" fib saddr type != local counter queue num 0 \(comment)",
            "\t\toifname \"eth1\" ip protocol icmp fib saddr type local counter queue num 0 \(comment)",
            "\t}",
        ], "\(lines)")
    }

    @Test("bad --no-nat-to values are one-line errors naming the option; the file key; a reload refuses a change")
    func option() throws {
        #expect(OptionCheck.message(["--wan", "eth0", "--no-nat-to", "198.51.100.1/24"])
                == "--no-nat-to 198.51.100.1/24: not an IPv4 prefix (A.B.C.D/N with host bits zero)")
        #expect(OptionCheck.message(["--wan", "eth0", "--no-nat-to", "perimeter"]) == "--no-nat-to perimeter: not an IPv4 prefix (A.B.C.D/N with host bits zero)")
        #expect(OptionCheck.message(["--wan", "eth0", "--no-nat-to", "0.0.0.0/0"]) == "--no-nat-to 0.0.0.0/0: excludes every destination")
        #expect(OptionCheck.message(["--wan", "eth0", "--no-nat-to", "10.0.0.0/8", "--no-nat-to", "10.1.0.0/16"])
                == "--no-nat-to 10.1.0.0/16: overlaps --no-nat-to 10.0.0.0/8")
        #expect(OptionCheck.message(["--wan", "eth0", "--lan", "192.0.2.0/24", "--no-nat-to", "192.0.2.128/25"])
                == "--no-nat-to 192.0.2.128/25: overlaps --lan 192.0.2.0/24")
        #expect(try OptionCheck.settings(["--wan", "eth0", "--no-nat-to", "198.51.100.7"]).noNATDestinations.map(\.description) == ["198.51.100.7/32"])

        let path = try OptionCheck.write("wan: eth0\nno-nat-to:\n  - 198.51.100.0/24\n  - 10.9.0.0/16\n")
        defer { OptionCheck.remove(path) }
        let fromFile = try OptionCheck.settings(["--config", path])
        #expect(fromFile.noNATDestinations.map(\.description) == ["198.51.100.0/24", "10.9.0.0/16"])
        #expect(try OptionCheck.settings(["--config", path, "--no-nat-to", "172.16.0.0/12"]).noNATDestinations.map(\.description) == ["172.16.0.0/12"],
                "the command line's list replaces the file's")
        var other = fromFile
        other.noNATDestinations = []
        #expect(Engine.unchangeable(fromFile, other).map(\.key) == ["no-nat-to"], "the rules would change: refused like wan")
        let bad = try OptionCheck.write("wan: eth0\nno-nat-to: [198.51.100.0/24, 198.51.100.0/25]\n")
        defer { OptionCheck.remove(bad) }
        #expect(OptionCheck.message(["--config", bad]) == "\(bad):2: no-nat-to 198.51.100.0/25: overlaps --no-nat-to 198.51.100.0/24")
    }

    @Test("a server in the excluded prefix sees the LAN address (UDP and TCP, replies back); one outside it sees the WAN address; the engine sees none of the excluded traffic",
          arguments: Integration.firewalls)
    func traffic(firewall: FirewallChoice) throws {
        let options = ["--no-nat-to", LabTopology.farCIDR]
        try Integration.withEngine(Integration.tag("ex", firewall), queue: Integration.queue(131, firewall), options: options,
                                 farHost: true, firewall: firewall) { lab, masqd in
            // The far host's replies to the LAN address go back through the server to the router.
            try lab.check(.server, ["ip", "route", "add", LabTopology.lanCIDR, "via", wan])
            let printed = try lab.masqd(masqd, ["rules", "print"] + lab.engineOptions(queue: Integration.queue(131, firewall)) + options)
            #expect(printed.succeeded && printed.stdout.contains("198.51.100.0/24"), "rules print does not show the exclusion:\n\(printed.summary)")
            if firewall == .iptables {
                let saved = try Integration.iptablesSave(lab)
                #expect(saved.contains("-A POSTROUTING -d 198.51.100.0/24 -o wan0 -m comment --comment \"masqd queue \(Integration.queue(131, firewall))\" -j ACCEPT"),
                        "the exclusion is not installed:\n\(saved)")
            }
            _ = try lab.spawnHelper(.far, ["udpecho", "7777"], name: "udpecho-far")
            _ = try lab.spawnHelper(.server, ["udpecho", "7777"], name: "udpecho-server")
            let listener = try lab.spawnHelper(.far, ["listen", "7001"], name: "listen-far")
            let before = try Semantics.stats(lab, masqd)

            let excluded = try lab.run(.host1, lab.helper(["udpsend", far, "7777", "--msg", "perimeter"]), timeout: 15)
            #expect(excluded.stdout.contains("reply from \(far):7777 ") && excluded.stdout.contains("seen-from \(h1):"),
                    "the excluded server should see the LAN address:\n\(excluded.summary)")
            let tcp = try lab.run(.host1, lab.helper(["tcpconnect", far, "7001"]), timeout: 15)
            #expect(tcp.stdout.contains("connected \(far):7001"), "\(tcp.summary)")
            #expect(listener.waitForOutput(containing: "tcp connection from \(h1):", timeout: 5), "\(listener.output)")

            let translated = try lab.run(.host1, lab.helper(["udpsend", server, "7777", "--msg", "internet"]), timeout: 15)
            #expect(translated.stdout.contains("seen-from \(wan):"), "a server outside the exclusion should see the WAN address:\n\(translated.summary)")

            // Only the translated exchange reached the engine: one flow; nothing to or from the far host.
            let after = try Semantics.stats(lab, masqd)
            #expect(after["flows_created", default: 0] - before["flows_created", default: 0] == 1, "\(after)")
            #expect(after["translated_inbound", default: 0] - before["translated_inbound", default: 0] >= 1, "\(after)")
            #expect(after["drop_inbound_to_internal_address", default: 0] == 0, "\(after)")
            let flows = try lab.masqd(masqd, ["flows", "--control", lab.controlPath])
            #expect(flows.succeeded && !flows.stdout.contains(far) && flows.stdout.contains(server), "\(flows.summary)")
        }
    }
}
