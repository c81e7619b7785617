import Foundation
import Masqd
import MasqdLab
import MasqdShell
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Helpers for SpoofingTests and ExhaustionTests (their engine: `Integration.withEngine(scapy:
/// true, …)`, whose body gets the engine's process for its memory): scapy run inside a
/// namespace, and counters compared before and after.
/// Queue indices 51-60, namespace tags starting with "rb".
enum Robust {
    /// Runs a Python script with scapy in a node's namespace (`from scapy.all import *` and
    /// `conf.verb = 0` come first); throws with its output unless it exits 0.
    @discardableResult
    static func scapy(_ lab: LabTopology, _ node: LabTopology.Node, _ script: String, timeout: Double = 30) throws -> CommandResult {
        let full = "from scapy.all import *\nconf.verb = 0\n" + script
        let result = try lab.run(node, [LabTopology.python, "-c", full], timeout: timeout)
        guard result.succeeded else { throw IntegrationFailure("scapy in \(lab.namespace(node)) failed: \(result.summary)") }
        return result
    }

    /// The MAC address of an interface in a node's namespace.
    static func mac(_ lab: LabTopology, _ node: LabTopology.Node, _ interface: String) throws -> String {
        try lab.check(node, ["cat", "/sys/class/net/\(interface)/address"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// What moved between two `masqd stats` readings (numeric counters only, non-zero changes).
    static func moved(_ before: [String: Int], _ after: [String: Int]) -> [String: Int] {
        var changes: [String: Int] = [:]
        for (name, value) in after where value != (before[name] ?? 0) { changes[name] = value - (before[name] ?? 0) }
        return changes
    }

    /// Drop counters (drop_*, fragments_drop_*) that moved, for failure messages.
    static func drops(_ changes: [String: Int]) -> [String: Int] {
        changes.filter { $0.key.hasPrefix("drop_") || $0.key.hasPrefix("fragments_drop_") }
    }

    /// Resident memory of a process in KiB (VmRSS in /proc/PID/status).
    static func rssKiB(pid: Int32) throws -> Int {
        let status = try String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)
        guard let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
              let kib = Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "")
        else { throw IntegrationFailure("no VmRSS for pid \(pid)") }
        return kib
    }

    /// Samples `rssKiB` every `interval` while `work` runs; returns the work's result and the peak.
    static func peakRSS<T>(pid: Int32, interval: Double = 0.1, during work: () throws -> T) rethrows -> (T, Int) {
        let peak = PeakSampler(pid: pid, interval: interval)
        peak.start()
        let result = try work()
        return (result, peak.stop())
    }
}

/// Reads a process's VmRSS on a background thread until stopped; keeps the highest value.
final class PeakSampler: @unchecked Sendable {
    private let pid: Int32
    private let interval: Double
    private let lock = NSLock()
    private var peak = 0
    private var running = true
    private var thread: Thread?
    private let done = DispatchSemaphore(value: 0)

    init(pid: Int32, interval: Double) {
        self.pid = pid
        self.interval = interval
    }

    func start() {
        let thread = Thread { [self] in
            while lock.withLock({ running }) {
                if let kib = try? Robust.rssKiB(pid: pid) { lock.withLock { peak = max(peak, kib) } }
                Thread.sleep(forTimeInterval: interval)
            }
            done.signal()
        }
        self.thread = thread
        thread.start()
    }

    func stop() -> Int {
        lock.withLock { running = false }
        done.wait()
        if let kib = try? Robust.rssKiB(pid: pid) { lock.withLock { peak = max(peak, kib) } }
        return lock.withLock { peak }
    }
}
