import ArgumentParser
import Glibc
import Logging
import Masqd
import MasqdLab

// The masqd command tree: argument parsing only. Everything it runs lives in the Masqd module;
// `MasqdMain.main(helpers:)` is how an executable starts it. Errors end the command with one
// line on stderr and a non-zero status (../shared/INTERFACE.md), never a usage dump.

struct MasqdCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "masqd",
        abstract: "A user-space NAT (IP masquerading) engine for Linux routers, fed by NFQUEUE.",
        version: MasqdVersion.string,
        subcommands: [Run.self, Rules.self, Flows.self, Stats.self, LabCommand.self, Replay.self, Role.self, OriginalDestination.self])

    static func main() {
        do {
            var command = try parseAsRoot()
            try command.run()
        } catch let error as MasqdError {
            fail(error.description)
        } catch let code as ExitCode {
            Glibc.exit(code.rawValue)
        } catch {
            let code = exitCode(for: error)
            if code == .success {
                print(fullMessage(for: error))
                Glibc.exit(0)
            }
            let message = message(for: error).split(separator: "\n").first.map(String.init) ?? "\(error)"
            fail(message.hasPrefix("Error: ") ? String(message.dropFirst(7)) : message, status: code.rawValue)
        }
    }

    static func fail(_ message: String, status: Int32 = 1) -> Never {
        var stderr = StandardError()
        print("masqd: \(message)", to: &stderr)
        Glibc.exit(status == 0 ? 1 : status)
    }
}

struct StandardError: TextOutputStream {
    mutating func write(_ string: String) {
        var bytes = Array(string.utf8)
        _ = bytes.withUnsafeMutableBytes { Glibc.write(2, $0.baseAddress, $0.count) }
    }
}

struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run the engine in the foreground until SIGINT/SIGTERM.")
    @OptionGroup var options: EngineOptions

    func run() throws {
        let settings = try options.settings()
        JournalLogHandler.bootstrapLogging() // journal lines under systemd, timestamped lines elsewhere
        let engine = try Engine(settings: settings, logger: Logger(label: "masqd"))
        engine.enableReload(options: options) // SIGHUP reads the same command line and --config file again
        try engine.run()
    }
}

struct Rules: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Install, remove or print the rules (iptables or nft, --firewall) that steer traffic into the queue.",
        subcommands: [Install.self, Remove.self, Print.self])

    struct Install: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Add the rules (idempotent).")
        @OptionGroup var options: EngineOptions
        func run() throws {
            if let note = try SteeringRules.install(options.settings()) { print("masqd: \(note)") }
        }
    }

    struct Remove: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Remove exactly our rules (idempotent).")
        @OptionGroup var options: EngineOptions
        func run() throws { try SteeringRules.remove(options.settings()) }
    }

    struct Print: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print the rules as shell commands; change nothing.")
        @OptionGroup var options: EngineOptions
        func run() throws {
            for line in SteeringRules.printed(try options.settings()) { print(line) }
        }
    }
}

struct ControlOptions: ParsableArguments {
    @Option(name: .long, help: "Control socket of the engine.")
    var control: String = "/run/masqd/queue-0.sock"
    @Option(name: .long, help: "Queue number whose default control socket to use (when --control is not given).")
    var queue: UInt16?

    var path: String {
        if let queue, control == "/run/masqd/queue-0.sock" { return "/run/masqd/queue-\(queue).sock" }
        return control
    }
}

struct Flows: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List live translations, one per line (filters: tcp, udp, icmp, other, an address).")
    @OptionGroup var control: ControlOptions
    @Argument(help: "Filters: tcp, udp, icmp, other (protocols without ports) or an IPv4 address.") var filters: [String] = []

    func run() throws {
        print(try ControlClient.request((["flows"] + filters).joined(separator: " "), path: control.path), terminator: "")
    }
}

struct Stats: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print the engine's counters as `name value` lines.")
    @OptionGroup var control: ControlOptions

    func run() throws {
        print(try ControlClient.request("stats", path: control.path), terminator: "")
    }
}

struct Role: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Set the HA role of a running engine: active (translate, with the peer's replicated state) or standby (keepalived's notify scripts call it).")
    @OptionGroup var control: ControlOptions
    @Argument(help: "active or standby.") var role: String

    func run() throws {
        guard role == "active" || role == "standby" else { throw MasqdError.option("role", role, "expected active or standby") }
        let answer = try ControlClient.request("role \(role)", path: control.path)
        guard !answer.hasPrefix("error:"), !answer.isEmpty else {
            throw MasqdError(answer.isEmpty ? "role: the engine closed the connection" : String(answer.dropFirst(7).prefix { $0 != "\n" }))
        }
        print(answer, terminator: "")
    }
}

struct OriginalDestination: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "original-destination",
        abstract: "Where a client redirected to a local proxy (--redirect) was going: prints ADDR:PORT.")
    @OptionGroup var control: ControlOptions
    @Argument(help: "The client's ADDR:PORT, as the proxy sees its peer.") var client: String

    func run() throws {
        let answer = try ControlClient.request("original-destination \(client)", path: control.path)
        if answer.hasPrefix("error: ") { throw MasqdError(String(answer.dropFirst(7).prefix { $0 != "\n" })) }
        print(answer, terminator: "")
    }
}

struct LabCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lab",
        abstract: "Build a demo network in namespaces, run the engine in it, show traffic crossing it.")

    func run() throws {
        let executable = (try? String(decoding: readLink("/proc/self/exe"), as: UTF8.self)) ?? CommandLine.arguments[0]
        throw ExitCode(try Lab.run(masqdExecutable: executable))
    }

    func readLink(_ path: String) throws -> [UInt8] {
        var buffer = [UInt8](repeating: 0, count: 4096)
        let n = readlink(path, &buffer, buffer.count)
        guard n > 0 else { throw MasqdError("cannot resolve \(path)") }
        return Array(buffer[0..<n])
    }
}
