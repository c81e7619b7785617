import Foundation
import NATCore
import Testing
@testable import Masqd
@testable import MasqdLab
@testable import MasqdShell

#if canImport(Glibc)
import Glibc
#endif

/// Issue #8: SIGHUP reloads the --config file without dropping live flows, and `--metrics`
/// serves the counters of `masqd stats` to Prometheus. The first tests render and parse
/// metrics without namespaces; the others drive the real binary in namespaces (prefixes
/// mq<pid>rl…, queue indices 46-48).
@Suite(.integrationLimit)
struct ReloadAndMetricsTests: LabAddresses {
    // MARK: rendering (no namespaces)

    @Test("the Prometheus text parses with prometheus_client: families, types, labels, a real histogram")
    func prometheusTextParses() throws {
        var histogram = LatencyHistogram()
        histogram.record(100)            // bucket 0 (< 128 ns)
        histogram.record(1_000, count: 3) // < 1024 ns
        histogram.record(5_000_000_000)  // beyond the last bound: +Inf only
        let metrics: [EngineMetric] = [
            .gauge("queue", 7, "First NFQUEUE number bound."),
            .info("external_address", label: "address", "203.0.113.1", "The WAN address."),
            .counter("packets_received", 42, "Packets taken from the queues."),
            .counter("drop_truncated", 1, "Packets dropped, by reason.", family: "drops", labels: [("reason", "truncated")]),
            .gauge("flows_active", 3, "Live translations."),
            .counter("drop_zero_port", 2, "Packets dropped, by reason.", family: "drops", labels: [("reason", "zero_port")]),
            .histogram("latency_per_packet", histogram, "Time per packet, with a \\ and\na newline."),
            .counter("helper_x_rewrites", 5, "Helper events.", family: "helper_events", labels: [("helper", "a\"b\\c\nd"), ("event", "rewrites")]),
        ]
        let text = EngineMetric.prometheusText(metrics)
        let families = try Prometheus.parse(text)
        let byName = Dictionary(families.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        #expect(byName["masqd_queue"]?.type == "gauge" && byName["masqd_queue"]?.value("masqd_queue") == 7)
        #expect(byName["masqd_external_address_info"]?.value("masqd_external_address_info", ["address": "203.0.113.1"]) == 1)
        #expect(byName["masqd_packets_received"]?.type == "counter")
        #expect(byName["masqd_packets_received"]?.value("masqd_packets_received_total") == 42)
        // One family for both drop reasons, though other metrics stand between them in the list.
        let drops = try #require(byName["masqd_drops"])
        #expect(drops.type == "counter" && drops.samples.count == 2)
        #expect(drops.value("masqd_drops_total", ["reason": "truncated"]) == 1 && drops.value("masqd_drops_total", ["reason": "zero_port"]) == 2)
        #expect(families.filter { $0.name == "masqd_drops" }.count == 1)
        // Escaped label values come back as they were.
        #expect(byName["masqd_helper_events"]?.value("masqd_helper_events_total", ["helper": "a\"b\\c\nd", "event": "rewrites"]) == 5)
        #expect(byName["masqd_latency_per_packet_seconds"]?.help == "Time per packet, with a \\ and\na newline.")

        let latency = try #require(byName["masqd_latency_per_packet_seconds"])
        #expect(latency.type == "histogram")
        let buckets = latency.samples.filter { $0.name == "masqd_latency_per_packet_seconds_bucket" }
        #expect(buckets.count == LatencyHistogram.bucketCount)
        let bounds = buckets.compactMap { $0.labels["le"] }
        #expect(bounds.first == "1.28e-07" && bounds.last == "+Inf")
        let finite = bounds.dropLast().compactMap(Double.init)
        #expect(finite.count == bounds.count - 1 && finite == finite.sorted() && Set(finite).count == finite.count)
        let counts = buckets.map(\.value)
        #expect(counts == counts.sorted(), "buckets must be cumulative: \(counts)")
        #expect(latency.value("masqd_latency_per_packet_seconds_bucket", ["le": "1.28e-07"]) == 1)
        #expect(latency.value("masqd_latency_per_packet_seconds_bucket", ["le": "1.024e-06"]) == 4)
        #expect(latency.value("masqd_latency_per_packet_seconds_bucket", ["le": "+Inf"]) == 5)
        #expect(latency.value("masqd_latency_per_packet_seconds_count") == 5)
        let sum = try #require(latency.value("masqd_latency_per_packet_seconds_sum"))
        #expect(abs(sum - 5.0000031) < 1e-9, "sum \(sum)")
        // The same list as `masqd stats` shows it.
        let stats = EngineMetric.statsText(metrics)
        #expect(stats.hasPrefix("queue 7\nexternal_address 203.0.113.1\npackets_received 42\ndrop_truncated 1\nflows_active 3\ndrop_zero_port 2\n"))
        #expect(stats.contains("latency_per_packet_ns_count 5\n") && stats.contains("latency_per_packet_ns_le_1024 4\n"))
        #expect(stats.contains("helper_x_rewrites 5\n"))
    }

    @Test("HTTP answers: 200 for GET and HEAD /metrics, 404 elsewhere, 405, 400, 431, and nothing until the headers end")
    func httpAnswers() throws {
        let server = try MetricsServer(endpoint: MetricsEndpoint(address: IPv4Address(127, 0, 0, 1), port: 0))
        func answer(_ request: String) -> String? {
            server.answer(Array(request.utf8), page: { "masqd_up 1\n" }).map { String(decoding: $0, as: UTF8.self) }
        }
        let ok = try #require(answer("GET /metrics HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n\r\n"))
        #expect(ok.hasPrefix("HTTP/1.1 200 OK\r\n") && ok.hasSuffix("\r\n\r\nmasqd_up 1\n"))
        #expect(ok.contains("Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n") && ok.contains("Content-Length: 11\r\n"))
        #expect(answer("GET /metrics?name[]=x HTTP/1.0\n\n")?.hasPrefix("HTTP/1.1 200 OK") == true)
        let head = try #require(answer("HEAD /metrics HTTP/1.1\r\n\r\n"))
        #expect(head.hasPrefix("HTTP/1.1 200 OK") && head.hasSuffix("\r\n\r\n") && head.contains("Content-Length: 11\r\n"))
        #expect(server.counters[.scrapes] == 3)
        #expect(answer("GET / HTTP/1.1\r\n\r\n")?.hasPrefix("HTTP/1.1 404 Not Found\r\n") == true)
        #expect(answer("GET /metricsx HTTP/1.1\r\n\r\n")?.hasPrefix("HTTP/1.1 404 ") == true)
        #expect(answer("POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n")?.hasPrefix("HTTP/1.1 405 ") == true)
        #expect(answer("GET /metrics\r\n\r\n")?.hasPrefix("HTTP/1.1 400 ") == true)
        #expect(answer("GET /metrics HTTP/2.0\r\n\r\n")?.hasPrefix("HTTP/1.1 400 ") == true)
        #expect(answer("GET /metrics HTTP/1.1\r\nHost: x\r\n") == nil) // the headers have not ended yet
        let long = "GET /metrics HTTP/1.1\r\nX-Long: " + String(repeating: "a", count: MetricsServer.maxRequestBytes)
        #expect(answer(long)?.hasPrefix("HTTP/1.1 431 ") == true)
        #expect(server.counters[.badRequests] == 6 && server.counters[.scrapes] == 3)
    }

    @Test("--metrics and the metrics key: ADDR:PORT checked with a one-line message; not a value that can change on reload")
    func metricsOption() throws {
        let settings = try OptionCheck.settings(["--wan", "eth0", "--metrics", "127.0.0.1:9469"])
        #expect(settings.metrics == MetricsEndpoint(address: IPv4Address(127, 0, 0, 1), port: 9469))
        #expect(try OptionCheck.settings(["--wan", "eth0"]).metrics == nil)
        for bad in ["9469", "localhost:9469", "127.0.0.1:0", "127.0.0.1:70000", "[::1]:9469", "127.0.0.1:"] {
            #expect(OptionCheck.message(["--wan", "eth0", "--metrics", bad])
                    == "--metrics \(bad): expected ADDR:PORT with an IPv4 address and a port 1-65535, e.g. 127.0.0.1:9469")
        }
        var other = settings
        other.metrics = MetricsEndpoint(address: IPv4Address(127, 0, 0, 1), port: 9470)
        other.nat.filtering = .endpointIndependent // changeable: not listed
        #expect(Engine.unchangeable(settings, other).map(\.key) == ["metrics"])
        other = settings
        other.nat.internalPrefixes = [IPv4Prefix("10.0.0.0/8")!]
        other.hairpin = false
        #expect(Engine.unchangeable(settings, other).map(\.key) == ["lan", "no-hairpin"])
    }

