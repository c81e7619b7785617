import ArgumentParser
import NATCore

// The ENGINE OPTIONS of ../shared/INTERFACE.md, shared by `run` and `rules …` so one
// command line describes one deployment. Parsing is by ArgumentParser; checking every
// value (with a one-line message naming it) is `settings()`. `--config FILE` lays the command
// line over the file's settings (ConfigFile.swift) before that check; so that an option given on
// the command line can be told from one left alone, the options with a default are optionals
// here and their defaults are applied in `checkedSettings()`.

public struct EngineOptions: ParsableArguments, Sendable {
    @Option(name: .long, help: "NFQUEUE number to bind (0-65535). Default 0.")
    public var queue: String?

    @Option(name: .long, help: "Bind the queues A-B, one worker thread each, sharing one translation state; the rules balance flows over them by address pair. Instead of --queue.")
    public var queues: String?

    @Option(name: .long, help: "WAN interface: masquerade behind its IPv4 address and follow its changes.")
    public var wan: String?

    @Option(name: .long, help: "Internal prefix whose traffic is translated (repeatable), CIDR or CIDR=ADDR[-ADDR][,…] with a source pool of its own (see --to-source). Default: every non-local source leaving --wan.")
    public var lan: [String] = []

    @Option(name: .long, help: "Port forward PROTO:PORT[-PORT]=ADDR[:PORT] (repeatable).")
    public var forward: [String] = []

    @Option(name: .long, help: "External ports handed out for mappings, A-B. Default: 1024-65535, ports below 1024 stay below 1024.")
    public var portRange: String?

    @Option(name: .long, help: "Application helpers: a comma-separated list of ftp, irc, tftp, sip, pptp, or none. Default: ftp,irc,tftp (sip and pptp are off unless named).")
    public var helpers: String?

    @Option(name: .long, help: "Ports a helper follows, NAME=[tcp:|udp:]PORT[,…] (repeatable; a bare PORT is the helper's own protocol). Default: ftp=tcp:21, irc=tcp:6667, tftp=udp:69.")
    public var helperPorts: [String] = []

    @Option(name: .long, help: "Inbound filtering: address-and-port-dependent (default) or endpoint-independent (\"full cone\").")
    public var filtering: String?

    @Option(name: .long, help: "Cap on live translations (sessions) in total. Default 262144.")
    public var maxFlows: String?

    @Option(name: .long, help: "Cap on live translations of one internal address. Default 32768.")
    public var maxFlowsPerHost: String?

    @Option(name: .long, help: "Idle timeout NAME=SECONDS (repeatable); NAME: udp, tcp-established, tcp-transitory, tcp-opening (a SYN unanswered), tcp-closed, icmp, other (protocols without ports).")
    public var timeout: [String] = []

    @Option(name: .long, help: "Keep the router's ephemeral ports (net.ipv4.ip_local_port_range) out of mappings, so its DNS forwarder's replies cannot reach a LAN host: yes (default) or no (LAN hosts' ports in that range are then preserved too).")
    public var reserveLocalPortRange: String?

    @Option(name: .long, help: "Connections with an application helper one internal host may hold, and expectations it may have pending (each). Default 128, an eighth of the tables.")
    public var maxHelperFlowsPerHost: String?

    @Flag(name: .long, help: "Do not hairpin (LAN host → WAN address → LAN host): no hairpin rule, no accept_local.")
    public var noHairpin: Bool = false

    @Flag(name: .long, help: "Fail open: with no engine running, or its queue full, forwarded traffic passes UNTRANSLATED (iptables --queue-bypass, NFQUEUE fail-open), leaking LAN addresses to the WAN. Default: fail-closed (dropped).")
    public var failOpen: Bool = false

    @Option(name: .long, help: "Which tool writes the rules: nft (one table, `table ip masqd`) or iptables. Default: the system's — iptables if `iptables -V` says legacy or there is no nft; nft if iptables is absent or the nf_tables variant and the kernel has nft's queue statement; else iptables.")
    public var firewall: String?

    @Option(name: .long, help: "Read the same settings from a YAML file (keys: the option names without --); options on the command line win.")
    public var config: String?

    @Option(name: .long, help: "Control socket used by `masqd flows` and `masqd stats`. Default: /run/masqd/queue-N.sock.")
    public var control: String?

