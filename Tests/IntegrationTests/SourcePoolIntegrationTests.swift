import Foundation
@testable import Masqd
@testable import MasqdLab
import Testing

/// `--to-source` (issue #15 item 1) through the real engine: two LAN hosts placed on two pool
/// addresses, each keeping its address across connections and across a restart with a state
/// file; the options' errors, file keys and reload. The "internet" routes the pool prefix to
/// the router, which holds the pool addresses on its loopback (README: Source address pools).
/// Queue index 134.
@Suite(.integrationLimit)
struct SourcePoolIntegrationTests: LabAddresses {
    let pool = ["198.18.0.1", "198.18.0.2"]

    @Test("bad --to-source, --lan pools and --pool-placement are one-line errors naming the option; file keys; a reload refuses a change")
    func options() throws {
        #expect(OptionCheck.message(["--wan", "eth0", "--to-source", "198.18.0.9-198.18.0.1"]) == "--to-source 198.18.0.9-198.18.0.1: expected ADDR or ADDR-ADDR (IPv4, first <= last)")
        #expect(OptionCheck.message(["--wan", "eth0", "--to-source", "198.18.0.0-198.18.1.0"]) == "--to-source 198.18.0.0-198.18.1.0: more than 32 addresses")
        #expect(OptionCheck.message(["--wan", "eth0", "--to-source", "127.0.0.1"]) == "--to-source 127.0.0.1: 127.0.0.1 cannot be a source address")
        #expect(OptionCheck.message(["--wan", "eth0", "--lan", "192.0.2.0/24", "--to-source", "192.0.2.7"]) == "--to-source 192.0.2.7: 192.0.2.7 is inside --lan 192.0.2.0/24")
        #expect(OptionCheck.message(["--wan", "eth0", "--to-source", "198.18.0.1", "--to-source", "198.18.0.1"]) == "--to-source 198.18.0.1,198.18.0.1: an address is given twice")
        #expect(OptionCheck.message(["--wan", "eth0", "--lan", "192.0.2.0/25=198.18.0.1", "--to-source", "198.18.0.1"]) == "--lan 192.0.2.0/25=198.18.0.1: an address is given twice")
        #expect(OptionCheck.message(["--wan", "eth0", "--lan", "192.0.2.0/25=pool"]) == "--lan 192.0.2.0/25=pool: expected ADDR or ADDR-ADDR (IPv4, first <= last)")
        #expect(OptionCheck.message(["--wan", "eth0", "--lan", "192.0.2.0/33=198.18.0.1"]) == "--lan 192.0.2.0/33=198.18.0.1: not an IPv4 prefix (A.B.C.D/N with host bits zero)")
        #expect(OptionCheck.message(["--wan", "eth0", "--to-source", "198.18.0.1", "--pool-placement", "random"]) == "--pool-placement random: expected hash or round-robin")
        #expect(OptionCheck.message(["--wan", "eth0", "--pool-placement", "hash"]) == "--pool-placement hash: needs --to-source or a --lan prefix with a pool")

        let s = try OptionCheck.settings(["--wan", "eth0", "--lan", "192.0.2.0/25=198.18.1.1,198.18.1.5-198.18.1.6", "--lan", "192.0.2.128/25",
                                         "--to-source", "198.18.0.1-198.18.0.2"])
        #expect(s.internalPrefixes.map(\.description) == ["192.0.2.0/25", "192.0.2.128/25"])
        #expect(s.nat.sourcePools.addresses.map(\.description) == ["198.18.0.1", "198.18.0.2", "198.18.1.1", "198.18.1.5", "198.18.1.6"])
        #expect(s.nat.sourcePools.prefixPools == [1, nil] && s.nat.sourcePools.defaultPool == 0 && s.nat.sourcePools.placement == .hash)
        #expect(s.sourcePoolsText == "to-source 198.18.0.1,198.18.0.2 192.0.2.0/25=198.18.1.1,198.18.1.5,198.18.1.6 (hash)")

        let path = try OptionCheck.write("wan: eth0\nto-source: [198.18.0.1, 198.18.0.3]\npool-placement: round-robin\n")
        defer { OptionCheck.remove(path) }
        let fromFile = try OptionCheck.settings(["--config", path])
        #expect(fromFile.nat.sourcePools.addresses.map(\.description) == ["198.18.0.1", "198.18.0.3"] && fromFile.nat.sourcePools.placement == .roundRobin)
        let plain = try OptionCheck.settings(["--wan", "eth0"])
        #expect(Engine.unchangeable(fromFile, plain).map(\.key) == ["to-source"])
    }

