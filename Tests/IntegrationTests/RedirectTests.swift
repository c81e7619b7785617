import Foundation
import Masqd
import MasqdLab
import MasqdShell
import Testing

/// Transparent redirect end to end (issue #15 item 3): a LAN client's `curl http://server/` is
/// redirected to a proxy in the router namespace listening on 3128. The proxy is a small
/// Python relay (not squid or tinyproxy: neither can be told the original destination
/// without conntrack's SO_ORIGINAL_DST, and that lookup is what is under test): for each
/// client it asks `masqd original-destination CLIENT:PORT`, logs the answer, connects there
/// and relays both ways. The server must see the WAN address (the proxy's own connection),
/// the client the server's address. Queue indices 140-141 (+100 on nft).
@Suite(.integrationLimit)
struct RedirectTests: LabAddresses {
    static func proxyScript(masqd: String, control: String) -> String {
        """
        import socket, subprocess, threading, sys
        def relay(a, b):
            try:
                while True:
                    data = a.recv(65536)
                    if not data: break
                    b.sendall(data)
            except OSError: pass
            try: b.shutdown(socket.SHUT_WR)
            except OSError: pass
        def serve(client, peer):
            out = subprocess.run(["\(masqd)", "original-destination", "--control", "\(control)", "%s:%d" % peer],
                                 capture_output=True, text=True)
            if out.returncode != 0:
                print("proxy lookup failed for %s:%d: %s" % (peer[0], peer[1], out.stderr.strip()), flush=True)
                client.close(); return
            host, port = out.stdout.strip().rsplit(":", 1)
            print("proxy client %s:%d original %s:%s" % (peer[0], peer[1], host, port), flush=True)
            upstream = socket.create_connection((host, int(port)), timeout=10)
            t = threading.Thread(target=relay, args=(upstream, client)); t.start()
            relay(client, upstream); t.join(); client.close(); upstream.close()
        listener = socket.socket(); listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("0.0.0.0", 3128)); listener.listen(16)
        print("proxy listening", flush=True)
        while True:
            c, p = listener.accept()
            threading.Thread(target=serve, args=(c, p), daemon=True).start()
        """
    }

