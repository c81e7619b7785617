import Foundation
import Masqd
import MasqdLab
import NATCore
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// A helper built outside masqd (issue #13): Examples/RendezvousHelper is a separate package
/// that depends on masqd's libraries, defines the rendezvous helper and builds its own masqd
/// with `MasqdMain.main(helpers:)`. Its binary runs here in real namespaces with real traffic:
/// h1 registers with a rendezvous server outside, which answers from a new port. With the
/// helper the server sees the WAN endpoint and its answer arrives; with `--helpers none` the
/// server sees the LAN endpoint and nothing arrives. Then the places built-in helpers reach:
/// config file, `helper-ports`, SIGHUP reload, stats and metrics, the state file.
/// Tags mq<pid>xh?, queues 70-73.
@Suite(.integrationLimit)
struct ExternalHelperTests: LabAddresses {
    @Test("the example's masqd: REGISTER is rewritten and the server's answer from a new port arrives; with --helpers none neither",
          arguments: [true, false])
    func registerThroughTheExample(helper: Bool) throws {
        let options = ["--helpers", helper ? "rendezvous" : "none"]
        try Integration.withEngine(executable: ExternalHelper.executable(), helper ? "xha" : "xhb", queue: Integration.queue(helper ? 70 : 71), options: options) { lab, masqd, _ in
            let rendezvous = try ExternalHelper.startServer(lab, port: 7000)
            let client = try ExternalHelper.register(lab, port: 7000, sourcePort: 40000)
            let seen = ExternalHelper.registrations(rendezvous)
            let stats = try Semantics.stats(lab, masqd)
            try #require(!seen.isEmpty, "the server got no REGISTER:\n\(rendezvous.output)\nclient: \(client.output)")
            if helper {
                // The announced endpoint is the one the server sees the datagram come from.
                #expect(seen[0].announced == seen[0].source && seen[0].source.hasPrefix("\(wan):"), "server log:\n\(rendezvous.output)")
                #expect(client.succeeded, "h1 got no answer: \(client.output)")
                #expect(client.stdout.contains("reply from \(server):7001 'WELCOME \(seen[0].source)'"), "h1: \(client.output)")
                #expect(stats["helper_rendezvous_rewrites"] == 1 && stats["helper_rendezvous_expectations"] == 1
                        && stats["helper_expectations_fulfilled"] == 1, "\(stats.filter { $0.key.hasPrefix("helper") })")
            } else {
                // Three tries, three answers from new ports: each refused by the filter.
                #expect(seen.allSatisfy { $0.announced == "\(h1):40000" && $0.source.hasPrefix("\(wan):") }, "server log:\n\(rendezvous.output)")
                #expect(seen.count == 3, "server log:\n\(rendezvous.output)")
                #expect(!client.succeeded && client.stdout.contains("no reply"), "h1: \(client.output)")
                #expect(stats["helper_rendezvous_rewrites"] == nil, "\(stats.filter { $0.key.hasPrefix("helper") })")
            }
        }
    }

    @Test("config file and SIGHUP: `helpers: none` at start, then rendezvous on udp:7100 by reload; counted in stats and metrics")
    func configFileAndReload() throws {
        let config = "/tmp/masqd-xhc-\(getpid()).yaml"
        defer { try? FileManager.default.removeItem(atPath: config) }
        try "helpers: none\nmetrics: 127.0.0.1:9469\n".write(toFile: config, atomically: true, encoding: .utf8)
        try Integration.withEngine(executable: ExternalHelper.executable(), "xhc", queue: Integration.queue(72), options: ["--config", config]) { lab, masqd, engine in
            let rendezvous = try ExternalHelper.startServer(lab, port: 7100)
            let before = try ExternalHelper.register(lab, port: 7100, sourcePort: 40100)
            #expect(!before.succeeded, "answered without the helper: \(before.output)")

            try "helpers: [ftp, rendezvous]\nhelper-ports:\n  - rendezvous=udp:7100\nmetrics: 127.0.0.1:9469\n"
                .write(toFile: config, atomically: true, encoding: .utf8)
            let line = try ReloadAndMetricsTests.hangUp(engine, expecting: "reloaded")
            #expect(line.contains("rendezvous:udp:7100"), "reload log line: \(line)")

            // A new flow (the old one keeps having no helper) is rewritten and answered.
            let after = try ExternalHelper.register(lab, port: 7100, sourcePort: 40101)
            #expect(after.succeeded && after.stdout.contains("'WELCOME \(wan):"), "h1 after the reload: \(after.output)")
            let last = try #require(ExternalHelper.registrations(rendezvous).last, "server log:\n\(rendezvous.output)")
            #expect(last.announced == last.source, "server log:\n\(rendezvous.output)")

            let stats = try Semantics.stats(lab, masqd)
            #expect(stats["reloads"] == 1 && stats["helper_rendezvous_rewrites"] == 1, "\(stats.filter { $0.key.hasPrefix("helper") || $0.key.hasPrefix("reload") })")
            let metrics = try lab.run(.router, ["curl", "-sS", "--max-time", "5", "http://127.0.0.1:9469/metrics"], timeout: 10)
            #expect(metrics.stdout.contains("masqd_helper_events_total{helper=\"rendezvous\",event=\"rewrites\"} 1"),
                    "metrics: \(metrics.stdout.split(separator: "\n").filter { $0.contains("helper_events") })")
        }
    }

    @Test("state file: a rendezvous flow saved at stop is restored with its helper, which rewrites and expects again")
    func stateAcrossRestart() throws {
        try Integration.requireEnvironment()
        let masqd = try ExternalHelper.executable()
        let queue = Integration.queue(73)
        try Integration.withTopology("xhd") { lab in
            let options = ["--helpers", "rendezvous", "--state-file", lab.workDir + "/masqd.state"]
            try lab.installRules(masqd: masqd, queue: queue)
            let rendezvousServer = try ExternalHelper.startServer(lab, port: 7000)
            defer { _ = rendezvousServer.stop() }

            let first = try StateRestartTests.startEngine(lab, masqd, queue: queue, extra: options, name: "masqd-1")
            let before = try ExternalHelper.register(lab, port: 7000, sourcePort: 40200)
            #expect(before.succeeded, "h1 before the restart: \(before.output)")
            StateRestartTests.stop(first) // saves the state file

            let second = try StateRestartTests.startEngine(lab, masqd, queue: queue, extra: options, name: "masqd-2")
            let restored = try Semantics.stats(lab, masqd)
            #expect(restored["state_refused"] == 0 && (restored["state_restored_flows"] ?? 0) >= 2,
                    "\(restored.filter { $0.key.hasPrefix("state") })")
            // The same flow, restored: only a helper attached to it can let the answer from
            // the next new port (7002) in.
            let after = try ExternalHelper.register(lab, port: 7000, sourcePort: 40200)
            #expect(after.succeeded && after.stdout.contains("reply from \(server):7002 "), "h1 after the restart: \(after.output)")
            let stats = try Semantics.stats(lab, masqd)
            #expect(stats["helper_rendezvous_rewrites"] == 1 && stats["helper_expectations_fulfilled"] == 1,
                    "\(stats.filter { $0.key.hasPrefix("helper") })")
            #expect(second.isRunning, "the second engine died:\n\(second.output)")
            StateRestartTests.stop(second)
        }
    }

    /// A helper that answers to whatever name it is given.
    final class NamedHelper: ApplicationHelper {
        let name: String
        init(_ name: String) { self.name = name }
        func inspect(_ data: HelperData, _ context: inout HelperContext) -> HelperVerdict { .pass }
    }

    @Test("added helpers are refused, with one line, when their name clashes with a built-in one or cannot be used",
          arguments: [
            ("ftp", "ftp", "helper 'ftp' clashes with the built-in helper of that name; give yours another name"),
            ("none", "none", "helper name 'none': use 1-16 of a-z, 0-9 and _, starting with a letter (not 'none')"),
            ("Rendezvous", "Rendezvous", "helper name 'Rendezvous': use 1-16 of a-z, 0-9 and _, starting with a letter (not 'none')"),
            ("a,b", "a,b", "helper name 'a,b': use 1-16 of a-z, 0-9 and _, starting with a letter (not 'none')"),
            ("seventeen_letters", "seventeen_letters", "helper name 'seventeen_letters': use 1-16 of a-z, 0-9 and _, starting with a letter (not 'none')"),
            ("meet", "rendezvous", "helper 'meet' makes a helper named 'rendezvous'; the two names must be the same"),
          ])
    func refusedNames(name: String, helperName: String, message: String) {
        let entry = HelperCatalog.Entry(name: name, defaultPorts: [.udp(7000)], make: { NamedHelper(helperName) })
        let error = #expect(throws: MasqdError.self) { try HelperCatalog.add([entry]) }
        #expect(error?.description == message)
    }

    @Test("an added helper given twice, or without default ports, is refused")
    func refusedLists() {
        let meet = HelperCatalog.Entry(name: "meet", defaultPorts: [.udp(7000)], make: { NamedHelper("meet") })
        let twice = #expect(throws: MasqdError.self) { try HelperCatalog.add([meet, meet]) }
        #expect(twice?.description == "helper 'meet' is added twice")
        let portless = HelperCatalog.Entry(name: "meet", defaultPorts: [], make: { NamedHelper("meet") })
        let none = #expect(throws: MasqdError.self) { try HelperCatalog.add([portless]) }
        #expect(none?.description == "helper 'meet' has no default ports")
    }
}
