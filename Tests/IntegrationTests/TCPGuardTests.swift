import Foundation
import Masqd
import MasqdLab
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Blind RST/FIN from the WAN (issue #20 item 2): an idle TCP connection between h1 and the
/// server; scapy in the server's namespace (no real peer can send these: the server's own TCP
/// never would) reads the server's sequence numbers off the wire and sends to the
/// masqueraded port an RST far outside the window, an RST at exactly the right sequence
/// number but with a wrong checksum, an RST inside the window but not exact, and a FIN far
/// outside. The session stays ESTABLISHED, data flows after 11 s (past the 10 s reset
/// timeout); then, as the control that the spoofed packets do reach the session, an exact
/// RST with a right checksum closes it. Queue index 84, namespace tag "tg".
@Suite(.integrationLimit)
struct TCPGuardTests: LabAddresses {
    /// Echoes every line back; when the file DIR/push appears, also sends "pushed" unasked.
    static let serverScript = """
        import os, socket, sys, threading, time
        t = socket.socket(); t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        t.bind(("", int(sys.argv[1]))); t.listen(1); print("ready", flush=True)
        c, peer = t.accept(); print("accepted %s:%d" % peer, flush=True)
        def push():
            while not os.path.exists(sys.argv[2] + "/push"): time.sleep(0.05)
            try:
                c.sendall(b"pushed\\n"); print("pushed", flush=True)
            except OSError as e:
                print("error %s" % e, flush=True)
        threading.Thread(target=push, daemon=True).start()
        for line in c.makefile("rb"):
            c.sendall(line)
        print("closed", flush=True)
        """

    /// Sends "line N" when the file DIR/go-N appears and prints the echo (N = 1, 2); then
    /// waits, idle, for the server's unasked line; then line 3 the same way, and idles.
    static let clientScript = """
        import os, socket, sys, time
        s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5); s.settimeout(None)
        f = s.makefile("rb")
        def line(n):
            while not os.path.exists("%s/go-%d" % (sys.argv[3], n)): time.sleep(0.05)
            s.sendall(b"line %d\\n" % n)
            print("received %s" % f.readline().decode().strip(), flush=True)
        try:
            line(1); line(2)
            print("received %s" % (f.readline().decode().strip() or "end of stream"), flush=True)
            line(3)
        except OSError as e:
            print("error %s" % e, flush=True)
        time.sleep(60)
        """

    /// Scapy: the server's next data segment tells its sequence number (what h1 acknowledges
    /// next); then the spoofed packets; then, after DIR/control appears and the next data
    /// segment, the exact RST.
    static func spoofScript(wan: String, port: Int, dir: String) -> String {
        """
        import os, time
        def next_data():
            s = AsyncSniffer(iface="eth0", filter="tcp and src port 7100 and dst host \(wan) and (tcp[tcpflags] & tcp-push != 0)", count=1)
            s.start(); return s
        def rst(seq, ack, flags="RA", chksum=None):
            p = IP(dst="\(wan)")/TCP(sport=7100, dport=\(port), flags=flags, seq=seq % 2**32, ack=ack)
            if chksum is not None:
                right = IP(raw(p))[TCP].chksum
                p[TCP].chksum = right ^ 0x5555
            send(p)
        s = next_data(); time.sleep(0.5); print("sniffing", flush=True)
        p = s.join(timeout=20)
        got = s.results
        if not got: print("no data segment seen", flush=True); raise SystemExit(1)
        d = got[0][TCP]; nxt = d.seq + len(d.payload)
        print("server next seq %d ack %d" % (nxt, d.ack), flush=True)
        rst(nxt + 2**31, d.ack)                     # far outside the window
        rst(nxt, d.ack, chksum="bad")               # exact, but a wrong checksum
        rst(nxt + 1000, d.ack)                      # inside the window, not exact
        rst(nxt + 2**31, d.ack, flags="FA")         # a FIN far outside the window
        print("sent spoofs", flush=True)
        while not os.path.exists("\(dir)/control"): time.sleep(0.05)
        s = next_data(); time.sleep(0.5); print("sniffing again", flush=True)
        s.join(timeout=20)
        got = s.results
        if not got: print("no second data segment seen", flush=True); raise SystemExit(1)
        d = got[0][TCP]
        rst(d.seq + len(d.payload), d.ack)          # the control: exact and right
        print("sent control", flush=True)
        """
    }

    @Test("spoofed out-of-window, bad-checksum and inexact RSTs and an out-of-window FIN from the WAN leave an idle session ESTABLISHED; data flows after 11 s; an exact RST then closes it")
    func blindResetsDoNotEndTheSession() throws {
        try Integration.withEngine(scapy: true, "tg", queue: Integration.queue(84)) { lab, masqd, _ in
            let dir = lab.workDir
            try Self.serverScript.write(toFile: dir + "/echo-server.py", atomically: true, encoding: .utf8)
            try Self.clientScript.write(toFile: dir + "/echo-client.py", atomically: true, encoding: .utf8)
            let echo = try lab.spawn(.server, [LabTopology.python, "-u", dir + "/echo-server.py", "7100", dir], name: "echo-server")
            try #require(echo.waitForOutput(containing: "ready"), "server:\n\(echo.output)")
            let client = try lab.spawn(.host1, [LabTopology.python, "-u", dir + "/echo-client.py", server, "7100", dir], name: "echo-client")
            func go(_ file: String) { _ = FileManager.default.createFile(atPath: dir + "/" + file, contents: nil) }
            go("go-1")
            try #require(client.waitForOutput(containing: "received line 1"), "client:\n\(client.output)\nserver:\n\(echo.output)")
            let accepted = Semantics.line(echo.lines, startingWith: "accepted ") ?? ""
            let port = try #require(Int(accepted.split(separator: ":").last ?? ""), "no peer in \(accepted)")
            #expect(accepted == "accepted \(wan):\(port)")

            let spoof = try lab.spawn(.server, [LabTopology.python, "-u", "-c",
                                                "from scapy.all import *\nconf.verb = 0\n" + Self.spoofScript(wan: wan, port: port, dir: dir)],
                                      name: "scapy")
            try #require(spoof.waitForOutput(containing: "sniffing", timeout: 30), "scapy:\n\(spoof.output)")
            let before = try Semantics.stats(lab, masqd)
            go("go-2")
            try #require(client.waitForOutput(containing: "received line 2"), "client:\n\(client.output)")
            try #require(spoof.waitForOutput(containing: "sent spoofs", timeout: 30), "scapy:\n\(spoof.output)")
            usleep(500_000)

            let flows = try lab.masqd(masqd, ["flows", "tcp", "--control", lab.controlPath])
            let flow = flows.lines.first { $0.contains("-> \(server):7100") } ?? "none"
            #expect(flow.hasPrefix("tcp ESTABLISHED "), "after the spoofed packets: \(flows.summary)\nscapy:\n\(spoof.output)")
            let moved = Robust.moved(before, try Semantics.stats(lab, masqd))
            #expect(moved["ignored_rst_out_of_window"] == 1, "\(moved)")
            #expect(moved["ignored_bad_checksum"] == 1, "\(moved)")
            #expect(moved["ignored_rst_in_window"] == 1, "\(moved)")
            #expect(moved["ignored_fin_out_of_window"] == 1, "\(moved)")

            // Longer than the 10 s a reset session lives; then the server speaks first: with
            // the session gone its segment would be handed to the router's stack, not to h1.
            sleep(11)
            go("push")
            #expect(client.waitForOutput(containing: "received pushed", timeout: 10),
                    "the server's data after 11 s did not reach h1:\nclient:\n\(client.output)\nserver:\n\(echo.output)")

            // The control: an exact, well-formed RST is believed (the spoofing path works).
            go("control")
            try #require(spoof.waitForOutput(containing: "sniffing again", timeout: 30), "scapy:\n\(spoof.output)")
            go("go-3") // the server's echo of line 3 tells the sniffer the sequence number
            #expect(client.waitForOutput(containing: "received line 3"), "client:\n\(client.output)")
            #expect(spoof.waitForOutput(containing: "sent control", timeout: 30), "scapy:\n\(spoof.output)")
            let closed = Semantics.waitUntil(timeout: 5) {
                let listing = (try? lab.masqd(masqd, ["flows", "tcp", "--control", lab.controlPath]))?.lines ?? []
                return listing.first { $0.contains("-> \(server):7100") }?.hasPrefix("tcp CLOSED ") == true
            }
            let listing = try lab.masqd(masqd, ["flows", "--control", lab.controlPath]).summary
            #expect(closed, "an exact RST did not close the session: \(listing)")
        }
    }
}