    @Test("a LAN client's HTTP request is served through the local proxy, which learns the original destination; the server sees the WAN address",
          arguments: Integration.firewalls)
    func httpThroughTransparentProxy(firewall: FirewallChoice) throws {
        try Integration.withEngine(Integration.tag("rda", firewall), queue: Integration.queue(140, firewall),
                                 options: ["--redirect", "tcp:80=3128"], firewall: firewall) { lab, masqd in
            let file = try lab.serveRandomFile("page.bin", megabytes: 1, from: .server, port: 80, helperName: "http-s")
            let copy = lab.workDir + "/page-copy.bin"
            let proxy = try lab.spawn(.router, [LabTopology.python, "-u", "-c", Self.proxyScript(masqd: masqd, control: lab.controlPath)],
                                      name: "proxy")
            #expect(Semantics.waitUntil(timeout: 5) { proxy.output.contains("proxy listening") }, "proxy did not start: \(proxy.output)")
            let curl = try lab.curl(from: .host1, "http://\(server)/page.bin", to: copy, writeOut: "%{remote_ip}:%{remote_port} %{local_port}", maxTime: 30)
            #expect(curl.succeeded, "\(curl.summary)\nproxy:\n\(proxy.output)")
            let fields = curl.stdout.split(separator: " ")
            #expect(fields.first.map(String.init) == "\(server):80", "the client must see the server's address: \(curl.stdout)")
            #expect(try Semantics.sha256(copy) == file.sha256, "the download through the proxy differs")
            let clientPort = fields.count == 2 ? String(fields[1]) : "?"
            #expect(proxy.output.contains("proxy client \(LabTopology.host1Address):\(clientPort) original \(server):80"),
                    "the proxy must learn the original destination:\n\(proxy.output)")
            let clients = file.clients
            #expect(!clients.isEmpty && clients.allSatisfy { $0 == wan }, "the server must see the WAN address, saw \(clients)")
            let stats = try Semantics.stats(lab, masqd)
            #expect((stats["redirect_flows_created"] ?? 0) == 1, "redirect_flows_created: \(stats["redirect_flows_created"] ?? -1)")
            #expect((stats["redirected_to_proxy"] ?? 0) >= 3, "redirected_to_proxy: \(stats["redirected_to_proxy"] ?? -1)")
            #expect((stats["redirected_from_proxy"] ?? 0) >= 3, "redirected_from_proxy: \(stats["redirected_from_proxy"] ?? -1)")
            // The proxy's own connection left from the router's address: nothing was masqueraded.
            #expect((stats["translated_outbound"] ?? -1) == 0, "translated_outbound: \(stats["translated_outbound"] ?? -1)")
            let flows = try lab.masqd(masqd, ["flows", "--control", lab.controlPath])
            #expect(flows.stdout.contains("\(LabTopology.host1Address):\(clientPort) -> \(server):80 redirected \(LabTopology.routerLANAddress):3128"),
                    "masqd flows:\n\(flows.stdout)")
            let unknown = try lab.masqd(masqd, ["original-destination", "--control", lab.controlPath, "192.0.2.99:1"])
            #expect(!unknown.succeeded && unknown.stderr.contains("no redirected connection from 192.0.2.99:1"), "\(unknown.summary)")
            proxy.stop(grace: 1)
            if firewall == .iptables {
                let installed = try Integration.iptablesSave(lab)
                #expect(installed.contains("-A OUTPUT") && installed.contains("--sport 3128") && installed.contains("rpfilter"), "\(installed)")
                let options = lab.engineOptions(queue: Integration.queue(140, firewall)) + ["--redirect", "tcp:80=3128"]
                let removed = try lab.masqd(masqd, ["rules", "remove"] + options)
                #expect(removed.succeeded, "\(removed.summary)")
                let left = try Integration.iptablesSave(lab)
                #expect(!left.contains("masqd queue"), "rules remove left rules behind:\n\(left)")
            }
        }
    }

    @Test("a 4 MB upload from a LAN client crosses the proxy whole: client segments delivered locally get full checksums (GSO included)")
    func uploadThroughTransparentProxy() throws {
        try Integration.withEngine("rdc", queue: Integration.queue(142), options: ["--redirect", "tcp:80=3128"]) { lab, masqd in
            let file = lab.workDir + "/upload.bin"
            try ServedFile.random(file, megabytes: 4)
            let sink = try lab.spawnHelper(.server, ["tcpsink", "80"], name: "sink")
            let proxy = try lab.spawn(.router, [LabTopology.python, "-u", "-c", Self.proxyScript(masqd: masqd, control: lab.controlPath)],
                                      name: "proxy")
            #expect(Semantics.waitUntil(timeout: 5) { proxy.output.contains("proxy listening") }, "proxy did not start: \(proxy.output)")
            let upload = try lab.run(.host1, lab.helper(["tcpupload", server, "80", file, "--timeout", "30"]), timeout: 40)
            let sent = upload.lines.first { $0.hasPrefix("sent ") }.map { String($0.dropFirst(5)) } ?? "?"
            #expect(upload.succeeded && upload.stdout.contains("sink says \(sent.replacingOccurrences(of: " bytes sha256", with: ""))"),
                    "\(upload.summary)\nproxy:\n\(proxy.output)")
            #expect(Semantics.waitUntil(timeout: 5) { sink.output.contains("from \(wan):") }, "the sink must see the WAN address:\n\(sink.output)")
            #expect(proxy.output.contains("original \(server):80"), "proxy:\n\(proxy.output)")
            proxy.stop(grace: 1)
        }
    }

    @Test("an idle redirected connection survives a restart with --state-file: the server's next line reaches the client through the proxy")
    func redirectedConnectionSurvivesRestart() throws {
        let masqd = try Integration.masqdExecutable()
        try Integration.withTopology("rdd") { lab in
            let queue = Integration.queue(143)
            let options = ["--redirect", "tcp:7000=3128"]
            let install = try lab.masqd(masqd, ["rules", "install"] + lab.engineOptions(queue: queue) + options)
            try #require(install.succeeded, "\(install.summary)")
            let stateFile = lab.workDir + "/masqd.state"
            let stateOptions = options + ["--state-file", stateFile]
            try StateRestartTests.serverScript.write(toFile: lab.workDir + "/server.py", atomically: true, encoding: .utf8)
            try StateRestartTests.clientScript.write(toFile: lab.workDir + "/client.py", atomically: true, encoding: .utf8)
            let trigger = lab.workDir + "/send-now"
            let first = try StateRestartTests.startEngine(lab, masqd, queue: queue, extra: stateOptions, name: "masqd-1")
            let proxy = try lab.spawn(.router, [LabTopology.python, "-u", "-c", Self.proxyScript(masqd: masqd, control: lab.controlPath)], name: "proxy")
            try #require(proxy.waitForOutput(containing: "proxy listening"), "proxy:\n\(proxy.output)")
            let serverProcess = try lab.spawn(.server, [LabTopology.python, "-u", lab.workDir + "/server.py", "7000", trigger], name: "server")
            try #require(serverProcess.waitForOutput(containing: "ready"), "server:\n\(serverProcess.output)")
            let client = try lab.spawn(.host1, [LabTopology.python, "-u", lab.workDir + "/client.py", server, "7000"], name: "client")
            try #require(serverProcess.waitForOutput(containing: "got before-restart"), "server:\n\(serverProcess.output)\nproxy:\n\(proxy.output)")
            #expect(proxy.output.contains("original \(server):7000"), "proxy:\n\(proxy.output)")
            usleep(300_000) // the proxy's ACK has crossed: the connection is idle
            StateRestartTests.stop(first)
            let second = try StateRestartTests.startEngine(lab, masqd, queue: queue, extra: stateOptions, name: "masqd-2")
            #expect(Semantics.waitUntil(timeout: 5) { second.output.contains("restored 1 of 1 redirected connections") }, "\(second.output)")
            #expect(FileManager.default.createFile(atPath: trigger, contents: nil))
            #expect(client.waitForOutput(containing: "received after-restart", timeout: 10), "client:\n\(client.output)\nmasqd:\n\(second.output)")
            #expect(serverProcess.waitForOutput(containing: "got echo after-restart from \(wan):", timeout: 5), "server:\n\(serverProcess.output)")
            let stats = try Semantics.stats(lab, masqd)
            #expect((stats["redirected_from_proxy"] ?? 0) >= 1 && stats["redirect_flows_active"] == 1, "\(stats.filter { $0.key.hasPrefix("redirect") })")
            StateRestartTests.stop(second)
            proxy.stop(grace: 1)
        }
    }

    @Test("a LAN host sending with a source the router routes elsewhere is dropped by the reverse-path rule and counted; its real address still works",
          arguments: Integration.firewalls)
    func reversePathCheckDropsForeignSources(firewall: FirewallChoice) throws {
        try Integration.withEngine(Integration.tag("rdb", firewall), queue: Integration.queue(141, firewall), firewall: firewall) { lab, masqd in
            let listener = try lab.spawn(.server, [LabTopology.python, "-u", "-c", """
                import socket
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("0.0.0.0", 9000))
                print("listening", flush=True)
                while True:
                    data, peer = s.recvfrom(2048)
                    print("from %s %s" % (peer[0], data.decode()), flush=True)
                """], name: "udp-listener")
            #expect(Semantics.waitUntil(timeout: 5) { listener.output.contains("listening") })
            // 198.18.0.5 is routed out of the WAN side, never back through br0.
            try Shell.check(["ip", "-n", lab.namespace(.host1), "addr", "add", "198.18.0.5/32", "dev", "eth0"])
            func send(from source: String, _ message: String) throws {
                _ = try lab.run(.host1, [LabTopology.python, "-c", """
                    import socket, time
                    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("\(source)", 0))
                    for _ in range(3):
                        s.sendto(b"\(message)", ("\(server)", 9000)); time.sleep(0.1)
                    """], timeout: 10)
            }
            let before = try Self.reversePathDrops(lab, firewall)
            try send(from: "198.18.0.5", "spoofed")
            try send(from: LabTopology.host1Address, "genuine")
            #expect(Semantics.waitUntil(timeout: 3) { listener.output.contains("from \(wan) genuine") },
                    "the genuine datagram must arrive masqueraded:\n\(listener.output)")
            #expect(!listener.output.contains("spoofed"), "a spoofed datagram got through:\n\(listener.output)")
            let after = try Self.reversePathDrops(lab, firewall)
            #expect(after - before == 3, "the reverse-path rule must count the 3 spoofed datagrams: \(before) -> \(after)")
            let stats = try Semantics.stats(lab, masqd)
            #expect((stats["outbound_not_internal"] ?? -1) == 0, "a spoofed datagram reached the engine: \(stats["outbound_not_internal"] ?? -1)")
            listener.stop(grace: 1)
        }
    }

    /// Packets the reverse-path rule has dropped, from the kernel's rule counter.
    static func reversePathDrops(_ lab: LabTopology, _ firewall: FirewallChoice) throws -> Int {
        if firewall == .nft {
            let table = try lab.run(.router, ["nft", "list", "ruleset"]).stdout
            for line in table.split(separator: "\n") where line.contains("oif missing") {
                let words = line.split(separator: " ")
                if let i = words.firstIndex(of: "packets"), i + 1 < words.count, let n = Int(words[i + 1]) { return n }
            }
            throw IntegrationFailure("no reverse-path rule in the nft table:\n\(table)")
        }
        let listing = try lab.run(.router, ["iptables", "-w", "-t", "raw", "-L", "PREROUTING", "-v", "-x", "-n"])
        for line in listing.lines where line.contains("rpfilter") {
            if let n = Int(line.split(separator: " ").first ?? "") { return n }
        }
        throw IntegrationFailure("no rpfilter rule in raw PREROUTING:\n\(listing.stdout)")
    }
}