    // MARK: reload (namespaces)

    /// Rules installed from `yaml` (written to a file), `masqd run --config FILE` started; `body`
    /// gets the file's path and the engine. At the end the engine must still run and stop.
    static func withConfiguredEngine(_ tag: String, queueIndex: Int, yaml: (LabTopology, Int) -> String,
                                     _ body: (LabTopology, String, String, BackgroundProcess) throws -> Void) throws {
        let masqd = try Integration.masqdExecutable()
        let queue = Integration.queue(queueIndex)
        try Integration.withTopology(tag) { lab in
            let config = lab.workDir + "/masqd.yaml"
            try yaml(lab, queue).write(toFile: config, atomically: true, encoding: .utf8)
            let install = try lab.masqd(masqd, ["rules", "install", "--config", config])
            guard install.succeeded else { throw IntegrationFailure("rules install --config: \(install.summary)") }
            let engine = try Integration.startRun(lab, masqd, ["--config", config])
            try body(lab, masqd, config, engine)
            #expect(engine.isRunning, "masqd run died during the test (status \(engine.exitStatus ?? -1)):\n\(engine.output)")
            let started = Date()
            engine.stop(grace: 5)
            #expect(Date().timeIntervalSince(started) < 4.5, "masqd run took more than 4.5 s to stop on SIGTERM")
        }
    }

