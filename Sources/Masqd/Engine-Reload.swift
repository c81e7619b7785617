import Logging
import NATCore

// SIGHUP: the settings are read again — the --config file, under the command line the engine
// was started with (whose flags still win), checked exactly as at the start — and what may
// change while running is applied to the live translator (NATTranslator-Reconfigure.swift:
// forwards, helpers, timeouts, filtering, the per-host cap), with no live flow dropped.
//
// All or nothing: a file with a mistake, a key that cannot change while running, or a change
// the translator refuses (a new forward's port held by a LAN host's live mapping) is logged
// as one line naming the file (and line and key where there is one), counted in
// `reload_failures`, and nothing of that reload is applied. Cannot change while running:
// `queue`/`queues`, `wan`, `control` and `metrics` (the engine holds them open), `lan` and
// `no-hairpin`, `fail-open` and `firewall` (the steering rules are made from them: `rules remove` must still find the
// installed ones), `max-flows` (the table sizes) and `port-range`.

struct ReloadState {
    /// The command line the engine was started with; nil: SIGHUP only logs that it cannot reload.
    var options: EngineOptions?
    /// The settings in force: the start's, then those of each reload applied.
    var current: EngineSettings?
    var reloads: UInt64 = 0
    var failures: UInt64 = 0
}

extension Engine {
    /// Lets SIGHUP read the settings again from `options` (the command line `run` was given,
    /// with its `--config` file).
    public func enableReload(options: EngineOptions) {
        reloading.options = options
    }

    /// Main loop, every wake-up: reloads once if SIGHUP came since the last look.
    func reloadIfRequested() {
        guard ReloadSignal.takeRequest() else { return }
        reload()
    }

    func reload() {
        guard let options = reloading.options else {
            logger.warning("SIGHUP: this engine was not started by `masqd run`; nothing to reload")
            return
        }
        let source = options.config ?? "the command line (no --config file)"
        let fresh: FreshSettings
        do {
            fresh = try FreshSettings(options)
        } catch {
            refuseReload("reload failed: \(error); the settings in force are kept")
            return
        }
        let current = reloading.current ?? settings
        let fixed = Self.unchangeable(current, fresh.settings)
        if !fixed.isEmpty {
            let what = fixed.map { "\($0.key) (\($0.old) -> \($0.new))" }.joined(separator: ", ")
            let line = fixed.lazy.compactMap { fresh.line(ofKey: $0.key) }.first
            let place = options.config.map { path in line.map { "\(path):\($0): " } ?? "\(path): " } ?? ""
            refuseReload("reload refused: \(place)\(fixed.count == 1 ? "key" : "keys") \(what) cannot change while running; restart masqd for that; nothing of the reload was applied")
            return
        }
        if fresh.settings.reserveLocalPortRange, let problem = Engine.portRangeProblem(fresh.settings, reserved: LocalPortsReader.readPortRange()) {
            refuseReload("reload refused: \(problem); nothing of the reload was applied")
            return
        }
        let summary: ReconfigureSummary
        do {
            summary = try withTranslator { translator throws(ReconfigureError) in
                try translator.reconfigure(fresh.settings.nat, now: MonotonicClock.now())
            }
        } catch {
            refuseReload("reload refused: \(fresh.place(of: error))\(error); nothing of the reload was applied")
            return
        }
        reloading.current = fresh.settings
        reloading.reloads &+= 1
        refreshLocalPorts(now: MonotonicClock.now(), force: true) // reserve-local-port-range, ip_local_port_range
        logger.notice("reloaded \(source): \(Self.describe(summary, from: current, to: fresh.settings))")
    }

    func refuseReload(_ message: String) {
        reloading.failures &+= 1
        logger.error("\(message)")
    }

    /// The keys whose values differ but cannot change while running, with both values.
    static func unchangeable(_ old: EngineSettings, _ new: EngineSettings) -> [(key: String, old: String, new: String)] {
        func queues(_ s: EngineSettings) -> String { s.queueCount > 1 ? "\(s.queue)-\(s.queue + s.queueCount - 1)" : "\(s.queue)" }
        func lan(_ s: EngineSettings) -> String {
            s.internalPrefixes.isEmpty ? "none" : s.internalPrefixes.map(\.description).joined(separator: ",")
        }
        func ports(_ s: EngineSettings) -> String {
            let ports = s.nat.ports
            return "\(ports.portRange.lowerBound)-\(ports.portRange.upperBound)"
                + (ports.lowPortRange.map { " (\($0.lowerBound)-\($0.upperBound) below 1024)" } ?? "")
        }
        let pairs: [(String, (EngineSettings) -> String)] = [
            (old.queueCount > 1 || new.queueCount > 1 ? "queues" : "queue", queues),
            ("wan", \.wanInterface),
            ("lan", lan),
            ("port-range", ports),
            ("max-flows", { "\($0.nat.maxSessions)" }),
            ("no-hairpin", { "\(!$0.hairpin)" }),
            ("fail-open", { "\($0.failOpen)" }),
            ("firewall", { $0.firewall?.rawValue ?? "the system's" }),
            ("control", \.controlPath),
            ("metrics", { $0.metrics?.description ?? "off" }),
            ("audit-log", { $0.audit.journal?.rawValue ?? "off" }),
            ("ipfix-collector", { $0.audit.ipfix?.collector.description ?? "off" }),
            ("ipfix-domain-id", { $0.audit.ipfix.map { "\($0.domainID)" } ?? "off" }),
            ("no-nat-to", { $0.noNATDestinations.isEmpty ? "none" : $0.noNATDestinations.map(\.description).joined(separator: ",") }),
            ("to-source", \.sourcePoolsText),
            ("max-other-flows", { "\($0.nat.maxAddressOnlyFlows)" }),
            ("fast-path", { $0.fastPath.map { "\($0)" } ?? "off" }),
            ("redirect", { $0.nat.redirects.map(\.description).joined(separator: ",") }),
            ("max-redirect-flows", { "\($0.nat.maxRedirectSessions)" }),
            ("reverse-path-check", { "\($0.reversePathCheck)" }),
            ("max-redirect-flows-per-host", { "\($0.nat.maxRedirectSessionsPerHost)" }),
            ("port-block-size", { $0.nat.portBlocks.map { "\($0.size)" } ?? "off" }),
            ("worker-cpus", { $0.workerCPUs.isEmpty ? "not pinned" : $0.workerCPUs.map(String.init).joined(separator: ",") }),
            ("busy-poll", { "\($0.busyPollMicroseconds) us" }),
        ]
        return pairs.compactMap { key, value in
            value(old) == value(new) ? nil : (key, value(old), value(new))
        }
    }

