import Foundation
@testable import Masqd
@testable import MasqdLab
import NATCore
import Testing

/// `--max-new-flows-per-host RATE/s` (issue #15 item 5) through the real engine: a flood of new
/// UDP flows from one LAN host is held to the rate (burst plus rate × time) while that host's
/// established flow and another host's new flows go on; the option's errors, file key and
/// reload. Queue index 133.
@Suite(.integrationLimit)
struct FlowRateLimitTests: LabAddresses {
    @Test("bad --max-new-flows-per-host values are one-line errors naming the option; the file key; reloadable")
    func option() throws {
        let expected = "expected RATE/s with RATE a whole number from 1 to 1000000"
        for bad in ["0/s", "10", "10/min", "-5/s", "1000001/s", "ten/s"] {
            #expect(OptionCheck.message(["--wan", "eth0", "--max-new-flows-per-host=\(bad)"]) == "--max-new-flows-per-host \(bad): \(expected)")
        }
        let settings = try OptionCheck.settings(["--wan", "eth0", "--max-new-flows-per-host", "25/s"])
        #expect(settings.nat.newFlowsPerHost == NewFlowRate(perSecond: 25))
        #expect(try OptionCheck.settings(["--wan", "eth0"]).nat.newFlowsPerHost == nil)
        let path = try OptionCheck.write("wan: eth0\nmax-new-flows-per-host: 40/s\n")
        defer { OptionCheck.remove(path) }
        let fromFile = try OptionCheck.settings(["--config", path])
        #expect(fromFile.nat.newFlowsPerHost?.perSecond == 40)
        var other = fromFile
        other.nat.newFlowsPerHost = nil
        #expect(Engine.unchangeable(fromFile, other).isEmpty, "the rate can change on reload")
        let bad = try OptionCheck.write("wan: eth0\nmax-new-flows-per-host: 40\n")
        defer { OptionCheck.remove(bad) }
        #expect(OptionCheck.message(["--config", bad]) == "\(bad):2: max-new-flows-per-host 40: \(expected)")
    }

    @Test("a flood of new flows from h1 is held to 10/s; h1's established flow and h2's new flows are served meanwhile")
    func floodHeldToRate() throws {
        try Integration.withEngine("fr", queue: Integration.queue(133), options: ["--max-new-flows-per-host", "10/s"]) { lab, masqd in
            _ = try lab.spawnHelper(.server, ["udpecho", "7777"], name: "udpecho")
            // h1's flow, established before the flood.
            let first = try lab.run(.host1, lab.helper(["udpsend", server, "7777", "--sport", "41000", "--msg", "before"]), timeout: 15)
            #expect(first.stdout.contains("seen-from \(wan):"), "\(first.summary)")
            let before = try Semantics.stats(lab, masqd)

            // 600 new flows, one datagram each, one every ~2 ms (about 1.3 s of sending).
            let started = Date()
            let flood = try lab.spawn(.host1, lab.helper(["udpflows", server, "7777", "--count", "600", "--tries", "1", "--pace", "1", "--timeout", "1"]), name: "flood")
            usleep(300_000)
            // Meanwhile: h1's established flow, and ten new flows of h2 (its own burst).
            let established = try lab.run(.host1, lab.helper(["udpsend", server, "7777", "--sport", "41000", "--msg", "during", "--tries", "1"]), timeout: 15)
            #expect(established.stdout.contains("seen-from \(wan):"), "h1's established flow was refused during the flood:\n\(established.summary)")
            let other = try lab.run(.host2, lab.helper(["udpflows", server, "7777", "--count", "10", "--tries", "1"]), timeout: 15)
            #expect(other.stdout.contains("answered 10 of 10, wrong 0"), "h2's new flows were refused during h1's flood:\n\(other.summary)")
            #expect(flood.waitForExit(timeout: 30) != nil, "the flood did not finish:\n\(flood.output)")
            let elapsed = Date().timeIntervalSince(started)

            let line = try #require(flood.lines.first { $0.hasPrefix("answered ") }, "\(flood.output)")
            let answered = try #require(Int(line.split(separator: " ")[1]), "\(line)")
            // The burst of 10, then 10 a second while it sent (less than `elapsed` minus its 1 s wait).
            let ceiling = 10 + Int((10 * max(elapsed - 1, 0)).rounded(.up)) + 2
            #expect(answered >= 10 && answered <= ceiling, "h1 got \(answered) of 600 flows in \(elapsed) s; the rate allows 10 to \(ceiling)")
            #expect(answered < 100, "the flood was not held back: \(answered) of 600")
            print("flood at 10/s: \(answered) of 600 new flows admitted in \(String(format: "%.2f", elapsed)) s")

            let after = try Semantics.stats(lab, masqd)
            let refused = after["drop_host_new_flow_rate", default: 0] - before["drop_host_new_flow_rate", default: 0]
            #expect(refused == 600 - answered, "refused \(refused), answered \(answered): every other flood datagram should be a counted rate drop")
            #expect(after["flows_created", default: 0] - before["flows_created", default: 0] == answered + 10, "\(after)")
        }
    }
}
