import Foundation
import Masqd
import MasqdLab
import MasqdShell
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// `--busy-poll MICROSECONDS` (issue #21): after a batch the worker polls the queue instead of
/// sleeping, so a ping-pong's next packet is found by a poll; when the traffic stops it goes
/// back to sleep (no CPU burnt on an idle link); without the option nothing is polled.
@Suite(.integrationLimit)
struct BusyPollTests {
    /// CPU time (user + system, clock ticks) of the process's packet worker threads.
    static func workerTicks(pid: Int32) throws -> Int {
        var ticks = 0
        for tid in try FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task") {
            let base = "/proc/\(pid)/task/\(tid)"
            let name = (try? String(contentsOfFile: base + "/comm", encoding: .utf8)) ?? ""
            guard name.hasPrefix("masqd-q") else { continue }
            // Fields after the ")" that ends the name: state is the 1st, utime the 12th, stime the 13th.
            let stat = try String(contentsOfFile: base + "/stat", encoding: .utf8)
            guard let close = stat.lastIndex(of: ")") else { continue }
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            ticks += (Int(fields[11]) ?? 0) + (Int(fields[12]) ?? 0)
        }
        return ticks
    }

    @Test("--busy-poll 1000: a 300-echo ping through the NAT has batches found by polling; idle afterwards, the worker sleeps; without the option none are polled")
    func pollsWhileTrafficFlowsAndSleepsWhenIdle() throws {
        let queue = Integration.queue(74)
        try Integration.withEngine("bpl", queue: queue, options: ["--busy-poll", "1000"]) { lab, masqd, engine in
            let ping = try lab.run(.host1, lab.helper(["ping", LabTopology.serverAddress, "--count", "300", "--interval", "0"]), timeout: 60)
            #expect(ping.succeeded && ping.stdout.contains("300 sent, 300 received"), "ping through masqd: \(ping.summary)")
            let stats = try Semantics.stats(lab, masqd)
            let polled = stats["queue_busy_polled_batches"] ?? -1
            let batches = stats["queue_batches"] ?? -1
            // Each echo request follows its reply within a fraction of a millisecond (the ping
            // sends the next as soon as one returns), so most requests are found by the poll.
            #expect(polled > 100 && polled <= batches, "busy-polled \(polled) of \(batches) batches")

            // Idle: the worker must block again, not spin (at most 10 ticks of 100 in 1 s).
            usleep(200_000)
            let before = try Self.workerTicks(pid: engine.pid)
            usleep(1_000_000)
            let idle = try Self.workerTicks(pid: engine.pid) - before
            #expect(idle <= 10, "worker CPU while idle: \(idle) ticks in 1 s")
        }
        try Integration.withEngine("bpd", queue: queue) { lab, masqd in
            let ping = try lab.run(.host1, lab.helper(["ping", LabTopology.serverAddress, "--count", "50", "--interval", "0"]), timeout: 60)
            #expect(ping.succeeded, "ping through masqd: \(ping.summary)")
            let stats = try Semantics.stats(lab, masqd)
            #expect(stats["queue_busy_polled_batches"] == 0 && (stats["queue_batches"] ?? 0) >= 100, "default: \(stats["queue_busy_polled_batches"] ?? -1) polled of \(stats["queue_batches"] ?? -1)")
        }
    }

    @Test("--busy-poll outside 0-1000 or not a number: one-line error; the value reaches the settings")
    func badValuesAreRefused() throws {
        let expected = "expected microseconds from 0 (off) to 1000"
        for bad in ["1001", "-1", "fast", "1.5"] {
            #expect(OptionCheck.message(["--wan", "eth0", "--busy-poll=\(bad)"]) == "--busy-poll \(bad): \(expected)")
        }
        #expect(try OptionCheck.settings(["--wan", "eth0", "--busy-poll", "50"]).busyPollMicroseconds == 50)
        #expect(try OptionCheck.settings(["--wan", "eth0"]).busyPollMicroseconds == 0)
    }
}
