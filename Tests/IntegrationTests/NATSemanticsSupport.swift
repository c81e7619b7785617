import Foundation
import Masqd
import MasqdLab
import MasqdShell
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Helpers for NATSemanticsTests: an engine started with extra ENGINE OPTIONS (port forwards,
/// filtering, limits) in a topology that may have the far host, and `masqd stats` as numbers.
enum Semantics {
    /// Like `Integration.withEngine`, but `rules install` and `run` both get `options`
    /// (one command line describes one deployment), and the topology can have the far host.
    static func withEngine<T>(
        _ tag: String, queue: Int, options: [String] = [], farHost: Bool = false, farLinkMTU: Int = 1500,
        firewall: FirewallChoice? = nil, _ body: (LabTopology, String) throws -> T
    ) throws -> T {
        try Integration.requireEnvironment(firewall)
        let masqd = try Integration.masqdExecutable()
        let lab = try LabTopology(prefix: Integration.prefix(tag), farHost: farHost, farLinkMTU: farLinkMTU, firewall: firewall, modeOptions: Integration.modeOptions)
        defer { lab.destroy() }
        try lab.create()
        let install = try lab.masqd(masqd, ["rules", "install"] + lab.engineOptions(queue: queue) + options)
        guard install.succeeded else { throw IntegrationFailure("rules install failed: \(install.summary)") }
        let engine = try lab.startEngine(masqd: masqd, queue: queue, extra: options)
        let result = try body(lab, masqd)
        #expect(engine.isRunning, "masqd run died during the test (status \(engine.exitStatus ?? -1)):\n\(engine.output)")
        engine.stop(grace: 5)
        return result
    }

    /// `masqd stats` of the topology's engine as name → value (numeric counters only).
    static func stats(_ lab: LabTopology, _ masqd: String) throws -> [String: Int] {
        let result = try lab.masqd(masqd, ["stats", "--control", lab.controlPath])
        guard result.succeeded else { throw IntegrationFailure("masqd stats failed: \(result.summary)") }
        var values: [String: Int] = [:]
        for line in result.lines {
            let f = line.split(separator: " ")
            if f.count == 2, let value = Int(f[1]) { values[String(f[0])] = value }
        }
        return values
    }

    /// sha256 of a file, lower-case hex.
    static func sha256(_ path: String) throws -> String {
        String(try Shell.check(["sha256sum", path]).stdout.prefix(64))
    }

    /// Waits until `condition` holds, polling every 50 ms; false on timeout.
    static func waitUntil(timeout: Double, _ condition: () throws -> Bool) rethrows -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if try condition() { return true }
            usleep(50_000)
        }
        return try condition()
    }

    /// The first line of `text` that starts with `prefix`.
    static func line(_ lines: [String], startingWith prefix: String) -> String? {
        lines.first { $0.hasPrefix(prefix) }
    }
}
