import Glibc
import NATCore

// The engine's metrics, rendered two ways from one list (`metricList()` in
// Engine-Reports.swift), so `masqd stats` and the Prometheus page cannot drift apart:
// `name value` lines for the control socket, and the Prometheus text exposition format 0.0.4
// for `--metrics` (MetricsServer.swift).
//
// The exposition text is written here directly rather than with swift-prometheus: the
// format is a few lines of text per metric, the values are read once per scrape from
// counters the engine keeps anyway (no per-packet cost either way), and a client library
// would add a package and a second set of counters to keep in step with these.

struct EngineMetric {
    enum Kind {
        /// Only ever grows: `masqd_NAME_total`.
        case counter
        /// Goes up and down (a level, a size, a setting): `masqd_NAME`.
        case gauge
        /// A text: `masqd stats` shows it as the value, Prometheus as the label `label` of
        /// `masqd_NAME_info`, whose value is 1.
        case info(label: String, text: String)
        /// Nanosecond durations: `masqd stats` shows NAME_ns_le_BOUND lines, count, sum and
        /// percentiles; Prometheus a histogram in seconds, `masqd_NAME_seconds`.
        case histogram(LatencyHistogram)
    }

    /// The name `masqd stats` shows (for a histogram, the stem before `_ns`).
    var name: String
    var kind: Kind
    var help: String
    var value: UInt64 = 0
    /// The Prometheus metric family, when the name is split into a family and labels
    /// (`drop_malformed_ipv4` is `masqd_drops_total{reason="malformed_ipv4"}`).
    var family: String? = nil
    var labels: [(String, String)] = []

    static func counter(_ name: String, _ value: some BinaryInteger, _ help: String, family: String? = nil, labels: [(String, String)] = []) -> EngineMetric {
        EngineMetric(name: name, kind: .counter, help: help, value: UInt64(clamping: value), family: family, labels: labels)
    }

    static func gauge(_ name: String, _ value: some BinaryInteger, _ help: String) -> EngineMetric {
        EngineMetric(name: name, kind: .gauge, help: help, value: UInt64(clamping: value))
    }

    static func info(_ name: String, label: String, _ text: String, _ help: String) -> EngineMetric {
        EngineMetric(name: name, kind: .info(label: label, text: text), help: help, value: 1)
    }

    static func histogram(_ name: String, _ histogram: LatencyHistogram, _ help: String) -> EngineMetric {
        EngineMetric(name: name, kind: .histogram(histogram), help: help)
    }
}

// MARK: - `masqd stats`

extension EngineMetric {
    /// `name value` lines, as `masqd stats` has always printed them.
    static func statsText(_ metrics: [EngineMetric]) -> String {
        var text = ""
        for metric in metrics {
            switch metric.kind {
            case .counter, .gauge: text += "\(metric.name) \(metric.value)\n"
            case .info(_, let value): text += "\(metric.name) \(value)\n"
            case .histogram(let histogram):
                for (name, value) in histogram.report(metric.name + "_ns") { text += "\(name) \(value)\n" }
            }
        }
        return text
    }
}

// MARK: - Prometheus

extension EngineMetric {
    static let prefix = "masqd_"

    /// The Prometheus family name, with its suffix.
    var prometheusFamily: String {
        let stem = Self.prefix + (family ?? name)
        switch kind {
        case .counter: return stem + "_total"
        case .gauge: return stem
        case .info: return stem + "_info"
        case .histogram: return stem + "_seconds"
        }
    }

    var prometheusType: String {
        switch kind {
        case .counter: "counter"
        case .gauge, .info: "gauge"
        case .histogram: "histogram"
        }
    }

    /// The text exposition format 0.0.4: per family HELP, TYPE, then its samples (metrics of
    /// one family are gathered, in order of first appearance).
    static func prometheusText(_ metrics: [EngineMetric]) -> String {
        var order: [String] = []
        var families: [String: [EngineMetric]] = [:]
        for metric in metrics {
            let family = metric.prometheusFamily
            if families[family] == nil { order.append(family) }
            families[family, default: []].append(metric)
        }
        var text = ""
        for family in order {
            guard let members = families[family], let first = members.first else { continue }
            text += "# HELP \(family) \(escapeHelp(first.help))\n# TYPE \(family) \(first.prometheusType)\n"
            for metric in members {
                switch metric.kind {
                case .counter, .gauge:
                    text += "\(family)\(labelText(metric.labels)) \(metric.value)\n"
                case .info(let label, let value):
                    text += "\(family)\(labelText(metric.labels + [(label, value)])) 1\n"
                case .histogram(let histogram):
                    text += histogramSamples(family, histogram, labels: metric.labels)
                }
            }
        }
        return text
    }

    /// Cumulative buckets at every bound (the last bucket has no bound: it is +Inf), the
    /// sum in seconds and the count.
    static func histogramSamples(_ family: String, _ histogram: LatencyHistogram, labels: [(String, String)]) -> String {
        var text = ""
        var cumulative: UInt64 = 0
        for bucket in 0..<(LatencyHistogram.bucketCount - 1) {
            cumulative &+= histogram.buckets[bucket]
            let bound = seconds(LatencyHistogram.upperBound(bucket))
            text += "\(family)_bucket\(labelText(labels + [("le", bound)])) \(cumulative)\n"
        }
        text += "\(family)_bucket\(labelText(labels + [("le", "+Inf")])) \(histogram.samples)\n"
        text += "\(family)_sum\(labelText(labels)) \(seconds(histogram.total))\n"
        text += "\(family)_count\(labelText(labels)) \(histogram.samples)\n"
        return text
    }

    /// Nanoseconds as seconds in Swift's shortest exact form ("1.28e-07", "0.5", "3.0").
    static func seconds(_ nanoseconds: UInt64) -> String {
        "\(Double(nanoseconds) / 1e9)"
    }

    static func labelText(_ labels: [(String, String)]) -> String {
        guard !labels.isEmpty else { return "" }
        return "{" + labels.map { "\($0.0)=\"\(escapeLabel($0.1))\"" }.joined(separator: ",") + "}"
    }

    /// A label value as the exposition format wants it: backslash, double quote and line feed escaped.
    static func escapeLabel(_ value: String) -> String { escape(value, quotes: true) }

    /// HELP text: backslash and line feed escaped (a double quote stays as it is).
    static func escapeHelp(_ help: String) -> String { escape(help, quotes: false) }

    private static func escape(_ text: String, quotes: Bool) -> String {
        var out = ""
        for c in text {
            switch c {
            case "\\": out += "\\\\"
            case "\"" where quotes: out += "\\\""
            case "\n": out += "\\n"
            default: out.append(c)
            }
        }
        return out
    }
}

// MARK: - The endpoint

extension Engine {
    /// Main loop, before poll(): the metrics server's descriptors replace the entries of
    /// `fds` from `start` on. Nothing when off.
    func addMetricsPollEntries(_ fds: inout [pollfd], from start: Int) {
        guard let server = metricsServer else { return }
        fds.removeSubrange(start...)
        server.addPollEntries(to: &fds)
    }

    /// Main loop, every wake-up: serves the metrics clients that `polled` (the entries after
    /// poll()) says are ready, and closes those out of time. Nothing when off.
    func serveMetrics(_ polled: ArraySlice<pollfd>, now: NATTime) {
        guard let server = metricsServer else { return }
        server.serve(polled, now: now) {
            // The counters are copied under the lock; the text is made after it is released.
            let metrics = withTranslator { _ in metricList() }
            return EngineMetric.prometheusText(metrics)
        }
    }
}
