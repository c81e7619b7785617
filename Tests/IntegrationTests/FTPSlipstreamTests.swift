import Foundation
import Masqd
import MasqdLab
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// NAT slipstreaming against the FTP helper (issue #20 item 4), end to end: h1 (a browser a
/// web page drives: here a small python client sending the same bytes) POSTs to the
/// attacker's port 2122, where the FTP helper is on (`--helper-ports ftp=2121,2122`), a body
/// of 254 PORT lines, one per LAN address, each offering port 8080, where h1 runs a service.
/// The attacker's server greets like FTP at once (the worst case), collects what arrives,
/// and dials every endpoint a rewritten PORT line names and the WAN address's 8080: none
/// reaches h1's service. The control: a real FTP session on 2121 (curl active mode to
/// pyftpdlib) is still rewritten and its data connection arrives. Queue index 85, tag "fts".
@Suite(.integrationLimit)
struct FTPSlipstreamTests: LabAddresses {
    /// The attacker: greets with 220, reads the request, then dials what it learned.
    static let attackerScript = """
        import re, socket, sys
        port, wan = int(sys.argv[1]), sys.argv[2]
        t = socket.socket(); t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        t.bind(("", port)); t.listen(1); print("ready", flush=True)
        c, peer = t.accept(); c.sendall(b"220 ready\\r\\n")
        data = b""; c.settimeout(3)
        try:
            while data.count(b"PORT ") < 254 or not data.endswith(b"\\n"):
                d = c.recv(65536)
                if not d: break
                data += d
        except socket.timeout:
            pass
        advertised = sorted({int(a) * 256 + int(b) for a, b in re.findall(rb"PORT 203,0,113,1,(\\d+),(\\d+)", data)})
        print("received %d bytes, %d PORT lines, rewritten to %s" % (len(data), data.count(b"PORT "), advertised), flush=True)
        for p in advertised + [8080]:
            s = socket.socket(); s.settimeout(3)
            try:
                s.connect((wan, p)); print("connected %d" % p, flush=True)
            except OSError as e:
                print("failed %d: %s" % (p, e), flush=True)
            s.close()
        print("done", flush=True)
        """

    /// The victim's LAN service on 8080: prints every connection it gets.
    static let serviceScript = """
        import socket
        t = socket.socket(); t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        t.bind(("", 8080)); t.listen(8); print("ready", flush=True)
        while True:
            c, peer = t.accept(); print("accepted %s:%d" % peer, flush=True); c.close()
        """

    /// The "browser": one HTTP POST with the PORT lines as its body, as a page's fetch() sends it.
    static let browserScript = """
        import socket, sys
        body = "".join("PORT 192,0,2,%d,31,144\\r\\n" % i for i in range(1, 255)).encode()
        head = ("POST /upload HTTP/1.1\\r\\nHost: %s:%s\\r\\nContent-Type: text/plain\\r\\nContent-Length: %d\\r\\n\\r\\n"
                % (sys.argv[1], sys.argv[2], len(body))).encode()
        s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5)
        s.sendall(head + body); print("sent %d bytes" % len(head + body), flush=True)
        try:
            print("answer %r" % s.recv(100), flush=True)
        except OSError as e:
            print("no answer: %s" % e, flush=True)
        """

    @Test("an HTTP POST from h1 full of PORT lines to a port the FTP helper follows opens no way in to h1; a real FTP session on the helper's other port still works")
    func slipstreamingPostOpensNothing() throws {
        try FTPLab.requireTools()
        try Integration.withEngine("fts", queue: Integration.queue(85), options: ["--helper-ports", "ftp=2121,2122"]) { lab, masqd in
            let dir = lab.workDir
            try Self.attackerScript.write(toFile: dir + "/attacker.py", atomically: true, encoding: .utf8)
            try Self.serviceScript.write(toFile: dir + "/service.py", atomically: true, encoding: .utf8)
            try Self.browserScript.write(toFile: dir + "/browser.py", atomically: true, encoding: .utf8)
            let service = try lab.spawn(.host1, [LabTopology.python, "-u", dir + "/service.py"], name: "lan-service")
            try #require(service.waitForOutput(containing: "ready"), "service:\n\(service.output)")
            let attacker = try lab.spawn(.server, [LabTopology.python, "-u", dir + "/attacker.py", "2122", wan], name: "attacker")
            try #require(attacker.waitForOutput(containing: "ready"), "attacker:\n\(attacker.output)")

            let browser = try lab.run(.host1, [LabTopology.python, "-u", dir + "/browser.py", server, "2122"], timeout: 20)
            #expect(browser.stdout.contains("sent "), "browser: \(browser.summary)")
            #expect(attacker.waitForOutput(containing: "done", timeout: 30), "attacker:\n\(attacker.output)")
            let received = Semantics.line(attacker.lines, startingWith: "received ") ?? ""
            #expect(received.contains(" 254 PORT lines, rewritten to []"),
                    "every PORT line must reach the attacker unchanged, none rewritten: \(received)\n\(attacker.output)")
            #expect(!attacker.output.contains("connected "), "the attacker got in:\n\(attacker.output)")
            usleep(300_000)
            #expect(!service.output.contains("accepted "), "h1's service on 8080 was reached from outside:\n\(service.output)")
            let stats = try Semantics.stats(lab, masqd)
            #expect(stats["helper_ftp_abandoned"] == 1, "\(FTPLab.helperStats(stats)) abandoned \(stats["helper_ftp_abandoned"] ?? -1)")
            #expect(stats["helper_ftp_rewrites"] == 0 && stats["helper_ftp_expectations"] == 0, "\(FTPLab.helperStats(stats))")

            // The control: real active FTP on 2121 through the same engine.
            let root = dir + "/ftp"
            let sums = try FTPLab.makeFiles(in: root, [("real.bin", 200_000)])
            let ftpd = try FTPLab.startPyftpdlib(lab, on: .server, bind: server, port: 2121, root: root, name: "pyftpdlib")
            let copy = dir + "/real.bin"
            let curl = try FTPLab.curl(lab, from: .host1, "ftp://\(server):2121/real.bin", to: copy, ["-P", "-", "--disable-eprt"])
            #expect(curl.succeeded, "real FTP session: \(curl.summary)")
            let sum = try FTPLab.downloadedSum(copy)
            #expect(sum == sums["real.bin"], "downloaded sha256 \(sum), served \(sums["real.bin"]!)")
            let ports = FTPLab.activeEndpoints(ftpd.lines.filter { $0.contains("<- PORT ") })
            #expect(ports.count == 1 && ports.first?.address == wan, "pyftpdlib received \(ports), expected one PORT naming \(wan)")
            let after = try Semantics.stats(lab, masqd)
            #expect(after["helper_ftp_rewrites"] == 1 && after["helper_ftp_abandoned"] == 1, "\(FTPLab.helperStats(after))")
        }
    }
}
