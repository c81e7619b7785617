import Foundation
import Masqd
import MasqdLab
import MasqdShell
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Helpers for FTPTests: FTP servers (pyftpdlib, vsftpd) started inside a topology's
/// namespaces, files with known sha256 to serve, curl and lftp as clients, and parsers for
/// the PORT / EPRT / 227 / 229 lines the servers and clients log.
enum FTPLab {
    static let pyftpdlibModule = "pyftpdlib"

    /// The FTP tests need vsftpd, lftp and python3-pyftpdlib besides what every integration
    /// test needs. A missing one is a failure with the package to install, never a skip.
    static func requireTools() throws {
        var missing: [String] = []
        if Shell.which("vsftpd") == nil { missing.append("vsftpd (apt-get install -y vsftpd)") }
        if Shell.which("lftp") == nil { missing.append("lftp (apt-get install -y lftp)") }
        let py = try Shell.run([LabTopology.python, "-c", "import \(pyftpdlibModule)"], timeout: 10)
        if !py.succeeded { missing.append("pyftpdlib for \(LabTopology.python) (apt-get install -y python3-pyftpdlib)") }
        guard missing.isEmpty else { throw IntegrationFailure("the FTP tests need: " + missing.joined(separator: ", ")) }
    }

    /// Writes `files` (name → size in bytes) of random bytes into `dir` (created, mode 755,
    /// readable by vsftpd's anonymous user); returns name → sha256.
    static func makeFiles(in dir: String, _ files: [(String, Int)]) throws -> [String: String] {
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true,
                                                attributes: [.posixPermissions: 0o755])
        var sums: [String: String] = [:]
        var generator = SystemRandomNumberGenerator()
        for (name, size) in files {
            var bytes = [UInt8](repeating: 0, count: size)
            var index = 0
            while index < size {
                var word = generator.next() as UInt64
                for _ in 0..<8 where index < size {
                    bytes[index] = UInt8(truncatingIfNeeded: word)
                    word >>= 8
                    index += 1
                }
            }
            let path = dir + "/" + name
            try Data(bytes).write(to: URL(fileURLWithPath: path))
            chmod(path, 0o644)
            sums[name] = try Semantics.sha256(path)
        }
        return sums
    }

    // MARK: servers

    /// pyftpdlib (anonymous, read-only, debug logging so every command and reply is in its log)
    /// in `node`'s namespace, bound to `bind`:`port`. `passiveRange` like "50000-50099".
    static func startPyftpdlib(_ lab: LabTopology, on node: LabTopology.Node, bind: String, port: Int,
                               root: String, passiveRange: String? = nil, name: String) throws -> BackgroundProcess {
        var argv = [LabTopology.python, "-u", "-m", pyftpdlibModule, "-p", String(port), "-d", root, "-i", bind, "-D"]
        if let passiveRange { argv += ["-r", passiveRange] }
        let server = try lab.spawn(node, argv, name: name)
        guard server.waitForOutput(containing: ">>> starting FTP server on \(bind):\(port)", timeout: 15) else {
            server.stop()
            throw IntegrationFailure("pyftpdlib did not start in \(lab.namespace(node)):\n\(server.output)")
        }
        return server
    }

    /// A vsftpd running in the foreground in `node`'s namespace and the log of every FTP
    /// command and reply it saw (`log_ftp_protocol`).
    struct Vsftpd {
        let process: BackgroundProcess
        let logPath: String
        var log: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }
        var lines: [String] { log.split(whereSeparator: \.isNewline).map(String.init) }
    }

    /// Either kind of server, for tests that run the same checks against both.
    enum AnyServer {
        case vsftpd(Vsftpd)
        case pyftpdlib(BackgroundProcess)
        var lines: [String] {
            switch self {
            case .vsftpd(let server): server.lines
            case .pyftpdlib(let server): server.lines
            }
        }
    }

    /// Anonymous read-only vsftpd on `bind`:`port`, serving `root`. `fromPort20`: active data
    /// connections leave from port 20 (connect_from_port_20). `passivePorts`: pasv_min/max_port.
    static func startVsftpd(_ lab: LabTopology, on node: LabTopology.Node, bind: String, port: Int, root: String,
                            fromPort20: Bool = true, passivePorts: ClosedRange<Int>? = nil, name: String) throws -> Vsftpd {
        try startVsftpd(workDir: lab.workDir, where: lab.namespace(node), bind: bind, port: port, root: root, fromPort20: fromPort20,
                        passivePorts: passivePorts, name: name, spawn: { try lab.spawn(node, $0, name: name) },
                        run: { try lab.run(node, $0, timeout: 5) })
    }

    /// The same in any lab: `spawn` starts a process in the server's namespace (`where`, for
    /// messages), `run` runs a command there.
    static func startVsftpd(workDir: String, where namespace: String, bind: String, port: Int, root: String, fromPort20: Bool = true,
                            passivePorts: ClosedRange<Int>? = nil, name: String, spawn: ([String]) throws -> BackgroundProcess,
                            run: ([String]) throws -> CommandResult) throws -> Vsftpd {
        let empty = workDir + "/\(name)-empty"
        try FileManager.default.createDirectory(atPath: empty, withIntermediateDirectories: true,
                                                attributes: [.posixPermissions: 0o755])
        let logPath = workDir + "/\(name)-protocol.log"
        var config = [
            "listen=YES", "listen_ipv6=NO", "listen_address=\(bind)", "listen_port=\(port)", "background=NO",
            "anonymous_enable=YES", "local_enable=NO", "write_enable=NO", "no_anon_password=YES",
            "anon_root=\(root)", "port_enable=YES", "pasv_enable=YES",
            "connect_from_port_20=\(fromPort20 ? "YES" : "NO")",
            "seccomp_sandbox=NO", "isolate=NO", "isolate_network=NO", "secure_chroot_dir=\(empty)",
            "log_ftp_protocol=YES", "xferlog_enable=YES", "xferlog_std_format=NO", "dual_log_enable=NO",
            "syslog_enable=NO", "vsftpd_log_file=\(logPath)", "use_localtime=NO",
        ]
        if let passivePorts { config += ["pasv_min_port=\(passivePorts.lowerBound)", "pasv_max_port=\(passivePorts.upperBound)"] }
        let configPath = workDir + "/\(name).conf"
        try (config.joined(separator: "\n") + "\n").write(toFile: configPath, atomically: true, encoding: .utf8)
        guard let vsftpd = Shell.which("vsftpd") else { throw IntegrationFailure("vsftpd not found (apt-get install -y vsftpd)") }
        let process = try spawn([vsftpd, configPath])
        let listening = try Semantics.waitUntil(timeout: 10) {
            guard process.isRunning else { return false }
            return try run(["ss", "-Hltn"]).stdout.contains("\(bind):\(port) ")
        }
        guard listening else {
            process.stop()
            throw IntegrationFailure("vsftpd did not listen on \(bind):\(port) in \(namespace) (status \(process.exitStatus.map(String.init) ?? "running")):\n\(process.output)")
        }
        return Vsftpd(process: process, logPath: logPath)
    }

    // MARK: clients

    /// lftp settings for active mode only (no fallback to passive), one try, a 20 s timeout,
    /// stop at the first failing command.
    static let lftpActiveOnly = """
        set ftp:passive-mode off
        set ftp:auto-passive-mode off
        set ftp:ssl-allow no
        set net:max-retries 1
        set net:timeout 20
        set cmd:fail-exit yes
        """

    /// `curl -v` in `node`'s namespace downloading `url` to `output`; `extra` selects the
    /// mode (`-P -`, `--disable-eprt`, `--disable-epsv`, …). The verbose trace (stderr) shows
    /// the commands curl sent (`> PORT …`) and the replies it read (`< 227 …`).
    static func curl(_ lab: LabTopology, from node: LabTopology.Node, _ url: String, to output: String,
                     _ extra: [String], maxTime: Int = 30) throws -> CommandResult {
        try? FileManager.default.removeItem(atPath: output)
        return try lab.run(node, ["curl", "-sS", "-v", "--max-time", String(maxTime), "-o", output] + extra + [url],
                           timeout: Double(maxTime) + 15)
    }

    // MARK: parsing

    /// The data endpoints a PORT or EPRT argument names: `PORT 203,0,113,1,184,235`
    /// → ("203.0.113.1", 47339); `EPRT |1|203.0.113.1|60601|` → ("203.0.113.1", 60601).
    /// Works on any log line that contains the command.
    static func activeEndpoints(_ lines: [String]) -> [(address: String, port: Int)] {
        var found: [(String, Int)] = []
        for line in lines {
            if let range = line.range(of: "PORT ") {
                let numbers = line[range.upperBound...].prefix { $0.isNumber || $0 == "," }.split(separator: ",").compactMap { Int($0) }
                if numbers.count == 6 {
                    found.append((numbers[0..<4].map(String.init).joined(separator: "."), numbers[4] * 256 + numbers[5]))
                }
            } else if let range = line.range(of: "EPRT |1|") {
                let fields = line[range.upperBound...].split(separator: "|", omittingEmptySubsequences: false)
                if fields.count >= 2, let port = Int(fields[1]) { found.append((String(fields[0]), port)) }
            }
        }
        return found
    }

    /// The endpoint in a 227 reply: `227 Entering passive mode (192,0,2,10,195,80).`
    static func passiveEndpoints(_ lines: [String]) -> [(address: String, port: Int)] {
        lines.compactMap { line in
            guard let code = line.range(of: "227 "), let open = line[code.upperBound...].firstIndex(of: "(") else { return nil }
            let numbers = line[line.index(after: open)...].prefix { $0.isNumber || $0 == "," }.split(separator: ",").compactMap { Int($0) }
            guard numbers.count == 6 else { return nil }
            return (numbers[0..<4].map(String.init).joined(separator: "."), numbers[4] * 256 + numbers[5])
        }
    }

    /// The port in a 229 reply: `229 Entering extended passive mode (|||50012|).`
    static func extendedPassivePorts(_ lines: [String]) -> [Int] {
        lines.compactMap { line in
            guard let code = line.range(of: "229 "), let open = line[code.upperBound...].range(of: "(|||") else { return nil }
            return Int(line[open.upperBound...].prefix { $0.isNumber })
        }
    }

    /// sha256 of a downloaded copy, or "missing" when the download left no file.
    static func downloadedSum(_ path: String) throws -> String {
        FileManager.default.fileExists(atPath: path) ? try Semantics.sha256(path) : "missing"
    }

    /// The FTP helper's counters after `count` active transfers: at least `count` rewrites,
    /// expectations made and expectations fulfilled (`context` starts each message).
    static func expectRewritesAndExpectations(_ stats: [String: Int], atLeast count: Int, _ context: String = "",
                                              sourceLocation: SourceLocation = #_sourceLocation) {
        for counter in ["helper_ftp_rewrites", "helper_ftp_expectations", "helper_expectations_fulfilled"] {
            #expect((stats[counter] ?? 0) >= count, "\(context)\(counter): \(helperStats(stats))", sourceLocation: sourceLocation)
        }
    }

    /// "name=value …" of the helper counters, for messages.
    static func helperStats(_ stats: [String: Int]) -> String {
        stats.filter { $0.key.hasPrefix("helper_") }.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
    }
}
