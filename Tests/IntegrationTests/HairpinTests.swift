import Foundation
import Masqd
import MasqdLab
import MasqdShell
import Testing

/// Hairpinning end to end (RFC 4787 REQ-9): a LAN host reaches another LAN host through the
/// WAN address — to a forwarded port, and to the mapping a UDP peer holds open — and each
/// side sees the other as the WAN address, as an outside host would. Queue indices 32-35.
@Suite(.integrationLimit)
struct HairpinTests: LabAddresses {
    @Test("h2 fetches h1's web server through the WAN address and a forward; h1 sees the WAN address as the client", arguments: Integration.firewalls)
    func hairpinToForward(firewall: FirewallChoice) throws {
        try Integration.withEngine(Integration.tag("hpa", firewall), queue: Integration.queue(32, firewall), options: ["--forward", "tcp:8080=\(h1):80"],
                                 firewall: firewall) { lab, masqd in
            let file = try lab.serveRandomFile("hairpin.bin", megabytes: 2, from: .host1, port: 80, helperName: "http-h1")
            let copy = lab.workDir + "/hairpin-copy.bin"
            let curl = try lab.curl(from: .host2, "http://\(wan):8080/hairpin.bin", to: copy, writeOut: "%{remote_ip}:%{remote_port}", maxTime: 30)
            #expect(curl.succeeded, "\(curl.summary)")
            #expect(curl.stdout == "\(wan):8080", "h2 must talk to the WAN address: \(curl.stdout)")
            #expect(try Semantics.sha256(copy) == file.sha256, "the hairpinned download differs")
            let clients = file.clients
            #expect(!clients.isEmpty && clients.allSatisfy { $0 == wan }, "h1 must see the WAN address as its client, saw \(clients)")
            let stats = try Semantics.stats(lab, masqd)
            #expect((stats["hairpin_translated"] ?? 0) > 0, "hairpin_translated: \(stats["hairpin_translated"] ?? -1)")
        }
    }

    @Test("two LAN peers open a UDP path to each other through the WAN address, as across two NATs; a stranger stays out")
    func hairpinHolePunching() throws {
        try Integration.withEngine("hpb", queue: Integration.queue(33)) { lab, masqd in
            let server = LabTopology.serverAddress
            // Each peer: bind its port, send once to the server (its mapping keeps the port),
            // send to the other's mapped endpoint, then report what arrives for 4 s.
            func peer(_ port: Int, _ other: Int, _ message: String, delay: Double) -> [String] {
                let script = """
                import socket, time, select
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                s.bind(("0.0.0.0", \(port)))
                s.sendto(b"hello server", ("\(server)", 9))
                time.sleep(\(delay))
                s.sendto(b"\(message)", ("\(wan)", \(other)))
                end = time.time() + 4
                while time.time() < end:
                    if select.select([s], [], [], 0.2)[0]:
                        data, peer = s.recvfrom(2048)
                        print("got %s from %s:%d" % (data.decode(), peer[0], peer[1]), flush=True)
                        s.sendto(b"\(message) again", ("\(wan)", \(other)))
                """
                return ["/usr/bin/python3", "-c", script]
            }
            let first = try lab.spawn(.host1, peer(5000, 6000, "from-h1", delay: 0.5), name: "peer-h1")
            let second = try lab.spawn(.host2, peer(6000, 5000, "from-h2", delay: 1.5), name: "peer-h2")
            _ = first.waitForExit(timeout: 10)
            _ = second.waitForExit(timeout: 10)
            // h1 spoke first (refused: h2 had not sent to it yet) but that opened h1's side;
            // h2's packet then gets through, and h1's answer reaches h2.
            #expect(first.output.contains("got from-h2 from \(wan):6000"), "h1 heard:\n\(first.output)")
            #expect(second.output.contains("got from-h1 again from \(wan):5000"), "h2 heard:\n\(second.output)")
            // A stranger inside (h2 from another port) that h1 never sent to stays out: its
            // packet is handed to the router's stack untranslated, not to h1.
            let before = try Semantics.stats(lab, masqd)
            _ = try lab.run(.host2, lab.helper(["udpsend", wan, "5000", "--sport", "6001", "--msg", "stranger", "--timeout", "0.5", "--tries", "1"]), timeout: 10)
            let after = try Semantics.stats(lab, masqd)
            #expect((before["hairpin_translated"] ?? 0) >= 2, "hairpin_translated \(before["hairpin_translated"] ?? -1)")
            #expect(after["hairpin_translated"] == before["hairpin_translated"], "the stranger's packet was hairpinned to h1")
            #expect((after["hairpin_passed"] ?? 0) > (before["hairpin_passed"] ?? 0), "the stranger's packet was not counted as passed")
        }
    }
}
