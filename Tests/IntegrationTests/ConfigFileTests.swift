import Foundation
import Masqd
import MasqdLab
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// `--config FILE` (issue #8): a YAML file of ENGINE OPTIONS, the command line over it, one-line
/// errors naming file, line and key. All but the last test only parse and check options (no
/// root, no namespaces); the last one drives the real binary in namespaces (queue index 40).
@Suite(.integrationLimit)
struct ConfigFileTests {
    // MARK: helpers

    /// The one-line message settings() fails with for `yaml` (plus `extra` on the command line),
    /// with the temporary path replaced by "F".
    static func failure(_ yaml: String, _ extra: [String] = []) throws -> String {
        let path = try OptionCheck.write(yaml)
        defer { OptionCheck.remove(path) }
        do {
            _ = try OptionCheck.settings(["--config", path] + extra)
        } catch let error as MasqdError {
            return error.description.replacingOccurrences(of: path, with: "F")
        }
        throw IntegrationFailure("settings() accepted:\n\(yaml)")
    }

    /// The fields of EngineSettings that a deployment is made of, as comparable text.
    static func summary(_ s: EngineSettings) -> [String] {
        [
            "queue \(s.queue)", "wan \(s.wanInterface)", "lan \(s.internalPrefixes)", "forwards \(s.forwards)",
            "ports \(s.nat.ports.portRange) low \(String(describing: s.nat.ports.lowPortRange))",
            "helpers \(s.helpers)", "helper ports \(s.nat.helpers.map(\.ports))", "filtering \(s.nat.filtering)",
            "max \(s.nat.maxSessions) \(s.nat.maxMappings) per host \(s.nat.maxSessionsPerHost)",
            "timeouts \(s.nat.timeouts)", "hairpin \(s.hairpin)", "control \(s.controlPath)",
        ] + SteeringRules.rules(for: s).map(\.installCommand)
    }

    // MARK: a file is the same as its flags

    @Test("a file equivalent to a set of flags gives the same settings and the same rules")
    func fileEqualsFlags() throws {
        let flags = [
            "--queue", "7", "--wan", "eth1",
            "--lan", "192.0.2.0/24", "--lan", "10.1.0.0/16",
            "--forward", "tcp:8080=192.0.2.10:80", "--forward", "udp:5000-5001=10.1.0.5",
            "--port-range", "20000-30000", "--helpers", "ftp", "--helper-ports", "ftp=21,2121",
            "--filtering", "endpoint-independent", "--max-flows", "1000", "--max-flows-per-host", "100",
            "--timeout", "udp=60", "--timeout", "icmp=10", "--no-hairpin", "--control", "/tmp/masqd-cfg-test.sock",
        ]
        let yaml = """
            # every ENGINE OPTION, in the forms a person writes
            queue: 7
            wan: eth1
            lan:
              - 192.0.2.0/24
              - 10.1.0.0/16
            forward: [tcp:8080=192.0.2.10:80, "udp:5000-5001=10.1.0.5"]
            port-range: 20000-30000
            helpers: [ftp]
            helper-ports: "ftp=21,2121"     # a single value for a repeatable option
            filtering: endpoint-independent
            max-flows: 1000
            max-flows-per-host: 100
            timeout:
              - udp=60
              - icmp=10
            no-hairpin: true
            control: /tmp/masqd-cfg-test.sock

            """
        let path = try OptionCheck.write(yaml)
        defer { OptionCheck.remove(path) }
        let fromFlags = try OptionCheck.settings(flags)
        let fromFile = try OptionCheck.settings(["--config", path])
        #expect(Self.summary(fromFile) == Self.summary(fromFlags))
        #expect(!SteeringRules.rules(for: fromFile).isEmpty)
        // The file as a command line is the same command line, up to order.
        let file = try ConfigFile.load(path: path)
        #expect(Self.summary(try OptionCheck.settings(file.arguments)) == Self.summary(fromFlags))
        #expect(file.settings.first(where: { $0.key == "timeout" })?.values.map(\.line) == [15, 16])
    }

