import ArgumentParser
import Masqd

// `masqd replay INPUT OUTPUT`: argument parsing only; CaptureReplay (Masqd) does the work.
// The translator's options have `masqd run`'s names and are checked by the same code.

struct Replay: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "replay",
        abstract: "Translate the packets of a pcap or pcapng capture and write them to a new pcap capture.",
        discussion: """
            Directions come from --lan-interface/--wan-interface (pcapng interface names) when given, \
            else from addresses: from a --lan prefix = outbound (hairpin to --wan-address), \
            to --wan-address from outside = inbound, anything else is left out. Drops and packets left \
            out are reported on stderr, one line each, then a summary line.
            """)

    @Argument(help: "The capture to replay (pcap or pcapng).") var input: String
    @Argument(help: "The pcap file to write the translated packets to.") var output: String

    @Option(name: .long, help: "The WAN address packets are masqueraded behind.")
    var wanAddress: String?

    @Option(name: .long, help: "Internal prefix whose traffic is translated (repeatable; at least one).")
    var lan: [String] = []

    @Option(name: .long, help: "pcapng interface name (if_name) of the LAN side: packets on it from a --lan prefix are outbound or hairpin.")
    var lanInterface: String?

    @Option(name: .long, help: "pcapng interface name (if_name) of the WAN side: packets on it not from --wan-address are inbound.")
    var wanInterface: String?

    @Option(name: .long, help: "Port forward PROTO:PORT[-PORT]=ADDR[:PORT] (repeatable).")
    var forward: [String] = []

    @Option(name: .long, help: "External ports handed out for mappings, A-B. Default: 1024-65535, ports below 1024 stay below 1024.")
    var portRange: String?

    @Option(name: .long, help: "Application helpers: a comma-separated list of ftp, irc, tftp, sip, or none. Default: as for masqd run (ftp,irc,tftp).")
    var helpers: String?

    @Option(name: .long, help: "Ports a helper follows, NAME=[tcp:|udp:]PORT[,…] (repeatable).")
    var helperPorts: [String] = []

    @Option(name: .long, help: "Inbound filtering: address-and-port-dependent (default) or endpoint-independent.")
    var filtering: String?

    @Option(name: .long, help: "Cap on live translations (sessions) in total. Default 262144.")
    var maxFlows: String?

    @Option(name: .long, help: "Cap on live translations of one internal address. Default 32768.")
    var maxFlowsPerHost: String?

    @Option(name: .long, help: "Helper connections (and pending expectations) one internal host may hold. Default 128.")
    var maxHelperFlowsPerHost: String?

    @Option(name: .long, help: "Idle timeout NAME=SECONDS (repeatable); NAME: udp, tcp-established, tcp-transitory, tcp-opening, tcp-closed, icmp.")
    var timeout: [String] = []

    func run() throws {
        var options = ReplayOptions()
        options.wanAddress = wanAddress
        options.lan = lan
        options.lanInterface = lanInterface
        options.wanInterface = wanInterface
        options.forward = forward
        options.portRange = portRange
        options.helpers = helpers
        options.helperPorts = helperPorts
        options.filtering = filtering
        options.maxFlows = maxFlows
        options.maxFlowsPerHost = maxFlowsPerHost
        options.maxHelperFlowsPerHost = maxHelperFlowsPerHost
        options.timeout = timeout
        let settings = try options.settings()
        var stderr = StandardError()
        try CaptureReplay.run(settings, input: input, output: output) { line in print(line, to: &stderr) }
    }
}