    static func baseYAML(_ lab: LabTopology, queue: Int, forwards: [String], lan: String = LabTopology.lanCIDR, extra: String = "") -> String {
        """
        queue: \(queue)
        wan: \(LabTopology.wanInterface)
        lan:
          - \(lan)
        control: \(lab.controlPath)
        forward:
        \(forwards.map { "  - \($0)" }.joined(separator: "\n"))
        \(extra)
        """
    }

    /// Sends SIGHUP and waits for the engine's log to gain a line containing `marker` (one not
    /// there before). Returns that line.
    static func hangUp(_ engine: BackgroundProcess, expecting marker: String) throws -> String {
        let before = engine.lines.filter { $0.contains(marker) }.count
        guard kill(engine.pid, SIGHUP) == 0 else { throw IntegrationFailure("kill -HUP \(engine.pid): \(String(cString: strerror(errno)))") }
        var line: String?
        _ = Semantics.waitUntil(timeout: 5) {
            let lines = engine.lines.filter { $0.contains(marker) }
            if lines.count > before { line = lines.last }
            return line != nil
        }
        guard let line else { throw IntegrationFailure("no '\(marker)' in the log 5 s after SIGHUP:\n\(engine.output)") }
        return line
    }

    /// "connected", "refused" or "no answer" for a TCP connection from the server to the WAN address.
    static func connect(_ lab: LabTopology, port: Int) throws -> String {
        let result = try lab.run(.server, lab.helper(["tcpconnect", LabTopology.routerWANAddress, String(port), "--timeout", "2"]), timeout: 10)
        return result.stdout.split(separator: " ").first.map(String.init) ?? result.output
    }

    @Test("SIGHUP adds a forward while an 8 MB download goes on: the forward works from the WAN, the download completes intact")
    func reloadAddsForwardDuringDownload() throws {
        try Self.withConfiguredEngine("rla", queueIndex: 46, yaml: { lab, queue in
            Self.baseYAML(lab, queue: queue, forwards: ["tcp:2222=192.0.2.11:2222"])
        }) { lab, masqd, config, engine in
            let file = try lab.serveRandomFile("big.bin", megabytes: 8, from: .server, port: 8080, rate: 1_000_000)
            let copy = lab.workDir + "/download.bin"
            let listener = try lab.spawnHelper(.host1, ["listen", "9000"], name: "listen-h1")
            #expect(try Self.connect(lab, port: 9000) == "refused", "before the reload port 9000 must be the router's own (closed)")

            // About 8 s at 1 MB/s (paced by the server): the reload lands in the middle, even on a busy machine.
            let curl = try lab.spawnCurl(from: .host1, "http://\(server):8080/big.bin", to: copy, writeOut: "%{size_download} bytes in %{time_total} s\n",
                                      name: "curl")
            let flowing = Semantics.waitUntil(timeout: 10) {
                let size = (try? FileManager.default.attributesOfItem(atPath: copy))?[.size] as? Int
                return (size ?? 0) > 1_000_000
            }
            #expect(flowing, "the download did not start:\n\(curl.output)")
            let flowsBefore = try lab.masqd(masqd, ["flows", "tcp", "--control", lab.controlPath]).stdout
            let download = "\(LabTopology.host1Address):"
            #expect(flowsBefore.contains(download) && flowsBefore.contains("-> \(server):8080"), "no download flow:\n\(flowsBefore)")

            try Self.baseYAML(lab, queue: Integration.queue(46), forwards: ["tcp:2222=192.0.2.11:2222", "tcp:9000=192.0.2.10:9000"])
                .write(toFile: config, atomically: true, encoding: .utf8)
            let line = try Self.hangUp(engine, expecting: "reloaded")
            #expect(curl.isRunning, "the download ended before the reload, so it proves nothing:\n\(curl.output)")
            #expect(line.contains("reloaded \(config): forwards +1 -0"), "\(line)")

            #expect(try Self.connect(lab, port: 9000) == "connected")
            #expect(listener.waitForOutput(containing: "tcp connection from \(server):", timeout: 5), "the LAN listener saw:\n\(listener.output)")

            let status = curl.waitForExit(timeout: 60)
            #expect(status == 0, "curl: \(curl.output)")
            #expect(curl.output.contains("8388608 bytes"), "downloaded: \(curl.output)")
            #expect(try Semantics.sha256(copy) == file.sha256, "the download differs from the original")
            let stats = try Semantics.stats(lab, masqd)
            #expect(stats["reloads"] == 1 && stats["reload_failures"] == 0, "\(stats.filter { $0.key.hasPrefix("reload") })")
        }
    }