    @Test("flags set false, empty lists and an empty file set nothing: defaults stay")
    func emptyValues() throws {
        let defaults = try OptionCheck.settings(["--wan", "eth0"])
        let falsy = try OptionCheck.write("wan: eth0\nlan: []\nno-hairpin: false\n"), empty = try OptionCheck.write("# nothing yet\n")
        defer { OptionCheck.remove(falsy); OptionCheck.remove(empty) }
        #expect(Self.summary(try OptionCheck.settings(["--config", falsy])) == Self.summary(defaults))
        #expect(Self.summary(try OptionCheck.settings(["--wan", "eth0", "--config", empty])) == Self.summary(defaults))
    }

    @Test("the file's keys are exactly EngineOptions' options but --config")
    func keysAreTheOptions() throws {
        let options = try EngineOptions.parse([])
        let names = Mirror(reflecting: options).children.compactMap(\.label).map { label in
            label.dropFirst().reduce(into: "") { name, c in name += c.isUppercase ? "-" + c.lowercased() : String(c) }
        }
        #expect(Set(names).subtracting(["config"]) == Set(ConfigFile.keyNames))
        #expect(ConfigFile.keyNames.count == names.count - 1)
    }

    // MARK: the command line wins

    @Test("an option on the command line wins over the file's (scalar, flag-free default, list)")
    func commandLineWins() throws {
        let path = try OptionCheck.write("""
            queue: 7
            wan: eth1
            helpers: irc
            lan: [192.0.2.0/24, 10.1.0.0/16]
            timeout: [udp=60]
            control: /tmp/from-file.sock

            """)
        defer { OptionCheck.remove(path) }
        let fileOnly = try OptionCheck.settings(["--config", path])
        #expect(fileOnly.queue == 7 && fileOnly.wanInterface == "eth1" && fileOnly.helpers == ["irc"])
        #expect(fileOnly.internalPrefixes.map(\.description) == ["192.0.2.0/24", "10.1.0.0/16"])
        #expect(fileOnly.controlPath == "/tmp/from-file.sock")

        // Scalars: the command line's value, even when it equals the default (--queue 0).
        let s = try OptionCheck.settings(["--queue", "0", "--config", path, "--wan", "eth9", "--helpers", "ftp,irc"])
        #expect(s.queue == 0 && s.wanInterface == "eth9" && s.helpers == ["ftp", "irc"])
        #expect(s.controlPath == "/tmp/from-file.sock")
        // Lists: the command line's list replaces the file's whole list; others stay the file's.
        let l = try OptionCheck.settings(["--config", path, "--lan", "172.16.0.0/12"])
        #expect(l.internalPrefixes.map(\.description) == ["172.16.0.0/12"])
        #expect(l.nat.timeouts.udp == fileOnly.nat.timeouts.udp && l.queue == 7)
        // A bad file value that the command line replaces is never used.
        let bad = try OptionCheck.write("wan: eth1\nlan: 192.0.2.0/33\n")
        defer { OptionCheck.remove(bad) }
        #expect(try OptionCheck.settings(["--config", bad, "--lan", "192.0.2.0/24"]).internalPrefixes.map(\.description) == ["192.0.2.0/24"])
    }

    // MARK: errors: one line, file, line, key

    static let known = "queue, queues, wan, lan, forward, port-range, helpers, helper-ports, filtering, max-flows, max-flows-per-host, timeout, reserve-local-port-range, max-helper-flows-per-host, no-hairpin, fail-open, firewall, control, metrics, state-file, checkpoint-interval, audit-log, ipfix-collector, ipfix-domain-id, no-nat-to, max-new-flows-per-host, to-source, pool-placement, max-other-flows, sync-listen, sync-peer, sync-key, sync-interval, role, virtual-address, fast-path, fast-path-lan-interface, fast-path-max-flows, fast-path-delay, fast-path-object, redirect, max-redirect-flows, reverse-path-check, max-redirect-flows-per-host, port-block-size, max-port-blocks-per-host, worker-cpus, busy-poll"

    @Test("an unreadable file: FILE: cannot read: reason")
    func unreadable() throws {
        let missing = "/nonexistent-masqd-dir/masqd.yaml"
        #expect(throws: MasqdError.self) { try OptionCheck.settings(["--config", missing, "--wan", "eth0"]) }
        do { _ = try OptionCheck.settings(["--config", missing]) } catch let error as MasqdError {
            #expect(error.description == "\(missing): cannot read: No such file or directory")
        }
        let dir = NSTemporaryDirectory()
        do { _ = try OptionCheck.settings(["--config", dir]) } catch let error as MasqdError {
            #expect(error.description == "\(dir): cannot read: Is a directory")
        }
    }

