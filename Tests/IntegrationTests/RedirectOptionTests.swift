@testable import Masqd
import NATCore
import Testing

/// `--redirect`, `--max-redirect-flows` and `--reverse-path-check` as options and as rules
/// (text only, no root).
@Suite
struct RedirectOptionTests {
    @Test("bad values are one-line errors naming the option and value")
    func badValues() throws {
        #expect(OptionCheck.message(["--wan", "eth0", "--redirect", "udp:53=5353"]) == "--redirect udp:53=5353: expected tcp:PORT=LOCALPORT with ports 1-65535")
        #expect(OptionCheck.message(["--wan", "eth0", "--redirect", "tcp:80=0"]) == "--redirect tcp:80=0: expected tcp:PORT=LOCALPORT with ports 1-65535")
        #expect(OptionCheck.message(["--wan", "eth0", "--redirect", "tcp:80"]) == "--redirect tcp:80: expected tcp:PORT=LOCALPORT with ports 1-65535")
        #expect(OptionCheck.message(["--wan", "eth0", "--redirect", "tcp:80=3128", "--redirect", "tcp:80=8080"])
                == "--redirect tcp:80=8080: port 80 is already redirected by --redirect tcp:80=3128")
        #expect(OptionCheck.message(["--wan", "eth0", "--max-redirect-flows", "0"]) == "--max-redirect-flows 0: expected a number from 1 to 1048576")
        #expect(OptionCheck.message(["--wan", "eth0", "--reverse-path-check", "maybe"]) == "--reverse-path-check maybe: expected yes or no")
        #expect(OptionCheck.message(["--wan", "eth0", "--max-redirect-flows-per-host", "lots"]) == "--max-redirect-flows-per-host lots: expected a number from 1 to 1048576")
        #expect(try OptionCheck.settings(["--wan", "eth0", "--max-redirect-flows-per-host", "8"]).nat.maxRedirectSessionsPerHost == 8)
        #expect(try OptionCheck.settings(["--wan", "eth0"]).nat.maxRedirectSessionsPerHost == 256)
        let s = try OptionCheck.settings(["--wan", "eth0", "--redirect", "tcp:80=3128", "--redirect", "tcp:8080=3128", "--max-redirect-flows", "99"])
        #expect(s.nat.redirects == [TransparentRedirect(port: 80, localPort: 3128), TransparentRedirect(port: 8080, localPort: 3128)])
        #expect(s.nat.maxRedirectSessions == 99 && s.reversePathCheck)
        #expect(try !OptionCheck.settings(["--wan", "eth0", "--reverse-path-check", "no"]).reversePathCheck)
    }

    @Test("the file keys are the options; a reload refuses a change of them")
    func fileKeys() throws {
        let path = try OptionCheck.write("wan: eth0\nredirect:\n  - tcp:80=3128\nmax-redirect-flows: 64\nreverse-path-check: no\n")
        defer { OptionCheck.remove(path) }
        let fromFile = try OptionCheck.settings(["--config", path])
        #expect(fromFile.nat.redirects == [TransparentRedirect(port: 80, localPort: 3128)])
        #expect(fromFile.nat.maxRedirectSessions == 64 && !fromFile.reversePathCheck)
        var other = fromFile
        other.nat.redirects = []
        other.reversePathCheck = true
        #expect(Engine.unchangeable(fromFile, other).map(\.key) == ["redirect", "reverse-path-check"])
    }

    @Test("iptables: the client's packets in raw PREROUTING, the proxy's in mangle OUTPUT, the reverse-path drop; without --lan by address type")
    func iptablesRules() throws {
        let c = "-m comment --comment 'masqd queue 7'"
        let lines = SteeringRules.printed(try OptionCheck.settings(["--queue", "7", "--wan", "eth1", "--lan", "192.0.2.0/24", "--firewall", "iptables",
                                                             "--redirect", "tcp:80=3128"]))
        #expect(lines.suffix(3) == [
            "iptables -w -t raw -I PREROUTING 1 ! -i eth1 -s 192.0.2.0/24 -p tcp --dport 80 -m addrtype ! --dst-type LOCAL \(c) -j NFQUEUE --queue-num 7",
            "iptables -w -t mangle -I OUTPUT 1 -d 192.0.2.0/24 -p tcp --sport 3128 \(c) -j NFQUEUE --queue-num 7",
            "iptables -w -t raw -I PREROUTING 1 ! -i eth1 -m addrtype ! --src-type LOCAL -m rpfilter --accept-local --invert \(c) -j DROP",
        ], "\(lines)")
        let open = SteeringRules.printed(try OptionCheck.settings(["--queue", "7", "--wan", "eth1", "--firewall", "iptables", "--redirect", "tcp:80=3128",
                                                            "--reverse-path-check", "no"]))
        #expect(open.suffix(2) == [
            "iptables -w -t raw -I PREROUTING 1 ! -i eth1 -p tcp --dport 80 -m addrtype ! --dst-type LOCAL \(c) -j NFQUEUE --queue-num 7",
            "iptables -w -t mangle -I OUTPUT 1 -p tcp --sport 3128 -m addrtype ! --dst-type LOCAL \(c) -j NFQUEUE --queue-num 7",
        ], "\(open)")
        #expect(!open.contains { $0.contains("rpfilter") })
    }

    @Test("nft: the same points; OUTPUT is a route chain so a changed address is routed again")
    func nftRules() throws {
        let comment = #"comment "masqd queue 7""#
        let lines = SteeringRules.printed(try OptionCheck.settings(["--queue", "7", "--wan", "eth1", "--lan", "192.0.2.0/24", "--firewall", "nft",
                                                             "--redirect", "tcp:80=3128"]))
        #expect(lines.contains("\t\tiifname != \"eth1\" ip saddr 192.0.2.0/24 tcp dport 80 fib daddr type != local counter queue num 7 \(comment)"), "\(lines)")
        #expect(lines.contains("\t\tiifname != \"eth1\" fib saddr type != local fib saddr . iif oif missing counter drop \(comment)"), "\(lines)")
        let output = lines.firstIndex(of: "\tchain output {")
        #expect(output != nil, "\(lines)")
        if let output {
            #expect(Array(lines[(output + 1)...(output + 3)]) == [
                "\t\ttype route hook output priority -150; policy accept;",
                "\t\tip daddr 192.0.2.0/24 tcp sport 3128 counter queue num 7 \(comment)",
                "\t}",
            ])
        }
    }
}