    @Option(name: .long, help: "Serve Prometheus metrics over HTTP at ADDR:PORT (GET /metrics), e.g. 127.0.0.1:9469. Default: off.")
    public var metrics: String?

    @Option(name: .long, help: "Save the translation state to this file when stopping (and every --checkpoint-interval) and restore it at start, so idle flows survive a restart. Default: none (not saved).")
    public var stateFile: String?

    @Option(name: .long, help: "Seconds between saves of --state-file while running; 0: only when stopping. Default 60.")
    public var checkpointInterval: String?

    @Option(name: .long, help: "Log NAT events to the journal, one line each: mappings (every mapping created and removed) or sessions (every session as well). Default: off.")
    public var auditLog: String?

    @Option(name: .long, help: "Export NAT events as IPFIX (RFC 7011; RFC 8158 NAT44 session and BIB create/delete) over UDP to ADDR:PORT. Default: off.")
    public var ipfixCollector: String?

    @Option(name: .long, help: "IPFIX observation domain ID (0-4294967295). Default: the first queue number.")
    public var ipfixDomainId: String?

    @Option(name: .long, help: "Destination prefix forwarded untranslated (repeatable): the rules leave traffic from the LAN to it, and its replies, out of the queue, so the engine never sees it. Default: none.")
    public var noNatTo: [String] = []

    @Option(name: .long, help: "New flows one internal host may open per second, RATE/s (token bucket: a burst of RATE at once, then RATE a second), on top of --max-flows-per-host. Default: no limit.")
    public var maxNewFlowsPerHost: String?

    @Option(name: .long, help: "Source address ADDR or range ADDR-ADDR for mappings instead of the WAN interface's address (repeatable: one pool). Each internal host keeps one address of it for all its mappings (paired). A --lan prefix may name its own pool: --lan CIDR=ADDR[-ADDR][,…]. Default: the WAN address.")
    public var toSource: [String] = []

    @Option(name: .long, help: "How a host is placed on a pool address: hash (of the internal address: the same address after any restart) or round-robin. Default: hash.")
    public var poolPlacement: String?

    @Option(name: .long, help: "Cap on address-only translations (protocols without ports: ESP, GRE, SCTP...), one per protocol and remote address. Default 16384.")
    public var maxOtherFlows: String?

    @Option(name: .long, help: "Port block allocation (RFC 7422 style): each internal host takes its mappings' ports from blocks of N consecutive ports (16-16384) on its external address, logged once per block. Fixed while running. Default: off.")
    public var portBlockSize: String?

    @Option(name: .long, help: "With --port-block-size: blocks one internal host may hold (1-1024); a new flow that needs one more is dropped and counted. Default: 8.")
    public var maxPortBlocksPerHost: String?

    @Option(name: .long, help: "High availability: this router's sync channel address, ADDR:PORT (UDP). With --sync-peer and --sync-key.")
    public var syncListen: String?

    @Option(name: .long, help: "High availability: the other router's --sync-listen, ADDR:PORT; only datagrams from its address are read.")
    public var syncPeer: String?

    @Option(name: .long, help: "High availability: file with the shared secret of the sync channel (HMAC-SHA256 key, 16-4096 bytes, mode 0600).")
    public var syncKey: String?

    @Option(name: .long, help: "Seconds between the active router's full resyncs of its state to the standby (1-3600; increments carry each flow in between). Default 30.")
    public var syncInterval: String?

    @Option(name: .long, help: "active (translate; the default) or standby (keep the peer's replicated state, translate nothing); `masqd role` changes it while running.")
    public var role: String?

    @Option(name: .long, help: "Masquerade behind this address of --wan (a VRRP virtual address) instead of its first primary one, whether or not the interface holds it now.")
    public var virtualAddress: String?

    @Flag(name: .long, help: "Translate established plain TCP and UDP flows in the kernel: a tc BPF program on the WAN and LAN interfaces, fed by the engine (see README, Kernel fast path). Default: off.")
    public var fastPath: Bool = false

    @Option(name: .long, help: "LAN interface for --fast-path's outbound program (repeatable). Default: the interfaces the --lan prefixes are routed through.")
    public var fastPathLanInterface: [String] = []

    @Option(name: .long, help: "Flows the fast path holds at most (1-1048576; two map entries each). Default 32768.")
    public var fastPathMaxFlows: String?

