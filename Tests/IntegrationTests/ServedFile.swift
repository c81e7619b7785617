import Foundation
import MasqdLab
import MasqdShell

/// A file of random bytes in the lab's web root, served by the lab's HTTP helper: what the
/// download tests fetch through the NAT and compare by sha256.
struct ServedFile {
    /// The web root (the namespaces share the file system, so a test reads it directly).
    let root: String
    /// The file's path and sha256.
    let path: String
    let sha256: String
    /// The HTTP helper. It logs each request as `http client ADDR: "GET …" 200 -`.
    let http: BackgroundProcess

    /// The client addresses the HTTP helper logged, in order.
    var clients: [String] {
        http.lines.filter { $0.hasPrefix("http client ") }.map { String($0.split(separator: " ")[2].split(separator: ":")[0]) }
    }

    /// Writes `megabytes` MiB from /dev/urandom to `path`; returns the file's sha256.
    @discardableResult
    static func random(_ path: String, megabytes: Int) throws -> String {
        try Shell.check(["dd", "if=/dev/urandom", "of=\(path)", "bs=1M", "count=\(megabytes)", "status=none"])
        return try Semantics.sha256(path)
    }
}

extension LabTopology {
    /// `name`, `megabytes` MiB of random bytes in workDir/www, served over HTTP by the helper on
    /// `node` at `port` (paced to `rate` bytes a second if given).
    func serveRandomFile(_ name: String, megabytes: Int, from node: Node, port: Int, rate: Int? = nil,
                         helperName: String = "http") throws -> ServedFile {
        try serve(name, from: node, port: port, rate: rate, helperName: helperName) { try ServedFile.random($0, megabytes: megabytes) }
    }

    /// `name` holding `contents` in workDir/www, served as `serveRandomFile` serves.
    func serveFile(_ name: String, contents: Data, from node: Node, port: Int, rate: Int? = nil,
                   helperName: String = "http") throws -> ServedFile {
        try serve(name, from: node, port: port, rate: rate, helperName: helperName) {
            try contents.write(to: URL(fileURLWithPath: $0))
            return try Semantics.sha256($0)
        }
    }

    /// The web root made, the file written by `write` (given its path, returning its sha256),
    /// the HTTP helper started.
    private func serve(_ name: String, from node: Node, port: Int, rate: Int?, helperName: String,
                       write: (String) throws -> String) throws -> ServedFile {
        let root = workDir + "/www"
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        let sha256 = try write(root + "/" + name)
        let http = try spawnHelper(node, ["http", root, String(port)] + (rate.map { ["--rate", String($0)] } ?? []), name: helperName)
        return ServedFile(root: root, path: root + "/" + name, sha256: sha256, http: http)
    }
}

extension LabTopology {
    /// curl on `node` fetching `url` into `output`, printing `writeOut` (curl's -w) when given;
    /// curl gives up after `maxTime` seconds, the run 10 s later.
    func curl(from node: Node, _ url: String, to output: String = "/dev/null", writeOut: String? = nil,
              maxTime: Int = 60) throws -> CommandResult {
        try run(node, curlArguments(url, output, writeOut, maxTime), timeout: Double(maxTime + 10))
    }

    /// `curl(from:…)` in the background, logged as `name`.
    func spawnCurl(from node: Node, _ url: String, to output: String, writeOut: String? = nil, maxTime: Int = 60,
                   name: String) throws -> BackgroundProcess {
        try spawn(node, curlArguments(url, output, writeOut, maxTime), name: name)
    }

    private func curlArguments(_ url: String, _ output: String, _ writeOut: String?, _ maxTime: Int) -> [String] {
        ["curl", "-sS", "--max-time", String(maxTime), "-o", output] + (writeOut.map { ["-w", $0] } ?? []) + [url]
    }
}
