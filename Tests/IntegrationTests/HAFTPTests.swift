@testable import Masqd
import Foundation
import MasqdShell
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// HA and the FTP helper (issue #18, "helper stream state included"): an active-mode FTP
/// control connection through router A (lftp to a real vsftpd) transfers a file; its PORT was
/// rewritten (192,0,2,10 → 203,0,113,1: one byte longer, so every later sequence number of
/// the client's stream is shifted by one). A is SIGKILLed long before the next full resync
/// (--sync-interval 30), B takes over, and the SAME control connection (vsftpd sees one
/// client session) does a second active transfer through B and a NOOP: B's helper went on
/// with the edit log and the helper's state that came as increments. Without them (the
/// increment switched off, tried on 2026-12-07) B's FTP helper, having seen no greeting,
/// abandoned the stream: the second PORT reached vsftpd with the LAN address, and lftp had
/// to open a second control connection. Namespaces mq<pid>hf-*.
@Suite(.integrationLimit, .serialized)
struct HAFTPTests {
    @Test("an FTP control connection whose PORT was rewritten goes on through the new active router after a failover between full resyncs")
    func ftpControlConnectionSurvivesFailover() throws {
        try FTPLab.requireTools()
        let masqd = try Integration.masqdExecutable()
        let lab = try HATopology.make(tag: "hf", scripts: [:])
        defer { lab.destroy() }
        let root = lab.workDir + "/ftp", downloads = lab.workDir + "/dl"
        let sums = try FTPLab.makeFiles(in: root, [("first.bin", 200_000), ("second.bin", 300_000)])
        try FileManager.default.createDirectory(atPath: downloads, withIntermediateDirectories: true)
        let ftpd = try FTPLab.startVsftpd(workDir: lab.workDir, where: lab.namespace(.server), bind: HATopology.server, port: 21, root: root,
                                          name: "vsftpd", spawn: { try lab.spawn(.server, $0, name: "vsftpd") },
                                          run: { try lab.run(.server, $0, timeout: 5) })

        let pair = try lab.startPair(masqd: masqd, repository: HAFailoverTests.repository) // --sync-interval: the default 30 s
        let (masqdA, masqdB, keepalivedA, keepalivedB) = (pair.masqdA, pair.masqdB, pair.keepalivedA, pair.keepalivedB)
        let resyncsBefore = try lab.stats(.b, masqd: masqd)["sync_resyncs_received"] ?? 0

        // lftp: active mode only (no fallback to passive), one control connection; between the
        // transfers it waits for the file `go`.
        let firstDone = lab.workDir + "/first-done", go = lab.workDir + "/go"
        let script = lab.workDir + "/ftp.lftp"
        try """
        \(FTPLab.lftpActiveOnly)
        open ftp://\(HATopology.server)
        get -O \(downloads) first.bin
        !touch \(firstDone); while [ ! -e \(go) ]; do sleep 0.05; done
        get -O \(downloads) second.bin
        quote NOOP
        bye

        """.write(toFile: script, atomically: true, encoding: .utf8)
        let lftp = try lab.spawn(.host, ["lftp", "-d", "-f", script], name: "lftp")
        let first = Semantics.waitUntil(timeout: 30) { FileManager.default.fileExists(atPath: firstDone) || !lftp.isRunning }
        try #require(first && lftp.isRunning, "the first transfer through A did not finish:\n\(lftp.output)\nvsftpd:\n\(ftpd.log)")
        #expect(try Semantics.sha256(downloads + "/first.bin") == sums["first.bin"])
        let statsA = try lab.stats(.a, masqd: masqd)
        #expect((statsA["helper_ftp_rewrites"] ?? 0) >= 1, "A rewrote no PORT: \(FTPLab.helperStats(statsA))")
        usleep(200_000) // a main-loop round: the helper state's increment leaves A
        let beforeKill = try lab.stats(.b, masqd: masqd)
        #expect((beforeKill["sync_increments_applied"] ?? 0) > 0, "\(beforeKill)")

        let (failover, after) = try lab.killAndTakeOver(.a, keepalived: keepalivedA, keepalivedName: "keepalived-a", engine: masqdA, masqd: masqd) {
            "\(keepalivedB.output)\n\(masqdB.output)"
        }
        print("HA FTP: B active \(String(format: "%.2f", failover)) s after SIGKILL of A; installed \(after["takeover_installed_flows"] ?? -1) flows")
        // The copy B installed came from increments: no full resync since the first.
        #expect(after["sync_resyncs_received"] == resyncsBefore, "a full resync reached B before the failover: \(after)")
        #expect((after["takeover_installed_flows"] ?? 0) >= 1, "\(after)\n\(masqdB.output)")

        try Shell.check(["touch", go])
        let done = Semantics.waitUntil(timeout: 45) { !lftp.isRunning }
        #expect(done && lftp.exitStatus == 0, "lftp after the failover (status \(lftp.exitStatus.map(String.init) ?? "running")):\n\(lftp.output)\nvsftpd:\n\(ftpd.log)\nB:\n\(masqdB.output)")
        let second = FileManager.default.fileExists(atPath: downloads + "/second.bin") ? try Semantics.sha256(downloads + "/second.bin") : "missing"
        #expect(second == sums["second.bin"], "second.bin through B: sha256 \(second)")

        // One control connection, both PORTs naming the WAN address, both downloads complete, the NOOP answered.
        let log = ftpd.lines
        let connects = log.filter { $0.contains("CONNECT: Client") }
        #expect(connects.count == 1, "vsftpd saw \(connects.count) control connections:\n\(connects.joined(separator: "\n"))")
        let ports = FTPLab.activeEndpoints(log.filter { $0.contains("FTP command") && ($0.contains("PORT ") || $0.contains("EPRT ")) })
        #expect(ports.count == 2 && ports.allSatisfy { $0.address == HATopology.wanVIP }, "the PORT/EPRT vsftpd received: \(ports)\n\(log.joined(separator: "\n"))")
        #expect(log.filter { $0.contains("OK DOWNLOAD: Client \"\(HATopology.wanVIP)\"") }.count == 2, "\(log.joined(separator: "\n"))")
        #expect(log.contains { $0.contains("\"NOOP\"") } && log.contains { $0.contains("\"200 NOOP ok.\"") }, "\(log.joined(separator: "\n"))")
        let statsB = try lab.stats(.b, masqd: masqd)
        #expect((statsB["helper_ftp_rewrites"] ?? 0) >= 1, "B rewrote no PORT: \(FTPLab.helperStats(statsB))")
    }
}