    @Test("YAML syntax errors: FILE:LINE: what libyaml says")
    func syntaxErrors() throws {
        let flow = try Self.failure("wan: eth0\nlan: [192.0.2.0/24\nqueue: 3\n")
        #expect(flow.hasPrefix("F:3: did not find expected ',' or ']'"), "\(flow)")
        let tab = try Self.failure("wan: eth0\n\tlan: 192.0.2.0/24\n")
        #expect(tab.hasPrefix("F:2: "), "\(tab)")
        let colon = try Self.failure("wan: eth0\nqueue: 1: 2\n")
        #expect(colon.hasPrefix("F:2: mapping values are not allowed"), "\(colon)")
        let twoDocuments = try Self.failure("wan: eth0\n---\nwan: eth1\n")
        #expect(twoDocuments == "F:2: a second YAML document; the file must be one mapping of options")
        for message in [flow, tab, colon, twoDocuments] { #expect(!message.contains("\n"), "\(message)") }
    }

    @Test("bytes that are not UTF-8: FILE:LINE")
    func notUTF8() throws {
        let path = try OptionCheck.write("")
        defer { OptionCheck.remove(path) }
        try Data(Array("wan: eth0\nlan: 192.0.2.0/24\n# caf".utf8) + [0xE9, 0x0A]).write(to: URL(fileURLWithPath: path))
        #expect(throws: MasqdError.self) { try OptionCheck.settings(["--config", path]) }
        do { _ = try OptionCheck.settings(["--config", path]) } catch let error as MasqdError {
            #expect(error.description == "\(path):3: not UTF-8 text")
        }
    }

    @Test("unknown keys, duplicate keys and a file that is not a mapping")
    func structureErrors() throws {
        #expect(try Self.failure("wan: eth0\n\nlans: 192.0.2.0/24\n") == "F:3: unknown key 'lans' (known: \(Self.known))")
        #expect(try Self.failure("wan: eth0\nconfig: other.yaml\n") == "F:2: unknown key 'config' (known: \(Self.known))")
        #expect(try Self.failure("--wan: eth0\n") == "F:1: unknown key '--wan' (known: \(Self.known))")
        #expect(try Self.failure("wan: eth0\nlan: 192.0.2.0/24\nwan: eth1\n") == "F:3: key 'wan' given twice (first at line 1)")
        #expect(try Self.failure("- wan\n- eth0\n") == "F:1: expected a mapping of option names to values, found a list")
        #expect(try Self.failure("wan eth0\n") == "F:1: expected a mapping of option names to values, found 'wan eth0'")
        // An error in the last line refuses the whole file, even though the rest is fine.
        #expect(try Self.failure("queue: 3\nwan: eth0\nlan: 192.0.2.0/24\nbogus: 1\n").hasPrefix("F:4: unknown key 'bogus'"))
    }

    @Test("a value of the wrong type: FILE:LINE: key 'K' expects …")
    func typeErrors() throws {
        #expect(try Self.failure("wan: eth0\nlan: {prefix: 192.0.2.0/24}\n") == "F:2: key 'lan' expects a value or a list of values, found a mapping")
        #expect(try Self.failure("wan: eth0\nlan:\n  - [192.0.2.0/24]\n") == "F:3: key 'lan' expects a list of single values, found a list in it")
        #expect(try Self.failure("wan: [eth0, eth1]\n") == "F:1: key 'wan' expects a single value, found a list")
        #expect(try Self.failure("wan:\nqueue: 1\n") == "F:1: key 'wan' expects a single value, found no value")
        #expect(try Self.failure("wan: eth0\nno-hairpin: maybe\n") == "F:2: key 'no-hairpin' expects true or false, found 'maybe'")
        #expect(try Self.failure("wan: eth0\nno-hairpin: \"true\"\n") == "F:2: key 'no-hairpin' expects true or false, found 'true'")
        #expect(try Self.failure("wan: |\n  eth0\n  eth1\n") == #"F:1: key 'wan' expects a single value, found 'eth0\u{a}eth1\u{a}'"#)
    }

    @Test("a bad value: FILE:LINE: key value: the usual message")
    func valueErrors() throws {
        #expect(try Self.failure("wan: eth0\nqueue: 3\nlan: 192.0.2.0/33\n")
                == "F:3: lan 192.0.2.0/33: not an IPv4 prefix (A.B.C.D/N with host bits zero)")
        // An item of a list is reported at its own line.
        #expect(try Self.failure("wan: eth0\nlan:\n  - 192.0.2.0/24\n  - 10.0.0.0/8\n  - 10.1.0.0/16\n")
                == "F:5: lan 10.1.0.0/16: overlaps --lan 10.0.0.0/8")
        #expect(try Self.failure("wan: eth0\nqueue: 70000\n") == "F:2: queue 70000: not a queue number (0-65535)")
        #expect(try Self.failure("wan: eth/0\n") == "F:1: wan eth/0: not an interface name")
        #expect(try Self.failure("wan: \"\"\n") == "F:1: wan: required (the WAN interface name)")
        #expect(try Self.failure("wan: eth0\nmax-flows: 0\nmax-flows-per-host: 0\n") == "F:2: max-flows 0: expected a number from 1 to 16777216")
        #expect(try Self.failure("wan: eth0\nmax-flows-per-host: 0\n") == "F:2: max-flows-per-host 0: expected a positive number")
        #expect(try Self.failure("wan: eth0\nhelpers: [ftp, gopher]\n") == "F:2: helpers ftp,gopher: unknown helper 'gopher' (known: ftp, irc, tftp, sip, pptp, none)")
        #expect(try Self.failure("wan: eth0\ntimeout:\n  - udp=60\n  - tcp=5\n")
                == "F:4: timeout tcp=5: unknown timeout 'tcp' (udp, tcp-established, tcp-transitory, tcp-opening, tcp-closed, icmp, other)")
        // Issue #20: the router's ephemeral range, the helper shares, the unanswered-SYN timeout.
        #expect(try Self.failure("wan: eth0\nreserve-local-port-range: maybe\n") == "F:2: reserve-local-port-range maybe: expected yes or no")
        #expect(try Self.failure("wan: eth0\nmax-helper-flows-per-host: 0\n") == "F:2: max-helper-flows-per-host 0: expected a number from 1 to 1024")
        #expect(try Self.failure("wan: eth0\nmax-helper-flows-per-host: 1025\n") == "F:2: max-helper-flows-per-host 1025: expected a number from 1 to 1024")
        // A value the check names differently from the file (normalised) is placed at its key.
        #expect(try Self.failure("wan: eth0\nhelper-ports:\n  - ftp=21,6667\n")
                == "F:2: helper-ports irc=6667: port 6667 is already followed by the ftp helper")
        #expect(try Self.failure("wan: eth0\nhelper-ports:\n  - ftp=21\n  - irc=21\n")
                == "F:4: helper-ports irc=21: port 21 is already followed by the ftp helper")
        // A file value that conflicts with a command-line value is still placed in the file.
        #expect(try Self.failure("wan: eth0\nforward: tcp:80=192.0.2.10\n", ["--lan", "10.0.0.0/8"])
                == "F:2: forward tcp:80=192.0.2.10: 192.0.2.10 is not inside any --lan prefix")
        // A bad value from the command line keeps its usual message.
        #expect(try Self.failure("wan: eth0\n", ["--lan", "10.0.0.0/33"])
                == "--lan 10.0.0.0/33: not an IPv4 prefix (A.B.C.D/N with host bits zero)")
    }

    @Test("reserve-local-port-range, max-helper-flows-per-host and timeout tcp-opening from a file and the command line")
    func localPortsAndHelperShares() throws {
        let defaults = try OptionCheck.settings(["--wan", "eth0"])
        #expect(defaults.reserveLocalPortRange && defaults.nat.helperLimits.connectionsPerHost == 128
                && defaults.nat.helperLimits.expectationsPerHost == 128 && defaults.nat.timeouts.tcpOpening == .seconds(120))
        let path = try OptionCheck.write("wan: eth0\nreserve-local-port-range: no\nmax-helper-flows-per-host: 16\ntimeout: tcp-opening=30\n")
        defer { OptionCheck.remove(path) }
        let file = try OptionCheck.settings(["--config", path])
        #expect(!file.reserveLocalPortRange && file.nat.helperLimits.connectionsPerHost == 16
                && file.nat.helperLimits.expectationsPerHost == 16 && file.nat.timeouts.tcpOpening == .seconds(30))
        // The command line wins; `yes`/`no` and `true`/`false` both read.
        #expect(try OptionCheck.settings(["--config", path, "--reserve-local-port-range", "yes"]).reserveLocalPortRange)
        #expect(try !OptionCheck.settings(["--wan", "eth0", "--reserve-local-port-range", "false"]).reserveLocalPortRange)
    }

    @Test("every error is one line")
    func oneLine() throws {
        let files = [
            "wan: eth0\nlan: [\n", "{", "wan: eth0\nlan: *nowhere\n", "wan: !!binary AAAA\nlan: {a: [b, {c: d}]}\n",
            "? [a, b]\n: c\n", "wan: eth0\n\"unknown\\nkey\": 1\n", "wan: eth0\nforward: \"tcp:80=\\n10.0.0.1\"\n",
        ]
        for yaml in files {
            let message = try Self.failure(yaml)
            #expect(!message.contains("\n") && message.hasPrefix("F:"), "\(yaml.debugDescription) → \(message)")
        }
    }

    // MARK: end to end

    @Test("`rules install --config F` and `run --config F` masquerade h1's ping and UDP to the server")
    func endToEnd() throws {
        let masqd = try Integration.masqdExecutable()
        let queue = Integration.queue(40)
        try Integration.withTopology("cfa") { lab in
            let config = lab.workDir + "/masqd.yaml"
            try """
                # the whole deployment: nothing but --config on the command lines
                queue: \(queue)
                wan: \(LabTopology.wanInterface)
                lan:
                  - \(LabTopology.lanCIDR)
                control: \(lab.controlPath)

                """.write(toFile: config, atomically: true, encoding: .utf8)

            let install = try lab.masqd(masqd, ["rules", "install", "--config", config])
            #expect(install.succeeded, "rules install --config failed: \(install.summary)")
            let rules = try Integration.iptablesSave(lab)
            #expect(rules.contains("--queue-num \(queue)") && rules.contains("-s \(LabTopology.lanCIDR)"),
                    "the rules must use the file's queue \(queue) and lan:\n\(rules)")

            // Answering on the lab's control socket means the file's `control` was used.
            let engine = try Integration.startRun(lab, masqd, ["--config", config])

            let wan = LabTopology.routerWANAddress, server = LabTopology.serverAddress
            let sniff = try lab.spawnHelper(.server, ["sniff", "eth0"], name: "sniff")
            let echo = try lab.spawnHelper(.server, ["udpecho", "9999"], name: "udpecho")
            let ping = try lab.run(.host1, lab.helper(["ping", server, "--count", "3", "--id", "4660", "--interval", "0.1"]), timeout: 30)
            #expect(ping.succeeded && ping.stdout.contains("3 sent, 3 received"), "ping: \(ping.summary)")
            let udp = try lab.run(.host1, lab.helper(["udpsend", server, "9999", "--sport", "40000", "--msg", "cfg"]), timeout: 20)
            #expect(udp.succeeded && udp.stdout.contains("'echo cfg seen-from \(wan):"), "udpsend: \(udp.summary)")
            #expect(echo.lines.contains { $0.hasPrefix("udp from \(wan):") }, "the UDP echo saw:\n\(echo.output)")
            usleep(200_000)
            let seen = SniffedPacket.parse(sniff.lines).filter(\.incoming)
            #expect(seen.contains { $0.proto == "icmp" && $0.icmpKind == "echo-request" }, "no echo request reached the server:\n\(sniff.output)")
            #expect(!seen.isEmpty && seen.allSatisfy { $0.source == wan }, "the server saw a source other than \(wan):\n\(sniff.output)")

            let stats = try Semantics.stats(lab, masqd)
            #expect(!stats.isEmpty, "masqd stats on the file's control socket gave no counters")
            #expect(engine.isRunning, "masqd run died during the test (status \(engine.exitStatus ?? -1)):\n\(engine.output)")
            engine.stop(grace: 5)

            let remove = try lab.masqd(masqd, ["rules", "remove", "--config", config])
            #expect(remove.succeeded, "rules remove --config failed: \(remove.summary)")
            #expect(!(try Integration.iptablesSave(lab)).contains("masqd queue"), "rules remove --config left rules behind")
        }
    }
}