    @Test("a bad file and an unchangeable key are refused with one log line each; the old settings stay whole; a good file then applies")
    func refusedReloadsKeepOldSettings() throws {
        try Self.withConfiguredEngine("rlb", queueIndex: 47, yaml: { lab, queue in
            Self.baseYAML(lab, queue: queue, forwards: ["tcp:9000=192.0.2.10:9000"])
        }) { lab, masqd, config, engine in
            _ = try lab.spawnHelper(.host1, ["listen", "9000"], name: "listen-9000")
            _ = try lab.spawnHelper(.host1, ["listen", "9001"], name: "listen-9001")
            #expect(try Self.connect(lab, port: 9000) == "connected")
            let queue = Integration.queue(47)
            let both = ["tcp:9000=192.0.2.10:9000", "tcp:9001=192.0.2.10:9001"]

            // A mistake on line 10: nothing of the file is used.
            try (Self.baseYAML(lab, queue: queue, forwards: both) + "\nmax-flows-per-host: lots\n").write(toFile: config, atomically: true, encoding: .utf8)
            let failed = try Self.hangUp(engine, expecting: "reload failed")
            #expect(failed.contains("reload failed: \(config):10: max-flows-per-host lots: expected a positive number; the settings in force are kept"), "\(failed)")
            #expect(try Self.connect(lab, port: 9000) == "connected")
            #expect(try Self.connect(lab, port: 9001) == "refused")

            // A valid file that changes `lan` (its key on line 3) along with a new forward: all refused.
            try Self.baseYAML(lab, queue: queue, forwards: both, lan: "192.0.2.0/25").write(toFile: config, atomically: true, encoding: .utf8)
            let refused = try Self.hangUp(engine, expecting: "reload refused")
            #expect(refused.contains("reload refused: \(config):3: key lan (192.0.2.0/24 -> 192.0.2.0/25) cannot change while running"), "\(refused)")
            #expect(try Self.connect(lab, port: 9001) == "refused", "the forward of a refused reload was applied")
            #expect(try Self.connect(lab, port: 9000) == "connected")

            // The same file with `lan` as it was: applied.
            try Self.baseYAML(lab, queue: queue, forwards: both).write(toFile: config, atomically: true, encoding: .utf8)
            let applied = try Self.hangUp(engine, expecting: "reloaded")
            #expect(applied.contains("forwards +1 -0"), "\(applied)")
            #expect(try Self.connect(lab, port: 9001) == "connected")
            #expect(try Self.connect(lab, port: 9000) == "connected")
            let stats = try Semantics.stats(lab, masqd)
            #expect(stats["reloads"] == 1 && stats["reload_failures"] == 2, "\(stats.filter { $0.key.hasPrefix("reload") })")
            for message in [failed, refused, applied] { #expect(!message.contains("\n")) }
        }
    }

    // MARK: metrics (namespaces)

    @Test("GET /metrics over HTTP in the router namespace: parsed by prometheus_client, every value as `masqd stats` has it")
    func metricsEndpoint() throws {
        let queue = Integration.queue(48)
        let masqd = try Integration.masqdExecutable()
        try Integration.withTopology("rlc") { lab in
            try lab.installRules(masqd: masqd, queue: queue)
            let engine = try lab.startEngine(masqd: masqd, queue: queue, extra: ["--metrics", "127.0.0.1:9469"])
            defer { engine.stop(grace: 5) }
            let url = "http://127.0.0.1:9469/metrics"
            let ping = try lab.run(.host1, lab.helper(["ping", server, "--count", "3", "--id", "4660", "--interval", "0.1"]), timeout: 30)
            #expect(ping.succeeded && ping.stdout.contains("3 sent, 3 received"), "ping: \(ping.summary)")

            // A client that connects and sends half a request, and one that sends nothing:
            // neither may hold up the scrape or the packets.
            let stall = "import socket, time\nkeep = []\nfor part in [b'GET /metr', b'']:\n    s = socket.create_connection(('127.0.0.1', 9469)); s.send(part); keep.append(s)\nprint('ready', flush=True); time.sleep(30)\n"
            let stalled = try lab.spawn(.router, [LabTopology.python, "-c", stall], name: "stall")
            #expect(stalled.waitForOutput(containing: "ready", timeout: 5), "\(stalled.output)")

            let before = try Semantics.stats(lab, masqd)
            let scrape = try lab.run(.router, ["curl", "-sS", "--max-time", "5", "-D", lab.workDir + "/headers.txt", url], timeout: 10)
            let after = try Semantics.stats(lab, masqd)
            #expect(scrape.succeeded && scrape.seconds < 2, "scrape: \(scrape.summary)")
            let headers = (try? String(contentsOfFile: lab.workDir + "/headers.txt", encoding: .utf8)) ?? ""
            #expect(headers.hasPrefix("HTTP/1.1 200 OK") && headers.contains("text/plain; version=0.0.4"), "\(headers)")
            let families = try Prometheus.parse(scrape.stdout)
            #expect((before["packets_received"] ?? 0) > 0, "no packets counted after the ping")

            // Every `masqd stats` value has its sample, between the value before and after the scrape.
            var samples: [String: Double] = [:]
            for family in families { for sample in family.samples { samples[Prometheus.key(sample.name, sample.labels)] = sample.value } }
            var matched = Set<String>()
            for (name, low) in before.sorted(by: { $0.key < $1.key }) {
                guard let key = Prometheus.sampleKey(forStat: name, in: samples), let value = samples[key] else {
                    if !name.hasSuffix("_p50"), !name.hasSuffix("_p99"), !name.hasSuffix("_ns_sum") {
                        Issue.record("`masqd stats` has \(name) but the metrics page has no sample for it")
                    }
                    continue
                }
                matched.insert(key)
                let high = after[name] ?? low
                #expect(Double(min(low, high)) <= value && value <= Double(max(low, high)), "\(name): stats \(low)…\(high), metrics \(key) \(value)")
            }
            for key in samples.keys where !key.contains("_seconds_") && !key.hasPrefix("masqd_external_address_info") {
                #expect(matched.contains(key), "the metrics page has \(key), which `masqd stats` does not show")
            }
            #expect(samples[Prometheus.key("masqd_external_address_info", ["address": wan])] == 1)
            #expect(samples["masqd_flows_active"] == Double(before["flows_active"] ?? -1) && (before["flows_active"] ?? 0) >= 1)
            let latency = try #require(families.first { $0.name == "masqd_latency_receive_to_verdict_seconds" })
            #expect(latency.type == "histogram" && latency.value("masqd_latency_receive_to_verdict_seconds_count") == Double(before["latency_receive_to_verdict_ns_count"] ?? -1))

            // Anything but /metrics: 404. Packets still flow while the stalled clients wait.
            let notFound = try lab.run(.router, ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "http://127.0.0.1:9469/"], timeout: 10)
            #expect(notFound.stdout == "404", "\(notFound.summary)")
            let ping2 = try lab.run(.host1, lab.helper(["ping", server, "--count", "2", "--id", "4661", "--interval", "0.1"]), timeout: 30)
            #expect(ping2.succeeded, "ping during stalled metrics clients: \(ping2.summary)")
            // The stalled clients are closed after 5 s.
            let closed = try Semantics.waitUntil(timeout: 10) { (try Semantics.stats(lab, masqd)["metrics_clients_timed_out"] ?? 0) >= 2 }
            let final = try Semantics.stats(lab, masqd)
            #expect(closed, "the stalled metrics clients were not closed: \(final.filter { $0.key.hasPrefix("metrics_") })")
            #expect(final["metrics_scrapes"] == 1 && final["metrics_bad_requests"] == 1, "\(final.filter { $0.key.hasPrefix("metrics_") })")
            #expect(engine.isRunning, "masqd run died:\n\(engine.output)")
        }
    }
}

