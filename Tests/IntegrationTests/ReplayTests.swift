import Foundation
import Masqd
import MasqdLab
import MasqdShell
import PacketCapture
import Testing

#if canImport(Glibc)
import Glibc
#endif

// `masqd replay` end to end: the real binary over captures built by hand and captured by
// tcpdump from a real session between two namespaces, the output read back by tcpdump.

@Suite("masqd replay", .serialized)
struct ReplayTests {
    @Test("a hand-built FTP and UDP capture: tcpdump reads the output, sources are the WAN address, PORT names it, checksums are correct")
    func handBuilt() throws {
        let masqd = try Integration.masqdExecutable()
        let dir = try ReplayRunner.temporaryDirectory("a")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let input = dir + "/in.pcap", output = dir + "/out.pcap"
        let frames = ReplayCapture.ftpAndUDP().map { ($0.microseconds, ReplayCapture.ethernet($0.ip)) }
        try Data(ReplayCapture.pcap(frames)).write(to: URL(fileURLWithPath: input))

        let result = try ReplayRunner.replay(masqd, [input, output, "--wan-address", "203.0.113.1", "--lan", "192.0.2.0/24"])
        #expect(result.succeeded, "\(result.summary)")
        #expect(result.stdout.isEmpty)
        let lines = result.stderr.split(separator: "\n").map(String.init)
        #expect(lines.count == 3, "\(result.stderr)")
        #expect(lines.first?.hasPrefix("replay: packet 10 (0.200000 s): not translated: 203.0.113.1 -> 203.0.113.2") == true)
        #expect(lines.dropFirst().first == "replay: packet 11 (0.300000 s): dropped: malformed_transport")
        let summary = lines.last ?? ""
        #expect(summary.hasPrefix("replay: read 11: 6 outbound, 4 inbound, 0 hairpin, 1 not translated (left out)"), "\(summary)")
        #expect(summary.contains("dropped 1 (malformed_transport 1); written 9 (link type 1)"), "\(summary)")
        #expect(summary.contains("ftp_rewrites 1"), "\(summary)")

        let dump = try ReplayRunner.tcpdump(output)
        #expect(dump.succeeded, "\(dump.summary)")
        #expect(dump.stderr.contains("link-type EN10MB"), "\(dump.stderr)")
        let packets = TcpdumpPacket.parse(dump.stdout)
        #expect(packets.count == 9, "\(dump.stdout)")
        let flows = packets.compactMap(\.flow)
        #expect(flows == [
            "203.0.113.1.40100 > 203.0.113.2.21", "203.0.113.2.21 > 192.0.2.10.40100", "203.0.113.1.40100 > 203.0.113.2.21",
            "203.0.113.2.21 > 192.0.2.10.40100", "203.0.113.1.40100 > 203.0.113.2.21", "203.0.113.1.40100 > 203.0.113.2.21",
            "203.0.113.2.21 > 192.0.2.10.40100", "203.0.113.1.5353 > 203.0.113.2.9999", "203.0.113.2.9999 > 192.0.2.10.5353",
        ])
        #expect(packets.filter { $0.contains(ReplayCapture.rewrittenPortCommand) }.count == 1, "the PORT line names 203,0,113,1")
        #expect(!packets.contains { $0.contains(ReplayCapture.portCommand) })
        // -vv verifies every checksum: TCP says "(correct)", UDP "udp sum ok"; a bad IP header says "bad cksum".
        #expect(!dump.stdout.contains("incorrect") && !dump.stdout.contains("bad"), "\(dump.stdout)")
        #expect(packets.filter { $0.text.contains("cksum") && $0.text.contains("(correct)") }.count == 7)
        #expect(packets.filter { $0.text.contains("udp sum ok") }.count == 2)
        #expect(packets.first?.text.hasPrefix("\(ReplayCapture.epochSeconds).000000000 ") == true, "timestamps kept")
        #expect(packets.last?.text.hasPrefix("\(ReplayCapture.epochSeconds).110000000 ") == true, "timestamps kept")
    }

    @Test("bad options and bad captures: one line naming the culprit, non-zero status")
    func errors() throws {
        let masqd = try Integration.masqdExecutable()
        let dir = try ReplayRunner.temporaryDirectory("e")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let garbage = dir + "/garbage.pcap"
        try Data("not a capture at all".utf8).write(to: URL(fileURLWithPath: garbage))
        let cases: [([String], String)] = [
            ([garbage, dir + "/o", "--lan", "192.0.2.0/24"], "masqd: --wan-address: required (the WAN address to masquerade behind)"),
            ([garbage, dir + "/o", "--wan-address", "203.0.113.1", "--lan", "192.0.2.0/24", "--port-range", "9-1"],
             "masqd: --port-range 9-1: expected A-B with 1 <= A <= B <= 65535"),
            ([garbage, dir + "/o", "--wan-address", "203.0.113.1", "--lan", "192.0.2.0/24"],
             "masqd: \(garbage): byte 0: not a pcap or pcapng file (magic 0x6e6f7420)"),
            ([dir + "/missing", dir + "/o", "--wan-address", "203.0.113.1", "--lan", "192.0.2.0/24"], "masqd: \(dir)/missing: no such file"),
        ]
        for (args, message) in cases {
            let result = try ReplayRunner.replay(masqd, args)
            #expect(result.status != 0 && !result.timedOut, "\(result.summary)")
            #expect(result.stderr == message + "\n", "\(result.summary)")
            #expect(!FileManager.default.fileExists(atPath: dir + "/o"))
        }
    }

    @Test("a real session captured by tcpdump on a veth and on any (SLL2): translated as masqd would; its FTP, seen without the server's side, is left alone")
    func realSession() throws {
        let masqd = try Integration.masqdExecutable()
        guard Shell.which("tcpdump") != nil else { throw IntegrationFailure("the replay test needs tcpdump (apt-get install -y tcpdump)") }
        let session = try CapturedSession(prefix: Integration.prefix("rp"))
        defer { session.destroy() }
        try session.create()
        let captures = try session.capture()

        for (file, linkType) in [(captures.veth, "EN10MB"), (captures.any, "LINUX_SLL2")] {
            let output = file + ".replayed"
            let result = try ReplayRunner.replay(masqd, [file, output, "--wan-address", "203.0.113.1", "--lan", "192.0.2.0/24"])
            #expect(result.succeeded, "\(result.summary)")
            let summary = result.stderr.split(separator: "\n").last.map(String.init) ?? ""
            #expect(summary.hasPrefix("replay: read "), "\(result.stderr)")
            // The capture has no server greeting (the server's packets are left out, below), so
            // the FTP helper cannot tell the stream is FTP: it leaves it alone (FTPStreamCheck).
            #expect(summary.hasSuffix("helper events: ftp_abandoned 1"), "\(summary)")
            let dump = try ReplayRunner.tcpdump(output, ["-A"])
            #expect(dump.succeeded, "\(dump.summary)")
            #expect(dump.stderr.contains("link-type \(linkType)"), "\(dump.stderr)")
            let packets = TcpdumpPacket.parse(dump.stdout)
            let flows = packets.compactMap(\.flow)
            #expect(flows.contains { $0.hasPrefix("203.0.113.1.") && $0.hasSuffix(" > 203.0.113.2.21") }, "\(flows)")
            #expect(flows.contains("203.0.113.1.5353 > 203.0.113.2.9999"), "\(flows)")
            // Every packet from the client to the server left as the WAN address.
            #expect(!flows.contains { $0.hasPrefix("192.0.2.10.") && $0.contains(" > 203.0.113.2.") }, "\(flows)")
            #expect(packets.contains { $0.contains(Array("PORT 192,0,2,10,".utf8)) }, "\(dump.stdout)")
            #expect(!packets.contains { $0.contains(Array("PORT 203,0,113,1,".utf8)) })
            // The capture is of the LAN side only: the server's packets to the client are left out.
            #expect(result.stderr.contains("not translated: 203.0.113.2 -> 192.0.2.10"), "\(result.stderr)")
        }
    }
}

