import Foundation
import Masqd

#if canImport(Glibc)
import Glibc
#endif

/// Engine options checked as text (no root, no namespaces): what a command line or a config
/// file parses to, or the one-line error it fails with.
enum OptionCheck {
    /// settings() of the command line `arguments`.
    static func settings(_ arguments: [String]) throws -> EngineSettings {
        try EngineOptions.parse(arguments).settings()
    }

    /// The one-line message settings() fails with for `arguments`, or "accepted".
    static func message(_ arguments: [String]) -> String {
        do { _ = try settings(arguments); return "accepted" } catch { return "\(error)" }
    }

    /// Writes `text` to a fresh file in the temporary directory and returns its path.
    static func write(_ text: String, name: String = "masqd.yaml") throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("masqd-cfg-\(getpid())-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let path = dir.appendingPathComponent(name).path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// Removes a file `write` made, with its directory.
    static func remove(_ path: String) {
        try? FileManager.default.removeItem(atPath: (path as NSString).deletingLastPathComponent)
    }
}
