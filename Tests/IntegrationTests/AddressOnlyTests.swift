import Foundation
@testable import Masqd
@testable import MasqdLab
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Address-only NAT end to end (NATTranslator-AddressOnly.swift): ESP, plain GRE and protocol
/// 253 from h1 through the real engine and rules to the server and back. This kernel has no
/// ESP or GRE endpoint (KERNEL-FACTS), so scapy crafts the packets on both ends: in the
/// server an echo that sends every payload back to whoever sent it, in the LAN hosts a
/// sender that sniffs for the answer. Queue index 131.
@Suite(.integrationLimit)
struct AddressOnlyTests: LabAddresses {
    static let protocols: [(number: Int, name: String, payload: String)] = [
        (50, "esp", #"b"\x00\x00\x10\x01\x00\x00\x00\x01" + TAG"#),               // SPI 0x1001, sequence 1
        (47, "gre", #"bytes(GRE()/IP(src="10.9.9.1", dst="10.9.9.2")/ICMP()/TAG)"#), // plain GRE around IPv4
        (253, "proto-253", "TAG"),
    ]

    /// The server's echo: every ESP, GRE or 253 packet addressed to it goes back, payload unchanged.
    var echoScript: String {
        """
        from scapy.all import *
        conf.verb = 0
        def answer(p):
            if IP not in p or p[IP].dst != "\(server)": return
            payload = bytes(p[IP].payload)
            print("got", p[IP].proto, p[IP].src, payload.hex(), flush=True)
            send(IP(src="\(server)", dst=p[IP].src, proto=p[IP].proto)/Raw(payload))
        sniff(iface="eth0", filter="ip proto 50 or ip proto 47 or ip proto 253", prn=answer, store=0, timeout=60,
              started_callback=lambda: print("ready", flush=True))
        """
    }

    /// Sends one packet of `protocolNumber` to the server from a LAN host and prints what
    /// came back from the server of that protocol: `back PROTO SRC DST HEX`.
    func sendAndListen(_ protocolNumber: Int, payload: String, tag: String) -> String {
        """
        import time
        TAG = b"\(tag)"
        PAYLOAD = \(payload)
        print("sent", PAYLOAD.hex(), flush=True)
        s = AsyncSniffer(iface="eth0", filter="src host \(server) and ip proto \(protocolNumber)")
        s.start()
        time.sleep(0.5)
        send(IP(dst="\(server)", proto=\(protocolNumber))/Raw(PAYLOAD))
        time.sleep(2)
        for p in s.stop():
            print("back", p[IP].proto, p[IP].src, p[IP].dst, bytes(p[IP].payload).hex(), flush=True)
        """
    }

    @Test("the rules steer every protocol, in both backends: no queueing rule names one but the router's own ICMP errors")
    func rulesMatchEveryProtocol() throws {
        for firewall in ["iptables", "nft"] {
            let settings = try OptionCheck.settings(["--wan", "eth1", "--lan", "192.0.2.0/24", "--firewall", firewall])
            let plan = FirewallPlan(settings)
            let restricted = plan.points.filter { $0.ipProtocol != nil }
            #expect(restricted.count == 1 && restricted[0].ipProtocol == "icmp" && restricted[0].sourceType == .local,
                    "\(firewall): a steering point names a protocol: \(restricted)")
            // The spoofing drop and the inbound, outbound and hairpin queueing points are there, protocol-blind.
            #expect(plan.points.contains { $0.action == .drop && $0.ipProtocol == nil })
            #expect(plan.points.contains { $0.hook == .prerouting && $0.input == .named("eth1") && $0.action == .queue && $0.ipProtocol == nil })
            #expect(plan.points.contains { $0.hook == .postrouting && $0.source != nil && $0.ipProtocol == nil })
            #expect(plan.points.contains { $0.hook == .forward && $0.sourceType == .local && $0.ipProtocol == nil })
            let text = SteeringRules.printed(settings).joined(separator: "\n")
            let protocolMatches = text.split(separator: "\n").filter { $0.contains(" -p ") || $0.contains("l4proto") || $0.contains("ip protocol") }
            #expect(protocolMatches.count == 1 && protocolMatches[0].contains("icmp"), "\(firewall):\n\(text)")
        }
    }

    @Test("ESP, GRE and protocol 253: h1's packets reach the server from the WAN address and the answers reach h1; h2 to the same server is refused and counted")
    func addressOnlyBothWaysAndSecondHostRefused() throws {
        try Integration.withEngine(scapy: true, "aoa", queue: Integration.queue(131)) { lab, masqd, _ in
            let echo = try lab.spawn(.server, [LabTopology.python, "-c", echoScript], name: "address-only-echo")
            #expect(Semantics.waitUntil(timeout: 20) { echo.output.contains("ready") }, "the server's echo did not start:\n\(echo.output)")
            let before = try Semantics.stats(lab, masqd)
            for proto in Self.protocols {
                let tag = "h1-\(proto.name)"
                let run = try Robust.scapy(lab, .host1, sendAndListen(proto.number, payload: proto.payload, tag: tag))
                let sent = run.lines.first { $0.hasPrefix("sent ") }.map { String($0.dropFirst(5)) } ?? "?"
                // At the server: from the WAN address, payload unchanged.
                #expect(Semantics.waitUntil(timeout: 5) { echo.output.contains("got \(proto.number) \(wan) \(sent)") },
                        "\(proto.name): the server did not get h1's packet from \(wan):\n\(echo.output)")
                // Back at h1: from the server, to h1's own address, payload unchanged.
                #expect(run.lines.contains("back \(proto.number) \(server) \(h1) \(sent)"),
                        "\(proto.name): the answer did not reach h1 translated:\n\(run.stdout)")

                // h2 to the same (protocol, server) while h1's translation lives: refused.
                let refused = try Robust.scapy(lab, .host2, sendAndListen(proto.number, payload: proto.payload, tag: "h2-\(proto.name)"))
                let sentByH2 = refused.lines.first { $0.hasPrefix("sent ") }.map { String($0.dropFirst(5)) } ?? "?"
                #expect(!refused.lines.contains { $0.hasPrefix("back ") }, "\(proto.name): h2 got an answer:\n\(refused.stdout)")
                #expect(!echo.output.contains(sentByH2), "\(proto.name): h2's packet reached the server:\n\(echo.output)")
            }
            let moved = Robust.moved(before, try Semantics.stats(lab, masqd))
            #expect(moved["drop_address_only_remote_in_use"] == 3, "h2's three packets must be refused: \(Robust.drops(moved))")
            #expect(moved["other_flows_created"] == 3, "one address-only translation per protocol: \(moved)")
            let flows = try lab.masqd(masqd, ["flows", "other", "--control", lab.controlPath])
            for name in ["esp", "gre", "proto-253"] {
                #expect(flows.stdout.contains("\(name) \(h1) -> \(server) via \(wan) expires "), "masqd flows other:\n\(flows.stdout)")
            }
            #expect(!flows.stdout.contains(h2), "h2 holds no translation:\n\(flows.stdout)")
        }
    }
}
