import Foundation
import Masqd
import MasqdLab
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The FTP helper end to end (issue #5): active mode (PORT and EPRT) from a LAN client to a
/// server outside, a dozen active transfers over one control connection, passive mode
/// (PASV, EPSV) from inside, a server inside behind a forward of port 21 only (its passive
/// data ports are reached through the helper's expectations, not forwards), and FTP on a
/// non-standard port with and without `--helper-ports`. Every transferred file's sha256 is
/// checked. Real namespaces, real iptables, the real masqd binary, real FTP servers
/// (pyftpdlib, vsftpd) and clients (curl, lftp); every test has its own namespace prefix
/// (mq<pid>ft?) and NFQUEUE number (indices 24-31).
@Suite(.integrationLimit)
struct FTPTests: LabAddresses {
    enum ServerKind: String, CaseIterable, Sendable, CustomTestStringConvertible {
        case vsftpd, pyftpdlib
        var testDescription: String { rawValue }
        var tag: String { self == .vsftpd ? "fta" : "ftb" }
        var queueIndex: Int { self == .vsftpd ? 24 : 25 }
    }

    // MARK: 1. active mode from inside: EPRT and PORT

    @Test("active FTP from h1 (curl -P -, with EPRT and with PORT) to a server outside: the server is told and dialled 203.0.113.1",
          arguments: ServerKind.allCases)
    func activeFromInside(kind: ServerKind) throws {
        try FTPLab.requireTools()
        try Integration.withEngine(kind.tag, queue: Integration.queue(kind.queueIndex)) { lab, masqd in
            let root = lab.workDir + "/ftp"
            let sums = try FTPLab.makeFiles(in: root, [("active.bin", 300_000)])
            let sniff = try lab.spawnHelper(.server, ["sniff", "eth0", "--outgoing"], name: "sniff-s")
            let ftpd: FTPLab.AnyServer = switch kind {
            case .vsftpd: .vsftpd(try FTPLab.startVsftpd(lab, on: .server, bind: server, port: 21, root: root, fromPort20: true, name: "vsftpd"))
            case .pyftpdlib: .pyftpdlib(try FTPLab.startPyftpdlib(lab, on: .server, bind: server, port: 21, root: root, name: "pyftpdlib"))
            }

            for (mode, flags) in [("EPRT", ["-P", "-"]), ("PORT", ["-P", "-", "--disable-eprt"])] {
                let copy = lab.workDir + "/active-\(mode).bin"
                let curl = try FTPLab.curl(lab, from: .host1, "ftp://\(server)/active.bin", to: copy, flags)
                #expect(curl.succeeded, "\(kind) \(mode): \(curl.summary)")
                let sum = try FTPLab.downloadedSum(copy)
                #expect(sum == sums["active.bin"], "\(kind) \(mode): downloaded sha256 \(sum), served \(sums["active.bin"]!)")
                // curl itself offered h1's own address; the NAT must have changed it on the way.
                let sent = FTPLab.activeEndpoints(curl.lines.filter { $0.hasPrefix("> \(mode) ") })
                #expect(sent.count == 1 && sent.first?.address == h1, "\(kind) \(mode): curl should have sent \(mode) with \(h1):\n\(curl.stderr)")
            }

            // What the server received: the WAN address in both commands, never a LAN address.
            let lines = ftpd.lines
            let downloads = lines.filter {
                switch kind {
                // … [pid 17249] [ftp] OK DOWNLOAD: Client "203.0.113.1", "/active.bin", 300000 bytes, …
                case .vsftpd: $0.contains("OK DOWNLOAD: Client \"\(wan)\", \"/active.bin\", 300000 bytes")
                // [I …] 203.0.113.1:41234-[anonymous] RETR /tmp/…/ftp/active.bin completed=1 bytes=300000 seconds=0.004
                case .pyftpdlib: $0.contains("] \(wan):") && $0.contains("/active.bin completed=1 bytes=300000 ")
                }
            }
            let received = FTPLab.activeEndpoints(lines.filter { $0.contains("EPRT |1|") || $0.contains("PORT ") })
            #expect(lines.contains { $0.contains("EPRT |1|\(wan)|") }, "\(kind) never received EPRT |1|\(wan)|…:\n\(lines.joined(separator: "\n"))")
            #expect(lines.contains { $0.contains("PORT 203,0,113,1,") }, "\(kind) never received PORT 203,0,113,1,…:\n\(lines.joined(separator: "\n"))")
            #expect(received.count == 2 && received.allSatisfy { $0.address == wan }, "\(kind) received \(received), expected 2 endpoints on \(wan)")
            #expect(!lines.contains { $0.contains("192,0,2,") || $0.contains("192.0.2.") }, "a LAN address reached \(kind):\n\(lines.joined(separator: "\n"))")
            #expect(downloads.count == 2, "\(kind) logged \(downloads.count) complete downloads by \(wan), expected 2:\n\(lines.joined(separator: "\n"))")

            // The data connections really went from the server to 203.0.113.1 (port 20 for vsftpd).
            usleep(200_000)
            let seen = SniffedPacket.parse(sniff.lines)
            for endpoint in received {
                // "out tcp 203.0.113.2:20 -> 203.0.113.1:47339"
                let dialled = sniff.lines.filter { $0.hasPrefix("out tcp \(server):") && $0.hasSuffix(" -> \(wan):\(endpoint.port)") }
                #expect(!dialled.isEmpty, "\(kind): the server sent nothing to \(wan):\(endpoint.port)")
                if kind == .vsftpd {
                    #expect(dialled.contains { $0.hasPrefix("out tcp \(server):20 ") },
                            "vsftpd (connect_from_port_20) did not dial \(wan):\(endpoint.port) from port 20: \(Set(dialled))")
                }
            }
            #expect(!seen.contains { !$0.incoming && $0.destination.isLAN }, "the server sent packets to a LAN address")

            let stats = try Semantics.stats(lab, masqd)
            FTPLab.expectRewritesAndExpectations(stats, atLeast: 2, "\(kind): ")
        }
    }

    // MARK: 2. a dozen active transfers over one control connection

    @Test("lftp in active mode fetches 12 files over one control connection; 12+ expectations, all fulfilled")
    func lftpActiveMget() throws {
        try FTPLab.requireTools()
        try Integration.withEngine("ftc", queue: Integration.queue(26)) { lab, masqd in
            let root = lab.workDir + "/ftp", downloads = lab.workDir + "/dl"
            let names = (1...12).map { String(format: "f%02d.bin", $0) }
            let sums = try FTPLab.makeFiles(in: root, names.enumerated().map { ($1, 20_000 + $0 * 12_345) })
            try FileManager.default.createDirectory(atPath: downloads, withIntermediateDirectories: true)
            let ftpd = try FTPLab.startPyftpdlib(lab, on: .server, bind: server, port: 21, root: root, name: "pyftpdlib")

            let script = lab.workDir + "/mget.lftp"
            try """
            \(FTPLab.lftpActiveOnly)
            open ftp://\(server)
            mget -O \(downloads) f*.bin
            bye

            """.write(toFile: script, atomically: true, encoding: .utf8)
            let lftp = try lab.run(.host1, ["lftp", "-f", script], timeout: 120)
            #expect(lftp.succeeded, "\(lftp.summary)")

            for name in names {
                let copy = downloads + "/" + name
                let sum = try FTPLab.downloadedSum(copy)
                #expect(sum == sums[name], "\(name): downloaded sha256 \(sum), served \(sums[name]!)")
            }

            let lines = ftpd.lines
            let log = lines.joined(separator: "\n")
            let sessions = lines.filter { $0.contains("FTP session opened") }
            #expect(sessions.count == 1 && sessions.allSatisfy { $0.contains("] \(wan):") },
                    "expected one control connection from \(wan), the server saw \(sessions.count):\n\(sessions.joined(separator: "\n"))")
            let completed = lines.filter { $0.contains("] \(wan):") && $0.contains(" RETR ") && $0.contains(" completed=1 ") }
            #expect(completed.count == 12, "the server logged \(completed.count) complete RETRs by \(wan), expected 12:\n\(log)")
            let received = FTPLab.activeEndpoints(lines.filter { $0.contains("<- PORT ") || $0.contains("<- EPRT ") })
            #expect(received.count >= 12 && received.allSatisfy { $0.address == wan },
                    "the server received \(received.count) PORT/EPRT, expected >= 12 all naming \(wan): \(received)")
            #expect(!log.contains("192,0,2,") && !log.contains("192.0.2."), "a LAN address reached the server:\n\(log)")
            // lftp falls back to passive mode when active fails, unless told not to: make sure it did not.
            #expect(!lines.contains { $0.contains("<- PASV") || $0.contains("<- EPSV") }, "lftp used passive mode:\n\(log)")

            let stats = try Semantics.stats(lab, masqd)
            FTPLab.expectRewritesAndExpectations(stats, atLeast: 12)
        }
    }

    // MARK: 3. passive mode from inside

    @Test("passive FTP from h1 (curl EPSV, and PASV with --disable-epsv) to a server outside works; nothing to rewrite")
    func passiveFromInside() throws {
        try FTPLab.requireTools()
        try Integration.withEngine("ftd", queue: Integration.queue(27)) { lab, masqd in
            let root = lab.workDir + "/ftp"
            let sums = try FTPLab.makeFiles(in: root, [("passive.bin", 300_000)])
            let ftpd = try FTPLab.startVsftpd(lab, on: .server, bind: server, port: 21, root: root, passivePorts: 40000...40099, name: "vsftpd")

            for (mode, flags) in [("EPSV", [String]()), ("PASV", ["--disable-epsv", "--no-ftp-skip-pasv-ip"])] {
                let copy = lab.workDir + "/passive-\(mode).bin"
                let curl = try FTPLab.curl(lab, from: .host1, "ftp://\(server)/passive.bin", to: copy, flags)
                #expect(curl.succeeded, "\(mode): \(curl.summary)")
                let sum = try FTPLab.downloadedSum(copy)
                #expect(sum == sums["passive.bin"], "\(mode): downloaded sha256 \(sum), served \(sums["passive.bin"]!)")
                #expect(curl.lines.contains { $0.hasPrefix("> \(mode)") }, "curl did not use \(mode):\n\(curl.stderr)")
            }
            // PASV's reply reached curl as the server sent it (the server's own address).
            let lines = ftpd.lines, log = lines.joined(separator: "\n")
            let offered = FTPLab.passiveEndpoints(lines.filter { $0.contains("FTP response") })
            #expect(offered.count == 1 && offered.allSatisfy { $0.address == server && (40000...40099).contains($0.port) }, "vsftpd's 227 replies: \(offered)")
            #expect(lines.contains { $0.contains("\"EPSV\"") } && lines.contains { $0.contains("\"PASV\"") }, "vsftpd did not see EPSV and PASV:\n\(log)")
            let downloads = lines.filter { $0.contains("OK DOWNLOAD: Client \"\(wan)\", \"/passive.bin\", 300000 bytes") }
            #expect(downloads.count == 2, "vsftpd logged \(downloads.count) complete downloads by \(wan), expected 2:\n\(log)")

            let stats = try Semantics.stats(lab, masqd)
            // A server outside: its 227/229 replies need no rewriting and open no expectation.
            #expect(stats["helper_ftp_rewrites"] == 0 && stats["helper_ftp_expectations"] == 0, "\(FTPLab.helperStats(stats))")
        }
    }

    // MARK: 4. a server inside behind a forward of port 21 only

    @Test("server on h1 behind --forward tcp:21 only: PASV and EPSV from outside reach its passive ports through the helper")
    func serverInsideBehindForward() throws {
        try FTPLab.requireTools()
        let options = ["--forward", "tcp:21=\(h1):21"]
        try Integration.withEngine("fte", queue: Integration.queue(28), options: options) { lab, masqd in
            let root = lab.workDir + "/ftp"
            let sums = try FTPLab.makeFiles(in: root, [("inside.bin", 300_000)])
            let range = 50000...50099
            // Bound to (and so advertising) its LAN address in 227 replies; no NAT address set.
            let ftpd = try FTPLab.startPyftpdlib(lab, on: .host1, bind: h1, port: 21, root: root,
                                                 passiveRange: "\(range.lowerBound)-\(range.upperBound)", name: "pyftpdlib-h1")

            // PASV: curl dials the address in the 227 reply (--no-ftp-skip-pasv-ip), so the
            // reply must name 203.0.113.1, not 192.0.2.10.
            let pasvCopy = lab.workDir + "/inside-PASV.bin"
            let pasv = try FTPLab.curl(lab, from: .server, "ftp://\(wan)/inside.bin", to: pasvCopy, ["--disable-epsv", "--no-ftp-skip-pasv-ip"])
            #expect(pasv.succeeded, "PASV: \(pasv.summary)")
            let pasvSum = FileManager.default.fileExists(atPath: pasvCopy) ? try Semantics.sha256(pasvCopy) : "missing"
            #expect(pasvSum == sums["inside.bin"], "PASV: downloaded sha256 \(pasvSum), served \(sums["inside.bin"]!)")
            let told = FTPLab.passiveEndpoints(pasv.lines.filter { $0.hasPrefix("< 227") })
            #expect(told.count == 1 && told.first?.address == wan, "curl should have read a 227 naming \(wan): \(told)\n\(pasv.stderr)")

            // EPSV: the 229 reply carries a port only.
            let epsvCopy = lab.workDir + "/inside-EPSV.bin"
            let epsv = try FTPLab.curl(lab, from: .server, "ftp://\(wan)/inside.bin", to: epsvCopy, [])
            #expect(epsv.succeeded, "EPSV: \(epsv.summary)")
            let epsvSum = FileManager.default.fileExists(atPath: epsvCopy) ? try Semantics.sha256(epsvCopy) : "missing"
            #expect(epsvSum == sums["inside.bin"], "EPSV: downloaded sha256 \(epsvSum), served \(sums["inside.bin"]!)")
            #expect(epsv.lines.contains { $0.hasPrefix("> EPSV") } && !FTPLab.extendedPassivePorts(epsv.lines.filter { $0.hasPrefix("< 229") }).isEmpty,
                    "curl did not use EPSV:\n\(epsv.stderr)")

            // The server advertised its own LAN address and ports from its range; it saw the real remote.
            let lines = ftpd.lines, log = lines.joined(separator: "\n")
            let advertised = FTPLab.passiveEndpoints(lines.filter { $0.contains("-> 227 ") })
            #expect(advertised.count == 1 && advertised.allSatisfy { $0.address == h1 && range.contains($0.port) },
                    "the server's 227 replies: \(advertised), expected one naming \(h1) with a port in \(range)")
            let extended = FTPLab.extendedPassivePorts(lines.filter { $0.contains("-> 229 ") })
            #expect(extended.count == 1 && extended.allSatisfy { range.contains($0) }, "the server's 229 replies: \(extended)")
            let completed = lines.filter { $0.contains("] \(server):") && $0.contains("/inside.bin completed=1 bytes=300000 ") }
            #expect(completed.count == 2, "the server logged \(completed.count) complete RETRs by \(server), expected 2:\n\(log)")

            let stats = try Semantics.stats(lab, masqd)
            FTPLab.expectRewritesAndExpectations(stats, atLeast: 2)
        }
    }

    // MARK: 5. a non-standard port

    @Test("FTP on port 2121: active PORT works with --helper-ports ftp=2121 and fails with the default ports")
    func nonStandardPort() throws {
        try FTPLab.requireTools()
        let active = ["-P", "-", "--disable-eprt"]
        let url = "ftp://\(server):2121/np.bin"

        // With the helper on 2121.
        try Integration.withEngine("ftf", queue: Integration.queue(29), options: ["--helper-ports", "ftp=2121"]) { lab, masqd in
            let root = lab.workDir + "/ftp"
            let sums = try FTPLab.makeFiles(in: root, [("np.bin", 300_000)])
            let ftpd = try FTPLab.startPyftpdlib(lab, on: .server, bind: server, port: 2121, root: root, name: "pyftpdlib")
            let copy = lab.workDir + "/np.bin"
            let curl = try FTPLab.curl(lab, from: .host1, url, to: copy, active)
            #expect(curl.succeeded, "--helper-ports ftp=2121: \(curl.summary)")
            let sum = try FTPLab.downloadedSum(copy)
            #expect(sum == sums["np.bin"], "--helper-ports ftp=2121: downloaded sha256 \(sum), served \(sums["np.bin"]!)")
            let received = FTPLab.activeEndpoints(ftpd.lines.filter { $0.contains("<- PORT ") })
            #expect(received.count == 1 && received.first?.address == wan, "the server received \(received), expected one PORT naming \(wan)")
            let stats = try Semantics.stats(lab, masqd)
            FTPLab.expectRewritesAndExpectations(stats, atLeast: 1)
        }

        // Default ports (ftp=21): nothing follows 2121, so PORT reaches the server with h1's
        // LAN address and active mode fails; passive mode to the same server still works.
        try Integration.withEngine("ftg", queue: Integration.queue(30)) { lab, masqd in
            let root = lab.workDir + "/ftp"
            let sums = try FTPLab.makeFiles(in: root, [("np.bin", 300_000)])
            let ftpd = try FTPLab.startPyftpdlib(lab, on: .server, bind: server, port: 2121, root: root, name: "pyftpdlib")
            let copy = lab.workDir + "/np.bin"
            let curl = try FTPLab.curl(lab, from: .host1, url, to: copy, active, maxTime: 20)
            #expect(!curl.timedOut && curl.status != 0, "without the helper on 2121 active mode should fail within 20 s: \(curl.summary)")
            let sum = try FTPLab.downloadedSum(copy)
            #expect(sum != sums["np.bin"], "without the helper on 2121 the active download still arrived intact")
            let received = FTPLab.activeEndpoints(ftpd.lines.filter { $0.contains("<- PORT ") })
            #expect(!received.isEmpty && received.allSatisfy { $0.address == h1 },
                    "without the helper the server should receive PORT naming \(h1) unchanged: \(received)\n\(ftpd.output)")

            let passiveCopy = lab.workDir + "/np-passive.bin"
            let passive = try FTPLab.curl(lab, from: .host1, url, to: passiveCopy, [])
            #expect(passive.succeeded, "control: passive to port 2121: \(passive.summary)")
            let passiveSum = FileManager.default.fileExists(atPath: passiveCopy) ? try Semantics.sha256(passiveCopy) : "missing"
            #expect(passiveSum == sums["np.bin"], "control: passive download sha256 \(passiveSum), served \(sums["np.bin"]!)")

            let stats = try Semantics.stats(lab, masqd)
            #expect(stats["helper_ftp_rewrites"] == 0 && stats["helper_ftp_expectations"] == 0,
                    "the helper acted on port 2121 without --helper-ports: \(FTPLab.helperStats(stats))")
        }
    }
}