/// Two namespaces joined by a veth pair: a client 192.0.2.10 and a server 203.0.113.2 (FTP on
/// 21 with pyftpdlib, a UDP port), and tcpdump on the client side.
struct CapturedSession {
    let prefix: String
    var client: String { prefix + "c" }
    var server: String { prefix + "s" }
    var clientLink: String { prefix + "c0" }
    var serverLink: String { prefix + "s0" }
    var workDir: String { "/tmp/masqd-replay-\(prefix)" }

    init(prefix: String) throws {
        guard prefix.utf8.count <= 12 else { throw IntegrationFailure("prefix \(prefix) too long for interface names") }
        self.prefix = prefix
    }

    func create() throws {
        destroy()
        try FileManager.default.createDirectory(atPath: workDir + "/ftp", withIntermediateDirectories: true)
        try Data("replayed\n".utf8).write(to: URL(fileURLWithPath: workDir + "/ftp/file.txt"))
        let steps: [[String]] = [
            ["ip", "netns", "add", client], ["ip", "netns", "add", server],
            ["ip", "-n", client, "link", "set", "lo", "up"], ["ip", "-n", server, "link", "set", "lo", "up"],
            ["ip", "-n", client, "link", "add", clientLink, "type", "veth", "peer", "name", serverLink, "netns", server],
            ["ip", "-n", client, "addr", "add", "192.0.2.10/24", "dev", clientLink],
            ["ip", "-n", server, "addr", "add", "203.0.113.2/24", "dev", serverLink],
            ["ip", "-n", client, "link", "set", clientLink, "up"], ["ip", "-n", server, "link", "set", serverLink, "up"],
            ["ip", "-n", client, "route", "add", "203.0.113.0/24", "dev", clientLink],
            ["ip", "-n", server, "route", "add", "192.0.2.0/24", "dev", serverLink],
        ]
        for step in steps { try Shell.check(step, timeout: 10) }
    }