/// prometheus_client's parser (python3-prometheus-client), driven from the tests.
enum Prometheus {
    struct Sample: Decodable {
        let name: String
        let labels: [String: String]
        let value: Double

        init(from decoder: Decoder) throws {
            var fields = try decoder.unkeyedContainer()
            name = try fields.decode(String.self)
            labels = try fields.decode([String: String].self)
            value = try fields.decode(Double.self)
        }
    }

    struct Family: Decodable {
        let name: String
        let type: String
        let help: String
        let samples: [Sample]

        func value(_ sample: String, _ labels: [String: String] = [:]) -> Double? {
            samples.first { $0.name == sample && $0.labels == labels }?.value
        }
    }

    static let script = """
        import json, sys
        from prometheus_client.parser import text_string_to_metric_families
        out = []
        for f in text_string_to_metric_families(sys.stdin.read()):
            out.append({"name": f.name, "type": f.type, "help": f.documentation,
                        "samples": [[s.name, s.labels, s.value] for s in f.samples]})
        print(json.dumps(out))
        """

    /// Parses `text` with prometheus_client; a parse error fails with its message.
    static func parse(_ text: String) throws -> [Family] {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("masqd-prom-\(getpid())-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let input = dir.appendingPathComponent("metrics.txt").path, program = dir.appendingPathComponent("parse.py").path
        try text.write(toFile: input, atomically: true, encoding: .utf8)
        try script.write(toFile: program, atomically: true, encoding: .utf8)
        let result = try Shell.run(["/bin/sh", "-c", "\(LabTopology.python) \(program) < \(input)"], timeout: 30)
        guard result.succeeded else {
            throw IntegrationFailure("prometheus_client could not parse the page (python3-prometheus-client installed? Deploy/install-deps.sh --tests): \(result.summary)")
        }
        return try JSONDecoder().decode([Family].self, from: Data(result.stdout.utf8))
    }

    static func key(_ name: String, _ labels: [String: String]) -> String {
        labels.isEmpty ? name : name + "{" + labels.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ",") + "}"
    }

