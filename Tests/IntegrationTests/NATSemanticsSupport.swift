import Foundation
import Masqd
import MasqdLab
import MasqdShell
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Helpers for NATSemanticsTests (their engine: `Integration.withEngine` with options and the
/// far host): `masqd stats` as numbers, file hashes, waiting for a condition.
enum Semantics {
    /// `masqd stats` of the topology's engine as name → value (numeric counters only).
    static func stats(_ lab: LabTopology, _ masqd: String) throws -> [String: Int] {
        counters(try statsText(lab, masqd))
    }

    /// `stats`, read every 100 ms until `condition` holds of it or `timeout` seconds pass: the
    /// last reading (the caller checks it).
    static func stats(_ lab: LabTopology, _ masqd: String, within timeout: Double,
                      until condition: ([String: Int]) -> Bool) throws -> [String: Int] {
        let deadline = Date().addingTimeInterval(timeout)
        var values = try stats(lab, masqd)
        while !condition(values), Date() < deadline {
            usleep(100_000)
            values = try stats(lab, masqd)
        }
        return values
    }

    /// `masqd stats` of the topology's engine as printed.
    static func statsText(_ lab: LabTopology, _ masqd: String) throws -> String {
        let result = try lab.masqd(masqd, ["stats", "--control", lab.controlPath])
        guard result.succeeded else { throw IntegrationFailure("masqd stats failed: \(result.summary)") }
        return result.stdout
    }

    /// The numeric lines of `masqd stats` output (`name value`) as name → value.
    static func counters(_ text: String) -> [String: Int] {
        var values: [String: Int] = [:]
        for line in text.split(separator: "\n") {
            let f = line.split(separator: " ")
            if f.count == 2, let value = Int(f[1]) { values[String(f[0])] = value }
        }
        return values
    }

    /// Polls `masqd flows` until it lists nothing; false if flows are still listed after
    /// `timeout` seconds.
    static func flowsDrained(_ lab: LabTopology, _ masqd: String, timeout: Double) throws -> Bool {
        try waitUntil(timeout: timeout) { try lab.masqd(masqd, ["flows", "--control", lab.controlPath]).stdout.split(separator: "\n").isEmpty }
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
