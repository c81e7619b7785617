import Foundation
import Masqd
import MasqdLab
import MasqdShell
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// NAT events end to end: LAN hosts make TCP and UDP flows through the real masqd, which
/// writes journal lines (--audit-log) and sends IPFIX to a real collector, nfdump's nfcapd,
/// in the "internet" namespace; `nfdump -r` of its files must show, for each flow `masqd flows`
/// listed, a session create with the same addresses and ports — and a delete once the flow
/// has expired — and the mapping (BIB) create and delete.
@Suite(.integrationLimit)
struct AuditExportTests: LabAddresses {
    /// One `masqd flows` line: `udp 192.0.2.11:40000 -> 203.0.113.2:9999 via 203.0.113.1:40000 expires 3s`.
    struct Flow: Equatable, CustomStringConvertible {
        var proto: Int
        var inside: String, insidePort: Int
        var remote: String, remotePort: Int
        var outside: String, outsidePort: Int

        init?(line: String) {
            let f = line.split(separator: " ").map(String.init)
            guard let arrow = f.firstIndex(of: "->"), let via = f.firstIndex(of: "via"), arrow >= 1 else { return nil }
            func endpoint(_ text: String) -> (String, Int)? {
                let p = text.split(separator: ":")
                guard p.count == 2, let port = Int(p[1]) else { return nil }
                return (String(p[0]), port)
            }
            guard let i = endpoint(f[arrow - 1]), let r = endpoint(f[arrow + 1]), let o = endpoint(f[via + 1]) else { return nil }
            switch f[0] {
            case "tcp": proto = 6
            case "udp": proto = 17
            default: return nil
            }
            (inside, insidePort) = i
            (remote, remotePort) = r
            (outside, outsidePort) = o
        }

        var description: String { "\(proto) \(inside):\(insidePort) -> \(remote):\(remotePort) via \(outside):\(outsidePort)" }
    }

    /// One record of `nfdump -o json`, the fields we compare.
    struct Record: CustomStringConvertible {
        var event: Int
        var proto: Int
        var source: String, sourcePort: Int
        var destination: String, destinationPort: Int
        var translated: String, translatedPort: Int
        /// The post-NAT destination (a redirect's proxy; the destination itself for the rest).
        var destinationTranslated: String, destinationTranslatedPort: Int
        var description: String {
            "natEvent \(event) proto \(proto) \(source):\(sourcePort) -> \(destination):\(destinationPort) xlate \(translated):\(translatedPort) dst-xlate \(destinationTranslated):\(destinationTranslatedPort)"
        }

        func matches(_ flow: Flow, session: Bool) -> Bool {
            proto == flow.proto && source == flow.inside && sourcePort == flow.insidePort
                && translated == flow.outside && translatedPort == flow.outsidePort
                && (!session || (destination == flow.remote && destinationPort == flow.remotePort))
        }
    }

    static func records(json text: String) throws -> [Record] {
        guard let array = try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [[String: Any]] else {
            throw IntegrationFailure("nfdump -o json printed no list:\n\(text)")
        }
        func int(_ value: Any?) -> Int { (value as? Int) ?? (value as? String).flatMap { Int($0) } ?? -1 }
        return array.map { r in
            Record(event: int(r["nat_event_id"]), proto: int(r["proto"]),
                   source: r["src4_addr"] as? String ?? "", sourcePort: int(r["src_port"]),
                   destination: r["dst4_addr"] as? String ?? "", destinationPort: int(r["dst_port"]),
                   translated: r["src4_xlt_ip"] as? String ?? "", translatedPort: int(r["src_xlt_port"]),
                   destinationTranslated: r["dst4_xlt_ip"] as? String ?? "", destinationTranslatedPort: int(r["dst_xlt_port"]))
        }
    }

    /// nfdump's nfcapd in the server namespace on SERVER:4739, writing under the lab's work
    /// directory. Started before masqd: the templates go out at its start (then every 60 s).
    static func startCollector(_ lab: LabTopology) throws -> (process: BackgroundProcess, directory: String) {
        guard Shell.which("nfcapd") != nil, Shell.which("nfdump") != nil else {
            throw IntegrationFailure("nfcapd and nfdump are needed (Deploy/install-deps.sh --tests installs nfdump)")
        }
        let server = LabTopology.serverAddress
        let directory = lab.workDir + "/nfcapd"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let collector = try lab.spawn(.server, ["nfcapd", "-w", directory, "-b", server, "-p", "4739", "-t", "3600"], name: "nfcapd")
        let listening = Semantics.waitUntil(timeout: 5) {
            (try? lab.run(.server, ["ss", "-Huln", "sport = :4739"]))?.stdout.contains(":4739") == true
        }
        #expect(listening, "nfcapd did not listen on \(server):4739:\n\(collector.output)")
        return (collector, directory)
    }