    @Test("two LAN hosts on two pool addresses, each keeping its address across connections and across a restart with a state file")
    func twoHostsAcrossRestart() throws {
        let masqd = try Integration.masqdExecutable()
        let queue = Integration.queue(134)
        try Integration.withTopology("sp") { lab in
            for address in pool { try lab.check(.router, ["ip", "addr", "add", "\(address)/32", "dev", "lo"]) }
            try lab.check(.server, ["ip", "route", "add", "198.18.0.0/24", "via", LabTopology.routerWANAddress])
            let stateFile = lab.workDir + "/masqd.state"
            let options = ["--to-source", "\(pool[0])-\(pool[1])", "--pool-placement", "round-robin", "--state-file", stateFile]
            let install = try lab.masqd(masqd, ["rules", "install"] + lab.engineOptions(queue: queue) + options)
            try #require(install.succeeded, "\(install.summary)")
            _ = try lab.spawnHelper(.server, ["udpecho", "7777"], name: "udpecho")

            func seen(_ node: LabTopology.Node, sport: Int) throws -> String? {
                let r = try lab.run(node, lab.helper(["udpsend", server, "7777", "--sport", String(sport), "--msg", "hi"]), timeout: 15)
                guard let range = r.stdout.range(of: "seen-from ") else { return nil }
                return String(r.stdout[range.upperBound...].prefix { $0 != ":" })
            }

            let first = try StateRestartTests.startEngine(lab, masqd, queue: queue, extra: options, name: "masqd-1")
            // Round-robin: h1 first gets the first address, h2 the second. (Source ports below the
            // router's reserved ephemeral range, so they are preserved on both addresses.)
            #expect(try seen(.host1, sport: 21000) == pool[0])
            #expect(try seen(.host2, sport: 21000) == pool[1])
            for sport in 21001...21003 {
                #expect(try seen(.host1, sport: sport) == pool[0], "h1 moved off its address on a new connection")
                #expect(try seen(.host2, sport: sport) == pool[1], "h2 moved off its address on a new connection")
            }
            let flows = try lab.masqd(masqd, ["flows", "--control", lab.controlPath])
            #expect(flows.stdout.contains("\(LabTopology.host1Address):21000 -> \(server):7777 via \(pool[0]):21000"), "\(flows.summary)")
            #expect(flows.stdout.contains("\(LabTopology.host2Address):21000 -> \(server):7777 via \(pool[1]):21000"), "\(flows.summary)")
            StateRestartTests.stop(first)

            // After the restart h2 speaks first: without the saved pairing round-robin would give it the first address.
            let second = try StateRestartTests.startEngine(lab, masqd, queue: queue, extra: options, name: "masqd-2")
            #expect(try seen(.host2, sport: 22000) == pool[1], "h2 lost its address across the restart:\n\(second.output)")
            #expect(try seen(.host1, sport: 22000) == pool[0], "h1 lost its address across the restart:\n\(second.output)")
            #expect(try seen(.host1, sport: 21000) == pool[0], "a restored flow of h1")
            let stats = try Semantics.stats(lab, masqd)
            #expect(stats["drop_pool_address_ports_exhausted"] == 0, "\(stats)")
            StateRestartTests.stop(second)
        }
    }
}
