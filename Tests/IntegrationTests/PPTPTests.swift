import Foundation
import Masqd
import MasqdLab
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// PPTP end to end (PPTPHelper, GRECallTable): h1 and h2 call one PPTP server at once, both
/// with call ID 1, over real TCP connections to port 1723 through the real engine with the
/// pptp helper on. This kernel has no PPP, so the control messages are written by Python on
/// real sockets and the enhanced GRE by scapy on both ends. Queue index 132.
@Suite(.integrationLimit)
struct PPTPTests: LabAddresses {
    /// The PPTP server: answers each Outgoing-Call-Request with call ID 100, 101, … and the
    /// caller's call ID as peer, then echoes each call's GRE back to the call ID it was told.
    var serverScript: String {
        """
        from scapy.all import *
        import socket as sk, struct, threading, time
        conf.verb = 0
        calls = {}
        lock = threading.Lock()
        def handle(conn, addr, n):
            data = b""
            while len(data) < 168:
                chunk = conn.recv(168 - len(data))
                if not chunk: return
                data += chunk
            call_id = struct.unpack("!H", data[12:14])[0]
            server_id = 100 + n
            with lock: calls[server_id] = call_id
            print("call", addr[0], call_id, server_id, flush=True)
            conn.sendall(struct.pack("!HHIHH", 32, 1, 0x1a2b3c4d, 8, 0) + struct.pack("!HHBBHIHHI", server_id, call_id, 1, 0, 0, 64000, 64, 0, 0))
            time.sleep(30)
        def gre(p):
            if IP not in p or p[IP].dst != "\(server)": return
            raw = bytes(p[IP].payload)
            if len(raw) < 12: return
            key = struct.unpack("!H", raw[6:8])[0]
            print("gre", p[IP].src, key, raw[12:].decode(errors="replace"), flush=True)
            with lock: peer = calls.get(key)
            if peer is None: return
            payload = b"answer-" + raw[12:]
            send(IP(src="\(server)", dst=p[IP].src, proto=47)/Raw(struct.pack("!BBHHHI", 0x30, 0x01, 0x880b, len(payload), peer, 1) + payload))
        sniffer = AsyncSniffer(iface="eth0", filter="ip proto 47", prn=gre, store=0)
        sniffer.start()
        srv = sk.socket()
        srv.setsockopt(sk.SOL_SOCKET, sk.SO_REUSEADDR, 1)
        srv.bind(("0.0.0.0", 1723))
        srv.listen(4)
        srv.settimeout(60)
        time.sleep(1)
        print("ready", flush=True)
        for n in range(2):
            conn, addr = srv.accept()
            threading.Thread(target=handle, args=(conn, addr, n), daemon=True).start()
        time.sleep(30)
        """
    }

    /// A PPTP client: call ID 1, then one GRE packet to the server's call ID, tagged, and
    /// what comes back: `reply SERVER-ID PEER-ID`, `back DST KEY PAYLOAD`, `done`.
    func clientScript(tag: String) -> String {
        """
        from scapy.all import *
        import socket as sk, struct, time
        conf.verb = 0
        c = sk.create_connection(("\(server)", 1723), timeout=10)
        c.sendall(struct.pack("!HHIHH", 168, 1, 0x1a2b3c4d, 7, 0) + struct.pack("!HH", 1, 7) + bytes(152))
        data = b""
        while len(data) < 32:
            chunk = c.recv(32 - len(data))
            if not chunk: break
            data += chunk
        server_id, peer_id = struct.unpack("!HH", data[12:16])
        print("reply", server_id, peer_id, flush=True)
        s = AsyncSniffer(iface="eth0", filter="ip proto 47 and src host \(server)")
        s.start()
        time.sleep(1.5)
        payload = b"\(tag)"
        send(IP(dst="\(server)", proto=47)/Raw(struct.pack("!BBHHHI", 0x30, 0x01, 0x880b, len(payload), server_id, 1) + payload))
        time.sleep(2.5)
        for p in s.stop():
            raw = bytes(p[IP].payload)
            print("back", p[IP].dst, struct.unpack("!H", raw[6:8])[0], raw[12:].decode(errors="replace"), flush=True)
        print("done", flush=True)
        """
    }

    @Test("two LAN hosts' PPTP calls to one server at once, both with call ID 1: distinct call IDs on the WAN side, both answered over GRE")
    func twoHostsOneServer() throws {
        try Integration.withEngine(scapy: true, "ppa", queue: Integration.queue(132), options: ["--helpers", "ftp,pptp"]) { lab, masqd, _ in
            let pptpServer = try lab.spawn(.server, [LabTopology.python, "-c", serverScript], name: "pptp-server")
            #expect(Semantics.waitUntil(timeout: 20) { pptpServer.output.contains("ready") }, "the PPTP server did not start:\n\(pptpServer.output)")
            let clients = try [(LabTopology.Node.host1, h1, "from-h1"), (.host2, h2, "from-h2")].map { node, address, tag in
                (address, tag, try lab.spawn(node, [LabTopology.python, "-c", clientScript(tag: tag)], name: "pptp-\(tag)"))
            }
            for (_, tag, client) in clients {
                #expect(Semantics.waitUntil(timeout: 30) { client.output.contains("done") }, "\(tag) did not finish:\n\(client.output)")
            }
            // The server saw two calls from the WAN address with distinct call IDs, one of them 1.
            let calls = pptpServer.lines.filter { $0.hasPrefix("call ") }.map { $0.split(separator: " ").map(String.init) }
            #expect(calls.count == 2 && calls.allSatisfy { $0[1] == wan }, "calls at the server:\n\(pptpServer.output)")
            #expect(Set(calls.map { $0[2] }).count == 2 && calls.contains { $0[2] == "1" }, "call IDs at the server:\n\(pptpServer.output)")
            for (address, tag, client) in clients {
                // Each host got its own call ID back, and the server's answer to its GRE, to its address, key 1.
                #expect(client.lines.contains { $0.hasPrefix("reply ") && $0.hasSuffix(" 1") }, "\(tag):\n\(client.output)")
                #expect(client.lines.contains("back \(address) 1 answer-\(tag)"), "\(tag) got no GRE answer:\n\(client.output)\nserver:\n\(pptpServer.output)")
                #expect(!client.output.contains("answer-from-h\(tag == "from-h1" ? 2 : 1)"), "\(tag) got the other host's GRE:\n\(client.output)")
                #expect(pptpServer.output.contains("gre \(wan) ") && pptpServer.output.contains(" \(tag)"), "the server did not get \(tag)'s GRE from \(wan)")
            }
            let stats = try Semantics.stats(lab, masqd)
            #expect(stats["gre_calls_active"] == 2, "gre_calls_active \(stats["gre_calls_active"] ?? -1)")
            #expect(stats["helper_pptp_expectations"] == 2, "helper_pptp_expectations \(stats["helper_pptp_expectations"] ?? -1)")
        }
    }
}