    /// Stops the collector (nfcapd writes its file out when it ends) and reads back every record.
    static func collected(_ collector: (process: BackgroundProcess, directory: String)) throws -> [Record] {
        collector.process.stop(grace: 5)
        let files = try FileManager.default.contentsOfDirectory(atPath: collector.directory).filter { $0.hasPrefix("nfcapd.") }.sorted()
        #expect(!files.isEmpty, "nfcapd wrote no file:\n\(collector.process.output)")
        var records: [Record] = []
        for file in files {
            let dump = try Shell.run(["nfdump", "-r", collector.directory + "/" + file, "-o", "json"], timeout: 20)
            #expect(dump.succeeded, "\(dump.summary)")
            records += try Self.records(json: dump.stdout)
        }
        return records
    }

    @Test("TCP and UDP flows: nfcapd's records match `masqd flows`, deletes follow expiry; the journal has a line per mapping")
    func ipfixToNfcapd() throws {
        let masqd = try Integration.masqdExecutable()
        let queue = Integration.queue(137)
        try Integration.withTopology("aud") { lab in
            let collector = try Self.startCollector(lab)

            try lab.installRules(masqd: masqd, queue: queue)
            let engine = try lab.startEngine(masqd: masqd, queue: queue, extra: [
                "--audit-log", "mappings", "--ipfix-collector", "\(server):4739", "--ipfix-domain-id", "42",
                "--timeout", "udp=3", "--timeout", "tcp-closed=3", "--timeout", "tcp-transitory=3",
            ])
            defer { engine.stop(grace: 5) }

            let http = try lab.serveFile("file.bin", contents: Data(repeating: 0x61, count: 100_000), from: .server, port: 8080).http
            _ = try lab.spawnHelper(.server, ["udpecho", "9999"], name: "udpecho")
            let curl = try lab.curl(from: .host1, "http://\(server):8080/file.bin", writeOut: "%{size_download}", maxTime: 20)
            #expect(curl.succeeded && curl.stdout == "100000", "\(curl.summary)\n\(http.output)")
            let udp = try lab.run(.host2, lab.helper(["udpsend", server, "9999", "--sport", "40000", "--msg", "audit"]), timeout: 20)
            #expect(udp.succeeded, "\(udp.summary)")

            let listed = try lab.masqd(masqd, ["flows", "--control", lab.controlPath])
            let flows = listed.stdout.split(separator: "\n").compactMap { Flow(line: String($0)) }
            let tcp = flows.filter { $0.proto == 6 && $0.inside == LabTopology.host1Address && $0.remotePort == 8080 }
            let udpFlows = flows.filter { $0.proto == 17 && $0.inside == LabTopology.host2Address && $0.remotePort == 9999 }
            #expect(tcp.count == 1 && udpFlows.count == 1, "masqd flows:\n\(listed.stdout)")
            #expect(flows.allSatisfy { $0.outside == wan && $0.remote == server }, "masqd flows:\n\(listed.stdout)")

            // The flows end (short timeouts): the sweep removes them, the exporter sends the deletes.
            #expect(try Semantics.flowsDrained(lab, masqd, timeout: 15), "flows still listed after 15 s")
            usleep(300_000) // the exporter's round (20 ms) and the datagrams' way
            let stats = try Semantics.statsText(lab, masqd)
            let counters = Semantics.counters(stats)

            let records = try Self.collected(collector)
            let seen = records.map(\.description).joined(separator: "\n")
            for flow in tcp + udpFlows {
                for (event, session) in [(4, true), (5, true), (8, false), (9, false)] {
                    let found = records.filter { $0.event == event && $0.matches(flow, session: session) }
                    #expect(found.count == 1, "natEvent \(event) for \(flow): \(found.count) records; nfdump has:\n\(seen)")
                }
            }
            // Nothing but these flows crossed: every record is one of theirs.
            #expect(records.allSatisfy { r in (tcp + udpFlows).contains { r.matches($0, session: r.event == 4 || r.event == 5) } },
                    "records of other flows:\n\(seen)")
            #expect(counters["ipfix_records_sent"] == records.count, "stats:\n\(stats)")
            #expect(counters["ipfix_send_errors"] == 0 && counters["nat_events_lost"] == 0 && counters["audit_queue_dropped"] == 0, "stats:\n\(stats)")
            #expect((counters["ipfix_templates_sent"] ?? 0) >= 1)

            // The journal lines: a mapping's creation and removal each, nothing for sessions (--audit-log mappings).
            let lines = engine.lines.filter { $0.contains("nat-event ") }
            for flow in tcp + udpFlows {
                let proto = flow.proto == 6 ? "tcp" : "udp"
                let fields = "proto=\(proto) internal=\(flow.inside):\(flow.insidePort) external=\(flow.outside):\(flow.outsidePort)"
                let expiry = flow.proto == 6 ? "tcp-closed" : "expired"
                #expect(lines.filter { $0.contains("nat-event mapping-created \(fields) reason=outbound time=") }.count == 1, "\(lines)")
                #expect(lines.filter { $0.contains("nat-event mapping-removed \(fields) reason=\(expiry) time=") }.count == 1, "\(lines)")
            }
            #expect(lines.count == 4 && counters["audit_lines"] == 4, "\(lines)")
        }
    }
}