    /// `forwards +1 -0, timeouts changed, …` for the log.
    static func describe(_ summary: ReconfigureSummary, from old: EngineSettings, to settings: EngineSettings) -> String {
        var parts: [String] = []
        if !summary.forwardsAdded.isEmpty || !summary.forwardsRemoved.isEmpty {
            var text = "forwards +\(summary.forwardsAdded.count) -\(summary.forwardsRemoved.count)"
            let added = summary.forwardsAdded.map(\.description), removed = summary.forwardsRemoved.map { "-\($0)" }
            text += " (" + (added + removed).joined(separator: " ") + ")"
            parts.append(text)
        }
        if summary.sessionsFlushed > 0 {
            parts.append("\(summary.sessionsFlushed) session(s) of replaced forwards cut")
        }
        if summary.mappingsLingering > 0 {
            parts.append("\(summary.mappingsLingering) removed forward port(s) kept for their live sessions until they end")
        }
        if summary.timeoutsChanged { parts.append("timeouts changed (live sessions take them at their next packet)") }
        if summary.filteringChanged { parts.append("filtering now \(settings.nat.filtering.rawValue)") }
        if summary.helpersChanged {
            let helpers = settings.nat.helpers.map { "\($0.helper.name):\($0.ports.map(\.description).joined(separator: ","))" }
            parts.append("helpers now \(helpers.isEmpty ? "none" : helpers.joined(separator: " ")) (live helper connections keep theirs)")
        }
        if summary.limitsChanged {
            parts.append("max-flows-per-host now \(settings.nat.maxSessionsPerHost), max-helper-flows-per-host \(settings.nat.helperLimits.connectionsPerHost), max-new-flows-per-host \(settings.nat.newFlowsPerHost?.description ?? "none")"
                + (settings.nat.portBlocks.map { ", max-port-blocks-per-host \($0.maxPerHost)" } ?? ""))
        }
        if old.reserveLocalPortRange != settings.reserveLocalPortRange {
            parts.append("reserve-local-port-range now \(settings.reserveLocalPortRange ? "yes" : "no")")
        }
        if old.state != settings.state {
            // Engine-State.swift reads the settings in force for its next checkpoint and the save at stop.
            parts.append(settings.state.map {
                "state-file now \($0.path), " + ($0.checkpointInterval > 0 ? "checkpoint every \($0.checkpointInterval) s" : "saved only at stop")
            } ?? "state-file now none")
        }
        return parts.isEmpty ? "nothing changed" : parts.joined(separator: ", ")
    }
}

/// The settings the command line and its file give now, with where each file value was.
struct FreshSettings {
    let settings: EngineSettings
    let file: ConfigFile?
    /// The file's settings that were used (the command line did not override them).
    let fromFile: [ConfigFile.Setting]

    /// As `EngineOptions.settings()`, keeping the file for locating later refusals.
    init(_ options: EngineOptions) throws(MasqdError) {
        guard let path = options.config else {
            settings = try options.checkedSettings()
            file = nil
            fromFile = []
            return
        }
        let file = try ConfigFile.load(path: path)
        let (merged, used) = file.applied(under: options)
        do throws(MasqdError) {
            settings = try merged.checkedSettings()
        } catch {
            throw file.locate(error, fromFile: used)
        }
        self.file = file
        fromFile = used
    }

    func line(ofKey key: String) -> Int? {
        fromFile.first { $0.key == key }?.line
    }

    /// "FILE:LINE: " of the forward a refusal names (when it came from the file), else "FILE: ".
    func place(of error: ReconfigureError) -> String {
        guard let file else { return "" }
        let forward: PortForward?
        switch error {
        case .forwardPortInUse(let f, _, _, _), .forwardTargetInUse(let f, _, _): forward = f
        default: forward = nil
        }
        if let forward, let setting = fromFile.first(where: { $0.key == "forward" }),
           let value = setting.values.first(where: { PortForward($0.text) == forward }) {
            return "\(file.path):\(value.line): "
        }
        return "\(file.path): "
    }
}
