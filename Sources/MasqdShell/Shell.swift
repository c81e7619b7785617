import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// What a finished command left behind.
public struct CommandResult: Sendable {
    public let argv: [String]
    public let status: Int32
    public let stdout: String
    public let stderr: String
    public let timedOut: Bool
    public let seconds: Double

    public var succeeded: Bool { status == 0 && !timedOut }
    /// stdout then stderr, for messages and loose matching.
    public var output: String { stdout + stderr }
    /// Non-empty lines of stdout and stderr together.
    public var lines: [String] {
        output.split(whereSeparator: \.isNewline).map(String.init).filter { !$0.trimmingCharacters(in: .whitespaces).isEmpty }
    }

    public var summary: String {
        let how = timedOut ? "timed out after \(String(format: "%.1f", seconds)) s" : "exit status \(status)"
        let text = output.trimmingCharacters(in: .whitespacesAndNewlines)
        return "`\(argv.joined(separator: " "))` \(how)" + (text.isEmpty ? "" : ":\n\(text)")
    }
}

public struct ShellError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// Runs commands for the lab and the integration tests. Not a hot path: Foundation's Process is fine.
/// Output goes through files, not pipes, so a chatty child can never block on a full pipe.
public enum Shell {
    static let fallbackPath = ["/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"]

    /// The full path of an executable, searched in PATH and then the usual system directories.
    public static func which(_ name: String) -> String? {
        if name.contains("/") { return FileManager.default.isExecutableFile(atPath: name) ? name : nil }
        let path = (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":").map(String.init)
        for dir in path + fallbackPath where !dir.isEmpty {
            let candidate = dir + "/" + name
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }

    public static var isRoot: Bool { geteuid() == 0 }

    /// Runs `argv` to completion (or until `timeout` seconds, then kills it) and captures its output.
    @discardableResult
    public static func run(_ argv: [String], timeout: Double = 30) throws -> CommandResult {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("masqd-sh-\(getpid())-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let outURL = dir.appendingPathComponent("out"), errURL = dir.appendingPathComponent("err")
        let child = try launch(argv, stdout: outURL, stderr: errURL)
        let start = Date()
        let timedOut = !waitForExit(child, timeout: timeout)
        if timedOut { kill(child, grace: 1) }
        let status = timedOut ? -1 : child.exitStatus ?? -1
        return CommandResult(
            argv: argv, status: status,
            stdout: (try? String(contentsOf: outURL, encoding: .utf8)) ?? "",
            stderr: (try? String(contentsOf: errURL, encoding: .utf8)) ?? "",
            timedOut: timedOut, seconds: Date().timeIntervalSince(start))
    }

    /// Like `run`, but throws with the command's output unless it exits 0.
    @discardableResult
    public static func check(_ argv: [String], timeout: Double = 30) throws -> CommandResult {
        let result = try run(argv, timeout: timeout)
        guard result.succeeded else { throw ShellError("command failed: \(result.summary)") }
        return result
    }

    /// Starts `argv` with stdin from /dev/null and stdout/stderr appended to files.
    /// posix_spawn rather than Foundation's Process: the child must start with an empty signal
    /// mask and default handlers. A Process started from a Dispatch or test-runner thread
    /// inherits that thread's mask, which blocks SIGTERM and SIGINT, and the child then ignores
    /// the stop it is sent.
    static func launch(_ argv: [String], stdout: URL, stderr: URL) throws -> Child {
        guard let first = argv.first else { throw ShellError("empty command") }
        guard let exe = which(first) else { throw ShellError("command not found: \(first)") }

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, stdout.path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0o644)
        if stderr == stdout {
            posix_spawn_file_actions_adddup2(&actions, 1, 2)
        } else {
            posix_spawn_file_actions_addopen(&actions, 2, stderr.path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0o644)
        }

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var empty = sigset_t(), defaults = sigset_t()
        sigemptyset(&empty)
        sigemptyset(&defaults)
        for sig in [SIGHUP, SIGINT, SIGQUIT, SIGPIPE, SIGTERM, SIGUSR1, SIGUSR2, SIGCHLD] { sigaddset(&defaults, sig) }
        posix_spawnattr_setsigmask(&attributes, &empty)
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))

        var cArgs: [UnsafeMutablePointer<CChar>?] = argv.map { strdup($0) } + [nil]
        defer { cArgs.forEach { free($0) } }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, exe, &actions, &attributes, &cArgs, environ)
        guard rc == 0 else { throw ShellError("cannot start \(exe): \(String(cString: strerror(rc)))") }
        return Child(pid: pid)
    }

    /// True if the child ended within `timeout` seconds.
    static func waitForExit(_ child: Child, timeout: Double) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while child.isRunning {
            if Date() >= deadline { return false }
            usleep(5_000)
        }
        return true
    }

    /// SIGTERM, then SIGKILL if it is still there after `grace` seconds; waits for the end.
    static func kill(_ child: Child, grace: Double) {
        guard child.isRunning else { return }
        Glibc.kill(child.pid, SIGTERM)
        if !waitForExit(child, timeout: grace) {
            Glibc.kill(child.pid, SIGKILL)
            _ = waitForExit(child, timeout: 5)
        }
    }
}

/// A child process we started and reap ourselves.
final class Child: @unchecked Sendable {
    let pid: pid_t
    private let lock = NSLock()
    private var status: Int32?

    init(pid: pid_t) { self.pid = pid }

    var isRunning: Bool { exitStatus == nil }

    /// Exit code, or 128+N after signal N; nil while it runs.
    var exitStatus: Int32? {
        lock.withLock {
            if status == nil {
                var raw: Int32 = 0
                if waitpid(pid, &raw, WNOHANG) == pid {
                    let signal = raw & 0x7f
                    status = signal == 0 ? (raw >> 8) & 0xff : 128 + signal
                }
            }
            return status
        }
    }
}

/// A process left running in the background (a server, a sniffer, the engine), with its
/// stdout and stderr collected in one log file.
public final class BackgroundProcess: @unchecked Sendable {
    public let name: String
    public let argv: [String]
    public let logPath: String
    private let process: Child

    public init(name: String, argv: [String], logPath: String) throws {
        self.name = name
        self.argv = argv
        self.logPath = logPath
        let url = URL(fileURLWithPath: logPath)
        process = try Shell.launch(argv, stdout: url, stderr: url)
    }

    public var pid: Int32 { process.pid }
    public var isRunning: Bool { process.isRunning }
    /// The exit status once it has ended (128+N for signal N), nil while it runs.
    public var exitStatus: Int32? { process.exitStatus }

    /// Everything it has written so far.
    public var output: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }
    public var lines: [String] { output.split(whereSeparator: \.isNewline).map(String.init) }

    /// Waits until a line of its output contains `text`; false on timeout or if it ended first.
    @discardableResult
    public func waitForOutput(containing text: String, timeout: Double = 10) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if output.contains(text) { return true }
            if !process.isRunning { return output.contains(text) }
            usleep(10_000)
        }
        return false
    }

    /// Waits for it to end by itself; its exit status, or nil if it is still running after `timeout`.
    public func waitForExit(timeout: Double) -> Int32? {
        Shell.waitForExit(process, timeout: timeout) ? process.exitStatus : nil
    }

    /// Ends it: SIGTERM, then SIGKILL after `grace` seconds. Returns its exit status.
    @discardableResult
    public func stop(grace: Double = 3) -> Int32 {
        Shell.kill(process, grace: grace)
        return process.exitStatus ?? -1
    }
}