    /// The sample a `masqd stats` line stands for, if the page has it.
    static func sampleKey(forStat name: String, in samples: [String: Double]) -> String? {
        func found(_ key: String) -> String? { samples[key] != nil ? key : nil }
        if let range = name.range(of: "_ns_le_"), name.hasPrefix("latency_"), let bound = UInt64(name[range.upperBound...]) {
            // The last bucket has no bound of its own: `masqd stats` shows it at 2^30 ns.
            let seconds = bound == LatencyHistogram.upperBound(LatencyHistogram.bucketCount - 1) ? "+Inf" : EngineMetric.seconds(bound)
            return found(key("masqd_" + name[..<range.lowerBound] + "_seconds_bucket", ["le": seconds]))
        }
        if name.hasPrefix("latency_"), name.hasSuffix("_ns_count") {
            return found("masqd_" + name.dropLast("_ns_count".count) + "_seconds_count")
        }
        if name.hasPrefix("fragments_drop_") { return found(key("masqd_fragments_drops_total", ["reason": String(name.dropFirst("fragments_drop_".count))])) }
        if name.hasPrefix("drop_") { return found(key("masqd_drops_total", ["reason": String(name.dropFirst("drop_".count))])) }
        if name.hasPrefix("sync_dropped_") { return found(key("masqd_sync_dropped_total", ["reason": String(name.dropFirst("sync_dropped_".count))])) }
        let words = name.split(separator: "_")
        if words.count == 4, words[0] == "queue", UInt16(words[1]) != nil, name.hasSuffix("_packets_received") {
            return found(key("masqd_queue_packets_received_total", ["queue": String(words[1])]))
        }
        if name.hasPrefix("helper_") {
            for event in HelperEventNames.all where name.hasSuffix("_" + event) {
                let helper = String(name.dropFirst("helper_".count).dropLast(event.count + 1))
                if let hit = found(key("masqd_helper_events_total", ["helper": helper, "event": event])) { return hit }
            }
        }
        return found("masqd_\(name)_total") ?? found("masqd_\(name)")
    }
}

enum HelperEventNames {
    static let all = ["rewrites", "expectations", "refused_foreign_address", "refused_low_port", "malformed", "limit", "abandoned"]
}
