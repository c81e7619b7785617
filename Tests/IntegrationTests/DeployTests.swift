import Foundation
import Masqd
import MasqdShell
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The files in Deploy/: the systemd unit is accepted by `systemd-analyze verify` and keeps
/// its promises (fail-closed, one capability, the one writable sysctl is the one the rules
/// installer writes); the shell scripts parse and install/uninstall a staging tree; the
/// sysctl file applies cleanly in a fresh network namespace and the values read back.
@Suite(.integrationLimit)
struct DeployTests {
    /// The repository root: this file is Tests/IntegrationTests/DeployTests.swift.
    static let root = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
    static let deploy = root + "/Deploy"
    static let installedBinary = "/usr/local/sbin/masqd"

    static func read(_ name: String) throws -> String {
        try String(contentsOfFile: deploy + "/" + name, encoding: .utf8)
    }

    /// A fresh directory under /tmp, removed by the caller.
    static func temporaryDirectory(_ tag: String) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("masqd-deploy-\(tag)-\(getpid())-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    /// `KEY=VALUE` lines of a unit file's [Service]/[Unit] sections, comments left out.
    static func directives(_ unit: String, _ key: String) -> [String] {
        unit.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { !$0.hasPrefix("#") && $0.hasPrefix(key + "=") }
            .map { String($0.dropFirst(key.count + 1)) }
    }

    @Test("systemd-analyze verify accepts masqd.service (pointed at the built binary) without a word about it")
    func unitVerifies() throws {
        guard let analyze = Shell.which("systemd-analyze") else {
            throw IntegrationFailure("systemd-analyze not found (apt-get install -y systemd)")
        }
        let masqd = try Integration.masqdExecutable()
        let unit = try Self.read("masqd.service")
        #expect(unit.contains(Self.installedBinary))
        // verify checks that ExecStart= binaries exist: use the built one in a copy.
        let dir = try Self.temporaryDirectory("unit")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let copy = dir + "/masqd.service"
        try unit.replacingOccurrences(of: Self.installedBinary, with: masqd).write(toFile: copy, atomically: true, encoding: .utf8)

        let result = try Shell.run([analyze, "verify", "--man=no", copy], timeout: 60)
        #expect(result.succeeded, "\(result.summary)")
        let aboutUs = result.lines.filter { $0.contains("masqd") || $0.contains(dir) }
        #expect(aboutUs.isEmpty, "systemd-analyze verify complained about the unit:\n\(aboutUs.joined(separator: "\n"))")
    }

    @Test("masqd.service runs rules install, turns forwarding on, then run from /etc/masqd/masqd.yaml, fails closed, and keeps to CAP_NET_ADMIN")
    func unitPromises() throws {
        let unit = try Self.read("masqd.service")
        let config = "--config /etc/masqd/masqd.yaml"
        #expect(Self.directives(unit, "Type") == ["simple"])
        // Rules first, then forwarding: the router never forwards without them.
        #expect(Self.directives(unit, "ExecStartPre") == [
            "\(Self.installedBinary) rules install \(config)", "/bin/sh -c 'echo 1 >/proc/sys/net/ipv4/ip_forward'"])
        #expect(Self.directives(unit, "ExecStart") == ["\(Self.installedBinary) run \(config)"])
        // Fail-closed: nothing takes the rules out when the engine stops (the alternative is
        // a commented line).
        #expect(Self.directives(unit, "ExecStopPost").isEmpty)
        #expect(unit.contains("#ExecStopPost=\(Self.installedBinary) rules remove \(config)"))
        #expect(Self.directives(unit, "Restart") == ["on-failure"])
        #expect(Self.directives(unit, "CapabilityBoundingSet") == ["CAP_NET_ADMIN"])
        #expect(Self.directives(unit, "NoNewPrivileges") == ["yes"])
        #expect(Self.directives(unit, "ProtectSystem") == ["strict"])
        #expect(Self.directives(unit, "RuntimeDirectory") == ["masqd"])
        #expect(EngineSettings.defaultControlPath(queue: 0).hasPrefix("/run/masqd/"), "the control socket must live in the RuntimeDirectory")
        // /proc/sys is read-only except the file `rules install` writes for hairpinning and
        // forwarding, which the unit turns on.
        #expect(Self.directives(unit, "ProtectKernelTunables") == ["yes"])
        #expect(Self.directives(unit, "ReadWritePaths") == ["\(SteeringRules.acceptLocalPath) /proc/sys/net/ipv4/ip_forward"])
        #expect(Self.directives(unit, "RestrictAddressFamilies") == ["AF_NETLINK AF_UNIX AF_INET"])
    }

    @Test("install.sh, uninstall.sh, package-deb.sh and the package's maintainer scripts parse")
    func scriptsParse() throws {
        let scripts = [("install.sh", "bash"), ("uninstall.sh", "bash"), ("package-deb.sh", "bash"),
                       ("debian/postinst", "sh"), ("debian/prerm", "sh"), ("debian/postrm", "sh")]
        for (script, shell) in scripts {
            let path = Self.deploy + "/" + script
            #expect(FileManager.default.isExecutableFile(atPath: path), "\(script) is not executable")
            let result = try Shell.run([shell, "-n", path])
            #expect(result.succeeded && result.output.isEmpty, "\(result.summary)")
        }
    }

    @Test("install.sh stages every file and keeps an edited config; uninstall.sh takes them out again, the config only with --purge")
    func installAndUninstallStaging() throws {
        let masqd = try Integration.masqdExecutable()
        let stage = try Self.temporaryDirectory("stage")
        defer { try? FileManager.default.removeItem(atPath: stage) }
        let fm = FileManager.default
        func env(_ argv: [String]) -> [String] { ["env", "DESTDIR=\(stage)", "MASQD_BINARY=\(masqd)"] + argv }
        let installed = [
            "/usr/local/sbin/masqd": "0755", "/etc/systemd/system/masqd.service": "0644",
            "/etc/sysctl.d/99-masqd.conf": "0644", "/etc/masqd/masqd.yaml": "0644",
            "/usr/local/share/doc/masqd/README.md": "0644",
        ]
        func mode(_ path: String) -> String? {
            (try? fm.attributesOfItem(atPath: path)[.posixPermissions] as? Int).map { String($0, radix: 8).leftPadded(4) }
        }

        let first = try Shell.run(env(["bash", Self.deploy + "/install.sh"]), timeout: 60)
        try #require(first.succeeded, "\(first.summary)")
        for (path, expected) in installed {
            #expect(mode(stage + path) == expected, "\(path): mode \(mode(stage + path) ?? "missing"), expected \(expected)")
        }
        #expect(fm.contentsEqual(atPath: stage + "/etc/systemd/system/masqd.service", andPath: Self.deploy + "/masqd.service"))
        #expect(fm.contentsEqual(atPath: stage + "/etc/masqd/masqd.yaml", andPath: Self.deploy + "/masqd.yaml"))

        // An operator's edits survive a second install (an upgrade).
        let edited = "wan: wan0\nlan: 10.1.0.0/16\n"
        try edited.write(toFile: stage + "/etc/masqd/masqd.yaml", atomically: true, encoding: .utf8)
        let second = try Shell.run(env(["bash", Self.deploy + "/install.sh"]), timeout: 60)
        try #require(second.succeeded, "\(second.summary)")
        #expect(try String(contentsOfFile: stage + "/etc/masqd/masqd.yaml", encoding: .utf8) == edited)
        #expect(second.stdout.contains("kept"), "\(second.summary)")

        let uninstall = try Shell.run(env(["bash", Self.deploy + "/uninstall.sh"]), timeout: 60)
        try #require(uninstall.succeeded, "\(uninstall.summary)")
        for path in installed.keys where path != "/etc/masqd/masqd.yaml" {
            #expect(!fm.fileExists(atPath: stage + path), "\(path) still there after uninstall.sh")
        }
        #expect(fm.fileExists(atPath: stage + "/etc/masqd/masqd.yaml"), "uninstall.sh without --purge must keep the config")
        // The state directory (systemd's StateDirectory=) is kept too, and goes with --purge.
        try fm.createDirectory(atPath: stage + "/var/lib/masqd", withIntermediateDirectories: true)
        try "state".write(toFile: stage + "/var/lib/masqd/masqd.state", atomically: true, encoding: .utf8)
        let again = try Shell.run(env(["bash", Self.deploy + "/uninstall.sh"]), timeout: 60)
        try #require(again.succeeded, "\(again.summary)")
        #expect(fm.fileExists(atPath: stage + "/var/lib/masqd/masqd.state"), "uninstall.sh without --purge must keep the saved state")
        let purge = try Shell.run(env(["bash", Self.deploy + "/uninstall.sh", "--purge"]), timeout: 60)
        try #require(purge.succeeded, "\(purge.summary)")
        #expect(!fm.fileExists(atPath: stage + "/etc/masqd"), "--purge must remove /etc/masqd")
        #expect(!fm.fileExists(atPath: stage + "/var/lib/masqd"), "--purge must remove /var/lib/masqd")

        let bad = try Shell.run(["env", "DESTDIR=\(stage)", "MASQD_BINARY=\(stage)/nothing", "bash", Self.deploy + "/install.sh"])
        #expect(!bad.succeeded && bad.stderr.contains("swift build -c release"), "\(bad.summary)")
    }

    @Test("99-masqd.conf applies with sysctl -p in a fresh network namespace and reads back; its commented alternatives are valid too")
    func sysctlFileApplies() throws {
        try Integration.requireEnvironment()
        let text = try Self.read("99-masqd.conf")
        func settings(_ lines: [Substring]) -> [(String, String)] {
            lines.compactMap { line in
                let parts = line.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
                return parts.count == 2 && !parts[0].isEmpty ? (parts[0], parts[1]) : nil
            }
        }
        let lines = text.split(separator: "\n")
        let active = settings(lines.filter { !$0.hasPrefix("#") && !$0.trimmingCharacters(in: .whitespaces).isEmpty })
        // Nothing is switched on unconditionally, forwarding least of all (masqd.service turns
        // it on after its rules); the rest is explained and commented.
        #expect(active.isEmpty, "99-masqd.conf sets \(active)")
        #expect(!text.split(separator: "\n").contains { $0.hasPrefix("net.ipv4.ip_forward") })
        let commented = settings(lines.filter { $0.hasPrefix("#net.") }.map { $0.dropFirst() })
        #expect(Set(commented.map(\.0)) == ["net.ipv4.conf.all.accept_local", "net.ipv4.conf.all.rp_filter"])

        let namespace = Integration.prefix("dp")
        try Shell.check(["ip", "netns", "add", namespace])
        defer { _ = try? Shell.run(["ip", "netns", "del", namespace]) }
        let dir = try Self.temporaryDirectory("sysctl")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let uncommented = dir + "/all.conf"
        try (commented.map { "\($0.0) = \($0.1)" }.joined(separator: "\n") + "\n").write(toFile: uncommented, atomically: true, encoding: .utf8)

        for (file, expected) in [(Self.deploy + "/99-masqd.conf", active), (uncommented, commented)] {
            let apply = try Shell.run(["ip", "netns", "exec", namespace, "sysctl", "-p", file])
            #expect(apply.succeeded && apply.stderr.isEmpty, "\(apply.summary)")
            for (key, value) in expected {
                let read = try Shell.run(["ip", "netns", "exec", namespace, "sysctl", "-n", key])
                #expect(read.succeeded && read.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == value,
                        "\(key) reads \(read.output.trimmingCharacters(in: .whitespacesAndNewlines)) after sysctl -p \(file), expected \(value)")
            }
        }
    }
}

private extension String {
    func leftPadded(_ width: Int) -> String { count >= width ? self : String(repeating: "0", count: width - count) + self }
}
