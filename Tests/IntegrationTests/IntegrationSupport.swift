import Foundation
import Masqd
import MasqdLab
import MasqdShell
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// A failed precondition or check, with the message the test shows.
struct IntegrationFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

enum Integration {
    /// The masqd binary under test: $MASQD_EXECUTABLE, else `masqd` in the build products
    /// directory, which is where the test bundle itself lives.
    static func masqdExecutable() throws -> String {
        try requireEnvironment()
        let masqd = try locatedMasqd()
        if !modeOptions.isEmpty { try fastPathObjectBuilt.get() }
        return masqd
    }

    /// The fast-path run mode (`MASQD_TEST_FAST_PATH=1`): every engine the shared topologies
    /// start gets `--fast-path`, so the suites run with established flows in the kernel.
    static let modeOptions: [String] = ProcessInfo.processInfo.environment["MASQD_TEST_FAST_PATH"] == "1" ? ["--fast-path"] : []

    /// Builds the BPF object next to the masqd binary under test (where --fast-path looks).
    static func buildFastPathObject(_ masqd: String) throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
        try Shell.check([root + "/Deploy/build-bpf.sh", URL(fileURLWithPath: masqd).resolvingSymlinksInPath().deletingLastPathComponent().path])
    }

    /// Built once per test process in the fast-path run mode (the tests run in parallel).
    private static let fastPathObjectBuilt: Result<Void, IntegrationFailure> = Result {
        try buildFastPathObject(try locatedMasqd())
    }.mapError { IntegrationFailure("MASQD_TEST_FAST_PATH=1: could not build the BPF object: \($0)") }

    private static func locatedMasqd() throws -> String {
        if let path = ProcessInfo.processInfo.environment["MASQD_EXECUTABLE"], !path.isEmpty {
            guard FileManager.default.isExecutableFile(atPath: path) else {
                throw IntegrationFailure("MASQD_EXECUTABLE=\(path) is not an executable file")
            }
            return path
        }
        let me = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        let products = URL(fileURLWithPath: me).deletingLastPathComponent().path
        let candidate = products + "/masqd"
        guard FileManager.default.isExecutableFile(atPath: candidate) else {
            throw IntegrationFailure("masqd binary not found at \(candidate) (next to the test bundle \(me)); build it with `swift build` or set MASQD_EXECUTABLE")
        }
        return candidate
    }

    /// The integration tests need root, iproute2, iptables, python3 and curl. CI runs as root:
    /// a missing piece is a failure with a clear message, never a silent skip.
    static func requireEnvironment(_ firewall: FirewallChoice? = nil) throws {
        guard Shell.isRoot else {
            throw IntegrationFailure("integration tests must run as root (they create network namespaces and iptables rules); run `sudo swift test --filter IntegrationTests`")
        }
        var missing: [String] = []
        if Shell.which("ip") == nil { missing.append("ip (apt-get install -y iproute2)") }
        if Shell.which("iptables") == nil || Shell.which("iptables-save") == nil { missing.append("iptables (apt-get install -y iptables)") }
        if !FileManager.default.isExecutableFile(atPath: LabTopology.python) { missing.append("\(LabTopology.python) (apt-get install -y python3)") }
        if Shell.which("curl") == nil { missing.append("curl (apt-get install -y curl)") }
        if firewall == .nft, Shell.which("nft") == nil { missing.append("nft (apt-get install -y nftables)") }
        guard missing.isEmpty else { throw IntegrationFailure("integration tests need: " + missing.joined(separator: ", ")) }
    }

    /// Namespace prefix unique to this test run and test: "mq" + pid + a letter.
    static func prefix(_ tag: String) -> String { "mq\(getpid() % 100_000)\(tag)" }

    /// An NFQUEUE number unique to this test run and test (concurrent runs use different pids).
    static func queue(_ index: Int) -> Int { 1000 + Int(getpid() % 3000) * 16 + index }

    /// Builds a topology (with the far host if asked), runs `body` with it and always tears it
    /// down: the one way the tests make their namespaces.
    static func withTopology<T>(_ tag: String, farHost: Bool = false, farLinkMTU: Int = 1500, firewall: FirewallChoice? = nil,
                                _ body: (LabTopology) throws -> T) throws -> T {
        try requireEnvironment(firewall)
        let topology = try LabTopology(prefix: prefix(tag), farHost: farHost, farLinkMTU: farLinkMTU, firewall: firewall, modeOptions: modeOptions)
        defer { topology.destroy() }
        try topology.create()
        return try body(topology)
    }

    /// The one engine driver of these tests: a topology (with the far host if asked) with
    /// `rules install` and `masqd run` both given `options` (one command line describes one
    /// deployment); checks at the end that the engine is still alive (a crash mid-test is a
    /// failure) and that it stops on SIGTERM. `executable`: another build of masqd (the
    /// external helper example's); `scapy`: the test sends crafted packets with scapy.
    static func withEngine<T>(
        executable: String? = nil, scapy: Bool = false, _ tag: String, queue: Int, options: [String] = [],
        farHost: Bool = false, farLinkMTU: Int = 1500, firewall: FirewallChoice? = nil,
        _ body: (LabTopology, String, BackgroundProcess) throws -> T
    ) throws -> T {
        try requireEnvironment(firewall)
        if scapy { try requireScapy() }
        let masqd = try executable ?? masqdExecutable()
        return try withTopology(tag, farHost: farHost, farLinkMTU: farLinkMTU, firewall: firewall) { lab in
            let install = try lab.masqd(masqd, ["rules", "install"] + lab.engineOptions(queue: queue) + options)
            guard install.succeeded else { throw IntegrationFailure("rules install failed: \(install.summary)") }
            let engine = try lab.startEngine(masqd: masqd, queue: queue, extra: options)
            let result = try body(lab, masqd, engine)
            let name = URL(fileURLWithPath: masqd).lastPathComponent
            #expect(engine.isRunning, "\(name) run died during the test (status \(engine.exitStatus ?? -1)):\n\(engine.output)")
            let started = Date()
            engine.stop(grace: 5)
            #expect(Date().timeIntervalSince(started) < 4.5, "\(name) run took more than 4.5 s to stop on SIGTERM")
            return result
        }
    }

    /// `masqd run ARGUMENTS` in the router namespace (its output kept as `name`), returned once
    /// `masqd stats` answers on the lab's control socket; throws if it exits first or does not
    /// answer within `timeout` seconds. For tests that start the engine their own way (a
    /// config file, several queues); the rest use `withEngine`.
    static func startRun(_ lab: LabTopology, _ masqd: String, _ arguments: [String], name: String = "masqd",
                         timeout: Double = 10) throws -> BackgroundProcess {
        try FileManager.default.createDirectory(atPath: "/run/masqd", withIntermediateDirectories: true)
        let engine = try lab.spawn(.router, [masqd, "run"] + arguments, name: name)
        let ready = try Semantics.waitUntil(timeout: timeout) {
            guard engine.isRunning else {
                throw IntegrationFailure("\(name) exited with status \(engine.exitStatus ?? -1) before it answered `masqd stats`:\n\(engine.output)")
            }
            return (try? lab.masqd(masqd, ["stats", "--control", lab.controlPath], timeout: 5))?.succeeded == true
        }
        guard ready else {
            engine.stop()
            throw IntegrationFailure("\(name) did not answer `masqd stats` on \(lab.controlPath) within \(Int(timeout)) s:\n\(engine.output)")
        }
        return engine
    }

    /// `withEngine` for a body that does not need the engine's process.
    static func withEngine<T>(
        _ tag: String, queue: Int, options: [String] = [], farHost: Bool = false, farLinkMTU: Int = 1500,
        firewall: FirewallChoice? = nil, _ body: (LabTopology, String) throws -> T
    ) throws -> T {
        try withEngine(tag, queue: queue, options: options, farHost: farHost, farLinkMTU: farLinkMTU, firewall: firewall) { lab, masqd, _ in
            try body(lab, masqd)
        }
    }

    /// scapy for LabTopology's python (Deploy/install-deps.sh --tests installs it).
    static func requireScapy() throws {
        guard FileManager.default.isExecutableFile(atPath: LabTopology.python),
              (try? Shell.run([LabTopology.python, "-c", "import scapy.all"], timeout: 60))?.succeeded == true
        else { throw IntegrationFailure("these tests need scapy for \(LabTopology.python) (Deploy/install-deps.sh --tests)") }
    }

    /// The backends the traffic tests run on (`--firewall`): iptables, and nft where the kernel
    /// has nft's queue statement (CONFIG_NFT_QUEUE, off on some kernels: FirewallBackendTests
    /// checks that the nft backend then fails cleanly and is not the default).
    static let firewalls: [FirewallChoice] = [.iptables] + (nftQueueAvailable ? [.nft] : [])

    static let nftQueueAvailable: Bool = Shell.which("nft").map { FirewallChoice.kernelHasNftQueue(nft: $0) } ?? false

    /// A tag and a queue of their own for a test's run on one backend (namespaces and queues
    /// of the two runs of a test never meet).
    static func tag(_ tag: String, _ firewall: FirewallChoice) -> String { firewall == .nft ? tag + "n" : tag }
    static func queue(_ index: Int, _ firewall: FirewallChoice) -> Int { queue(index) + (firewall == .nft ? 100 : 0) }

    /// `nft list table ip NAME` in the router without counters; nil when there is no such table.
    static func nftTable(_ lab: LabTopology, _ name: String) throws -> String? {
        let listed = try lab.run(.router, ["nft", "list", "table", "ip", name])
        guard listed.succeeded else { return nil }
        return listed.stdout.replacingOccurrences(of: #"counter packets \d+ bytes \d+"#, with: "counter", options: .regularExpression)
    }

    /// iptables-save of the router namespace without the volatile parts (comments with dates, counters).
    static func iptablesSave(_ lab: LabTopology) throws -> String {
        let saved = try lab.check(.router, ["iptables-save"]).stdout
        return saved.split(separator: "\n").filter { !$0.hasPrefix("#") }
            .map { $0.replacingOccurrences(of: #"\[\d+:\d+\]"#, with: "[-]", options: .regularExpression) }
            .joined(separator: "\n")
    }
}

/// One line a sniffer printed: `in udp 203.0.113.1:40000 -> 203.0.113.2:9999`,
/// `in icmp 203.0.113.1 -> 203.0.113.2 echo-request id=7 seq=1`.
struct SniffedPacket {
    let incoming: Bool
    let proto: String
    let source: String      // address only
    let sourcePort: Int?
    let destination: String
    let icmpKind: String?
    let icmpID: Int?

    init?(_ line: String) {
        let f = line.split(separator: " ").map(String.init)
        guard f.count >= 5, f[0] == "in" || f[0] == "out", f[3] == "->" else { return nil }
        incoming = f[0] == "in"
        proto = f[1]
        let src = f[2].split(separator: ":")
        source = String(src[0])
        sourcePort = src.count > 1 ? Int(src[1]) : nil
        destination = String(f[4].split(separator: ":")[0])
        icmpKind = f.count > 5 ? f[5] : nil
        icmpID = f.first(where: { $0.hasPrefix("id=") }).flatMap { Int($0.dropFirst(3)) }
    }

    static func parse(_ lines: [String]) -> [SniffedPacket] { lines.compactMap(SniffedPacket.init) }
}

extension String {
    var isLAN: Bool { hasPrefix("192.0.2.") }
}

extension Trait where Self == TimeLimitTrait {
    /// The one time limit of the integration suites. It is there to end a hang, not to judge
    /// speed: test bodies are synchronous and hold one of the cooperative pool's threads (two
    /// on a two-core machine), and a test's clock starts when it is scheduled, so in the full
    /// parallel run a quick test can wait minutes for a thread before its first line runs.
    static var integrationLimit: Self { .timeLimit(.minutes(10)) }
}
