import Foundation
import Masqd
import MasqdLab
import MasqdShell
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The TFTP helper end to end (issue #13): tftp-hpa's client on a LAN host, tftpd-hpa's
/// server outside, default address-and-port-dependent filtering. The server answers from a
/// new port, so a get and a put work only with the helper; the same runs without it fail.
/// Real namespaces, real iptables, the real masqd binary; tag mq<pid>tf?, queues 64-65.
@Suite(.integrationLimit)
struct TFTPTests: LabAddresses {
    static func requireTools() throws {
        for tool in ["tftp", "in.tftpd"] where Shell.which(tool) == nil && !FileManager.default.fileExists(atPath: "/usr/sbin/\(tool)") {
            throw IntegrationFailure("\(tool) not found (apt-get install -y tftp-hpa tftpd-hpa)")
        }
    }

    /// tftpd-hpa in the foreground on server:69, serving (and accepting new files into) `root`.
    static func startServer(_ lab: LabTopology, root: String, address: String) throws -> BackgroundProcess {
        let daemon = Shell.which("in.tftpd") ?? "/usr/sbin/in.tftpd"
        // -L foreground, -s chroot into root, -c allow new files, -u root (the lab dir is
        // root's), -p no extra permission checks. What arrived is read from the files.
        let process = try lab.spawn(.server, [daemon, "-L", "-a", "\(address):69", "-s", "-c", "-u", "root", "-p", root], name: "tftpd")
        let listening = try Semantics.waitUntil(timeout: 10) {
            guard process.isRunning else { return false }
            return try lab.run(.server, ["ss", "-Hlun"], timeout: 5).stdout.contains("\(address):69 ")
        }
        guard listening else {
            _ = process.stop()
            throw IntegrationFailure("in.tftpd did not listen on \(address):69 (status \(process.exitStatus.map(String.init) ?? "running")):\n\(process.output)")
        }
        return process
    }

    /// tftp-hpa's client on host1: one command (get or put), binary mode, 2 s per try, 6 s in all.
    static func client(_ lab: LabTopology, _ server: String, _ command: String) throws -> CommandResult {
        let script = "mode octet\nrexmt 2\ntimeout 6\n\(command)\nquit\n"
        return try lab.run(.host1, ["sh", "-c", "cd \(lab.workDir) && printf '\(script.replacingOccurrences(of: "\n", with: "\\n"))' | tftp -v \(server)"],
                           timeout: 30)
    }

    @Test("TFTP get and put from h1 to a server outside work with the tftp helper, and fail without it",
          arguments: [true, false])
    func getAndPut(helper: Bool) throws {
        try Self.requireTools()
        let options = helper ? ["--helpers", "tftp"] : ["--helpers", "none"]
        try Integration.withEngine(helper ? "tfa" : "tfb", queue: Integration.queue(helper ? 64 : 65), options: options) { lab, masqd in
            let root = lab.workDir + "/tftp"
            try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
            let served = root + "/boot.img"
            try Shell.check(["dd", "if=/dev/urandom", "of=\(served)", "bs=1k", "count=300", "status=none"])
            let upload = lab.workDir + "/upload.img"
            try Shell.check(["dd", "if=/dev/urandom", "of=\(upload)", "bs=1k", "count=200", "status=none"])
            let tftpd = try Self.startServer(lab, root: root, address: server)
            defer { _ = tftpd.stop() }

            let get = try Self.client(lab, server, "get boot.img got.img")
            let got = lab.workDir + "/got.img"
            let gotSum = FileManager.default.fileExists(atPath: got) ? try Semantics.sha256(got) : "missing"
            let put = try Self.client(lab, server, "put upload.img stored.img")
            let stored = root + "/stored.img"
            let storedSum = FileManager.default.fileExists(atPath: stored) ? try Semantics.sha256(stored) : "missing"
            let stats = try Semantics.stats(lab, masqd)

            if helper {
                #expect(gotSum == (try Semantics.sha256(served)), "get: \(get.summary)")
                #expect(get.stdout.contains("Received 307200 bytes"), "get: \(get.output)")
                #expect(storedSum == (try Semantics.sha256(upload)), "put: \(put.summary)")
                #expect(put.stdout.contains("Sent 204800 bytes"), "put: \(put.output)")
                #expect(stats["helper_tftp_expectations"] == 2 && stats["helper_expectations_fulfilled"] == 2,
                        "expected 2 expectations, both fulfilled: \(stats.filter { $0.key.hasPrefix("helper") })")
            } else {
                // The server's first answer (from its new port) is refused: nothing arrives.
                #expect(gotSum == "missing" || (try? Data(contentsOf: URL(fileURLWithPath: got)).count) == 0, "get worked without the helper: \(get.output)")
                #expect(storedSum == "missing" || (try? Data(contentsOf: URL(fileURLWithPath: stored)).count) == 0,
                        "put worked without the helper: \(put.output)")
                #expect(get.stdout.contains("timed out") || get.stderr.contains("timed out"), "get: \(get.output)")
                #expect((stats["inbound_unmatched"] ?? 0) > 0, "the server's answers were not refused: \(stats)")
                #expect(stats["helper_expectations_fulfilled"] == 0)
            }
        }
    }
}