    /// Runs the session with tcpdump on the veth (Ethernet) and on `any` (SLL2); returns the files.
    func capture() throws -> (veth: String, any: String) {
        let veth = workDir + "/veth.pcap", any = workDir + "/any.pcap"
        let python = LabTopology.python
        let ftpClient = """
            import ftplib
            f = ftplib.FTP()
            f.connect('203.0.113.2', 21, timeout=10)
            f.login()
            f.set_pasv(False)
            print(f.nlst())
            f.quit()
            """
        let udpClient = """
            import socket
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.bind(('192.0.2.10', 5353))
            s.sendto(b'hello replay', ('203.0.113.2', 9999))
            """
        // One shell script, so each background process is stopped by its own pid.
        let script = """
            set -u
            cd \(workDir)
            ip netns exec \(server) \(python) -m pyftpdlib -i 203.0.113.2 -p 21 -d \(workDir)/ftp >ftpd.log 2>&1 & ftpd=$!
            ip netns exec \(client) tcpdump -i \(clientLink) --immediate-mode -U -s 2048 -B 16384 -w \(veth) >veth.log 2>&1 & dump1=$!
            ip netns exec \(client) tcpdump -i any -y LINUX_SLL2 --immediate-mode -U -s 2048 -B 16384 -w \(any) >any.log 2>&1 & dump2=$!
            for i in $(seq 100); do
                grep -q listening veth.log && grep -q listening any.log && ip netns exec \(server) ss -ltn | grep -q ':21 ' && break
                sleep 0.1
            done
            ip netns exec \(client) \(python) -c "\(ftpClient)" || echo "ftp client failed"
            ip netns exec \(client) \(python) -c "\(udpClient)" || echo "udp client failed"
            sleep 0.5
            kill -INT $dump1 $dump2; wait $dump1 $dump2
            kill $ftpd; wait $ftpd
            cat veth.log any.log
            """
        let result = try Shell.run(["bash", "-c", script], timeout: 60)
        guard result.succeeded, !result.output.contains("failed"), FileManager.default.fileExists(atPath: veth),
              FileManager.default.fileExists(atPath: any) else {
            throw IntegrationFailure("capturing the session failed: \(result.summary)")
        }
        // With -s 0 the kernel ring held a handful of frames and a loaded machine lost packets
        // (the PORT command went missing); a capture with holes would test nothing, so say so.
        let dropLines = result.output.split(separator: "\n").filter { $0.hasSuffix("packets dropped by kernel") }
        guard dropLines.count == 2, dropLines.allSatisfy({ $0.hasPrefix("0 ") }) else {
            throw IntegrationFailure("tcpdump lost packets while capturing the session: \(dropLines)")
        }
        return (veth, any)
    }

    /// Stops what still runs in the namespaces (only this test's processes), removes them and the files.
    func destroy() {
        for namespace in [client, server] where FileManager.default.fileExists(atPath: "/run/netns/\(namespace)") {
            if let pids = try? Shell.run(["ip", "netns", "pids", namespace], timeout: 5) {
                for pid in pids.stdout.split(whereSeparator: \.isWhitespace).compactMap({ Int32($0) }) where pid > 1 {
                    kill(pid, SIGKILL)
                }
            }
            _ = try? Shell.run(["ip", "netns", "del", namespace], timeout: 10)
        }
        try? FileManager.default.removeItem(atPath: workDir)
    }
}
