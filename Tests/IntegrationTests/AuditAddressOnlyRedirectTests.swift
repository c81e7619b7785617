import Foundation
import Masqd
import MasqdLab
import MasqdShell
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// NAT events of address-only rows and redirected connections end to end: h1 sends ESP and
/// plain GRE (scapy) to the server and fetches a page over HTTP through the transparently
/// redirected local proxy (RedirectTests' relay); the real masqd writes journal lines
/// (--audit-log sessions) and sends IPFIX to nfdump's nfcapd. The journal must have each
/// row's and the redirect's creation and removal, and `nfdump -r` NAT44 session creates and
/// deletes (natEvent 4/5): ports 0 and the protocol for ESP and GRE, the proxy's address and
/// port as the redirect's post-NAT destination — matching what `masqd flows` listed. Queue 138.
@Suite(.integrationLimit)
struct AuditAddressOnlyRedirectTests: LabAddresses {
    let routerLAN = LabTopology.routerLANAddress

    @Test("ESP, GRE and a redirected HTTP request: journal lines and nfcapd's natEvent 4/5 records for each, created and removed")
    func addressOnlyAndRedirectAudited() throws {
        let masqd = try Integration.masqdExecutable()
        let queue = Integration.queue(138)
        try Integration.withTopology("aev") { lab in
            let collector = try AuditExportTests.startCollector(lab)

            let options = ["--redirect", "tcp:80=3128"]
            let install = try lab.masqd(masqd, ["rules", "install"] + lab.engineOptions(queue: queue) + options)
            try #require(install.succeeded, "\(install.summary)")
            let engine = try lab.startEngine(masqd: masqd, queue: queue, extra: options + [
                "--audit-log", "sessions", "--ipfix-collector", "\(server):4739",
                "--timeout", "other=3", "--timeout", "tcp-closed=3", "--timeout", "tcp-transitory=3",
            ])
            defer { engine.stop(grace: 5) }

            // ESP and plain GRE from h1: one packet each makes the row (nobody answers).
            _ = try Robust.scapy(lab, .host1, """
                send(IP(dst="\(server)", proto=50)/Raw(b"\\x00\\x00\\x10\\x01\\x00\\x00\\x00\\x01audit"))
                send(IP(dst="\(server)")/GRE()/IP(src="10.9.9.1", dst="10.9.9.2")/ICMP())
                """)
            // HTTP through the local proxy.
            let http = try lab.serveFile("page.bin", contents: Data(repeating: 0x61, count: 10_000), from: .server, port: 80).http
            let proxy = try lab.spawn(.router, [LabTopology.python, "-u", "-c", RedirectTests.proxyScript(masqd: masqd, control: lab.controlPath)],
                                      name: "proxy")
            #expect(Semantics.waitUntil(timeout: 5) { proxy.output.contains("proxy listening") }, "proxy did not start: \(proxy.output)")
            let curl = try lab.curl(from: .host1, "http://\(server)/page.bin", writeOut: "%{size_download} %{local_port}", maxTime: 20)
            let fields = curl.stdout.split(separator: " ").map(String.init)
            #expect(curl.succeeded && fields.first == "10000", "\(curl.summary)\n\(http.output)\nproxy:\n\(proxy.output)")
            let clientPort = fields.count == 2 ? fields[1] : "?"

            let listed = try lab.masqd(masqd, ["flows", "--control", lab.controlPath]).stdout
            for line in ["esp \(h1) -> \(server) via \(wan) expires ", "gre \(h1) -> \(server) via \(wan) expires ",
                         "\(h1):\(clientPort) -> \(server):80 redirected \(routerLAN):3128"] {
                #expect(listed.contains(line), "masqd flows lacks '\(line)':\n\(listed)")
            }

            // The rows idle out (other=3) and the redirect, closed, too (tcp-closed=3): the sweep
            // removes them, the exporter sends the deletes.
            let idle = try Semantics.stats(lab, masqd, within: 15) { $0["other_flows_active"] == 0 && $0["redirect_flows_active"] == 0 }
            let live = try lab.masqd(masqd, ["flows", "--control", lab.controlPath]).stdout
            #expect(idle["other_flows_active"] == 0 && idle["redirect_flows_active"] == 0, "rows still live after 15 s:\n\(live)")
            usleep(300_000) // the exporter's round (20 ms) and the datagrams' way
            let stats = try Semantics.stats(lab, masqd)
            proxy.stop(grace: 1)

            // The journal (--audit-log sessions): a creation and a removal line each.
            let lines = engine.lines.filter { $0.contains("nat-event ") }
            for (proto, name) in [(50, "esp"), (47, "gre")] {
                let fields = "proto=\(name) internal=\(h1) external=\(wan) remote=\(server)"
                #expect(lines.filter { $0.contains("nat-event address-only-created \(fields) reason=outbound time=") }.count == 1,
                        "\(proto): \(lines)")
                #expect(lines.filter { $0.contains("nat-event address-only-removed \(fields) reason=expired time=") }.count == 1,
                        "\(proto): \(lines)")
            }
            let redirect = "proto=tcp internal=\(h1):\(clientPort) external=\(routerLAN):3128 remote=\(server):80"
            #expect(lines.filter { $0.contains("nat-event redirect-created \(redirect) reason=outbound time=") }.count == 1, "\(lines)")
            #expect(lines.filter { $0.contains("nat-event redirect-removed \(redirect) reason=tcp-closed time=") }.count == 1, "\(lines)")
            // Nothing was masqueraded (the proxy's own connection leaves from the router): these six only.
            #expect(lines.count == 6 && stats["audit_lines"] == 6, "\(lines)")

            let records = try AuditExportTests.collected(collector)
            let seen = records.map(\.description).joined(separator: "\n")
            for event in [4, 5] {
                for proto in [50, 47] {
                    let found = records.filter {
                        $0.event == event && $0.proto == proto && $0.source == h1 && $0.sourcePort == 0 && $0.destination == server
                            && $0.destinationPort == 0 && $0.translated == wan && $0.translatedPort == 0
                    }
                    #expect(found.count == 1, "natEvent \(event) for protocol \(proto): \(found.count) records; nfdump has:\n\(seen)")
                }
                let found = records.filter {
                    $0.event == event && $0.proto == 6 && $0.source == h1 && String($0.sourcePort) == clientPort && $0.destination == server
                        && $0.destinationPort == 80 && $0.destinationTranslated == routerLAN && $0.destinationTranslatedPort == 3128
                        && $0.translated == h1 && String($0.translatedPort) == clientPort // the source is not translated
                }
                #expect(found.count == 1, "natEvent \(event) for the redirect: \(found.count) records; nfdump has:\n\(seen)")
            }
            #expect(records.count == 6, "records of other flows:\n\(seen)")
            let after = try Semantics.stats(lab, masqd)
            #expect(after["ipfix_records_sent"] == 6 && after["ipfix_send_errors"] == 0 && after["nat_events_lost"] == 0
                    && after["audit_queue_dropped"] == 0, "\(after)")
        }
    }
}