    @Option(name: .long, help: "Seconds a flow stays on the engine's path after becoming two-way before it is offloaded (0-3600, decimals allowed). Default 0.")
    public var fastPathDelay: String?

    @Option(name: .long, help: "The fast path's BPF object (built by Deploy/build-bpf.sh). Default: masqd_fastpath.bpf.o next to the masqd binary, else /usr/lib/masqd/masqd_fastpath.bpf.o.")
    public var fastPathObject: String?

    @Option(name: .long, help: "Transparent redirect tcp:PORT=LOCALPORT (repeatable): TCP from the LAN to any address on PORT goes to the router's LOCALPORT (a local proxy; `masqd original-destination` tells it where the client was going).")
    public var redirect: [String] = []

    @Option(name: .long, help: "Cap on live redirected connections (--redirect). Default 16384.")
    public var maxRedirectFlows: String?

    @Option(name: .long, help: "Drop packets from the LAN side whose source is not routed back through the interface they came in on (iptables rpfilter, nft fib): yes (default) or no.")
    public var reversePathCheck: String?

    @Option(name: .long, help: "Cap on live redirected connections of one client address. Default 256.")
    public var maxRedirectFlowsPerHost: String?

    @Option(name: .long, help: "Pin the packet workers to CPUs: a comma-separated list of CPU numbers, the i-th worker on the i-th (wrapping). Default: not pinned (the scheduler places them).")
    public var workerCpus: String?

    @Option(name: .long, help: "After each batch, keep polling the queue this many microseconds (0-1000) before sleeping: lower latency on VMs whose idle CPUs halt, at the cost of a busy CPU while packets flow. Default 0 (off).")
    public var busyPoll: String?

    public init() {}

    /// Checks every value and returns the deployment it describes: these options, over the
    /// settings of the `--config` file if there is one. An error about a value from the file
    /// names the file and line.
    public func settings() throws(MasqdError) -> EngineSettings {
        guard let config else { return try checkedSettings() }
        let file = try ConfigFile.load(path: config)
        let (options, fromFile) = file.applied(under: self)
        do throws(MasqdError) {
            return try options.checkedSettings()
        } catch {
            throw file.locate(error, fromFile: fromFile)
        }
    }

    /// Checks every value of these options (a `--config` among them is not read).
    func checkedSettings() throws(MasqdError) -> EngineSettings {
        let queue = self.queue ?? "0"
        guard let queueNumber = UInt16(queue) else {
            throw .option("--queue", queue, "not a queue number (0-65535)")
        }
        let queueRange = try checkedQueueRange(single: queueNumber)
        guard let wan, !wan.isEmpty else { throw MasqdError("--wan: required (the WAN interface name)") }
        guard wan.utf8.count < 16, !wan.contains(where: { "/ \"\\".contains($0) }) else {
            throw .option("--wan", wan, "not an interface name")
        }
        let (nat, helperNames) = try checkedTranslation()
        return EngineSettings(
            queue: queueRange.lowerBound, queueCount: UInt16(queueRange.count), wanInterface: wan, nat: nat, helpers: helperNames, hairpin: !noHairpin,
            controlPath: control ?? EngineSettings.defaultControlPath(queue: queueRange.lowerBound),
            metrics: try checkedMetricsEndpoint(), state: try checkedStateFile(), failOpen: failOpen,
            firewall: try checkedFirewall(), reserveLocalPortRange: try checkedReserveLocalPortRange(),
            audit: try checkedAudit(queue: queueRange.lowerBound, portBlocks: nat.portBlocks != nil),
            noNATDestinations: try checkedExclusions(lan: nat.internalPrefixes),
            ha: try checkedHA(), role: try checkedRole(), virtualAddress: try checkedVirtualAddress(),
            fastPath: try checkedFastPath(nat: nat),
            reversePathCheck: try checkedReversePathCheck(), workerCPUs: try checkedWorkerCPUs(),
            busyPollMicroseconds: try checkedBusyPoll())
    }

    /// Checks the options the translator itself takes (`--lan`, `--forward`, `--port-range`,
    /// `--helpers`, `--helper-ports`, `--filtering`, the caps and `--timeout`), in that order,
    /// each group in its own file; shared by `run` and `replay`. The external address is left unset.
    func checkedTranslation() throws(MasqdError) -> (nat: NATConfiguration, helperNames: [String]) {
        let prefixes = try checkedLANPrefixes()
        let forwards = try checkedForwards(prefixes: prefixes)
        let ports = try checkedPortRange()
        var nat = NATConfiguration(internalPrefixes: prefixes)
        nat.sourcePools = try checkedSourcePools(prefixes: prefixes)
        let helperNames: [String]
        (helperNames, nat.helpers) = try checkedHelpers()
        nat.forwards = forwards
        nat.ports = ports
        nat.portBlocks = try checkedPortBlocks(ports: ports)
        nat.redirects = try checkedRedirects()
        nat.maxRedirectSessions = try checkedMaxRedirectFlows()
        nat.maxRedirectSessionsPerHost = try checkedMaxRedirectFlowsPerHost()
        if let filtering = try checkedFiltering() { nat.filtering = filtering }
        try checkCaps(into: &nat)
        nat.newFlowsPerHost = try checkedNewFlowRate()
        try checkHelperShare(into: &nat.helperLimits)
        if let maxOtherFlows = try checkedMaxOtherFlows() { nat.maxAddressOnlyFlows = maxOtherFlows }
        try checkTimeouts(into: &nat.timeouts)
        try checkForwardsTogether(nat)
        return (nat, helperNames)
    }
}

/// One checked deployment: what `run` runs and what `rules` installs.
public struct EngineSettings: Sendable {
    /// The first queue; `queueCount` queues from it are bound, one worker each.
    public var queue: UInt16
    public var queueCount: UInt16 = 1
    public var wanInterface: String
    /// The translator's settings (the external address is filled in at start from --wan).
    public var nat: NATConfiguration
    public var helpers: [String]
    /// Install the hairpin rule (and allow the router's address as a source on the LAN side).
    public var hairpin: Bool
    public var controlPath: String

    public var internalPrefixes: [IPv4Prefix] { nat.internalPrefixes }
    public var forwards: [PortForward] { nat.forwards }

    public static func defaultControlPath(queue: UInt16) -> String { "/run/masqd/queue-\(queue).sock" }

    /// Where the Prometheus metrics are served (EngineOptions-Metrics.swift); nil: not served.
    public var metrics: MetricsEndpoint? = nil

    /// Where the translation state is saved and restored (EngineOptions-State.swift); nil: not saved.
    public var state: StateFileSettings? = nil

    /// `--fail-open`: the rules get --queue-bypass and the queues NFQUEUE's fail-open flag, so
    /// traffic passes untranslated rather than stopping when the engine cannot take it.
    public var failOpen: Bool = false

    /// `--firewall`: the tool that writes the rules; nil: the system's (FirewallChoice.systemDefault).
    public var firewall: FirewallChoice? = nil

    /// `--reserve-local-port-range`: the router's ip_local_port_range is kept out of mappings.
    public var reserveLocalPortRange: Bool = true

    /// `--audit-log`, `--ipfix-collector`: where NAT events go (EngineOptions-Audit.swift).
    public var audit = AuditSettings()
    /// `--no-nat-to`: destinations the rules leave out of the queue (EngineOptions-Exclusions.swift).
    public var noNATDestinations: [IPv4Prefix] = []
    /// `--sync-peer` and co. (EngineOptions-HA.swift): nil on a router without a peer.
    public var ha: HASettings? = nil
    /// `--role`: the role at start.
    public var role: RouterRole = .active
    /// `--virtual-address`: the fixed external address (a VRRP virtual address); nil: --wan's own.
    public var virtualAddress: IPv4Address? = nil

    /// `--fast-path` and its options (EngineOptions-FastPath.swift); nil: off.
    public var fastPath: FastPathSettings? = nil
    /// `--reverse-path-check`: the rules drop LAN-side packets whose source does not route back
    /// through their input interface (FirewallPlan).
    public var reversePathCheck: Bool = true
    /// `--worker-cpus`: the CPU of each packet worker, in queue order (wrapping); empty: not pinned.
    public var workerCPUs: [Int] = []
    /// `--busy-poll`: how long a worker polls the queue after a batch before it sleeps; 0: off.
    public var busyPollMicroseconds: Int = 0

    /// Every queue bound, in order.
    public var queueNumbers: [UInt16] { (0..<queueCount).map { queue + $0 } }
}
