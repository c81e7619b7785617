import NATCore
import PacketCapture

// `masqd replay`: the translation core run over a capture, the translated packets written to
// a new capture. Reading and checking the capture is here; the packet loop is ReplayRun.

public enum CaptureReplay {
    /// Replays the capture file `input` into the capture file `output`. Per-packet lines and
    /// then the summary line go to `report`.
    @discardableResult
    public static func run(_ settings: ReplaySettings, input: String, output: String,
                           report: (String) -> Void) throws(MasqdError) -> ReplaySummary {
        guard let bytes = try StateFile.read(input) else { throw MasqdError("\(input): no such file") }
        let (written, summary) = try replay(settings, capture: bytes, name: input, report: report)
        try StateFile.write(written, to: output)
        report(summary.line)
        return summary
    }

    /// Replays capture bytes; returns the output capture's bytes. `name` names the capture in errors.
    public static func replay(_ settings: ReplaySettings, capture: [UInt8], name: String = "capture",
                              report: (String) -> Void) throws(MasqdError) -> (output: [UInt8], summary: ReplaySummary) {
        let packets: [CapturedPacket]
        do {
            packets = try CaptureReader.readAll(capture)
        } catch {
            throw MasqdError("\(name): \(error)")
        }
        guard packets.count < Int(UInt32.max) else { throw MasqdError("\(name): too many packets") }
        if let index = packets.firstIndex(where: { !$0.linkType.isSupported }) {
            let supported = LinkType.supported.map(\.description).joined(separator: ", ")
            throw MasqdError("\(name): packet \(index + 1): link type \(packets[index].linkType) is not supported (\(supported))")
        }
        try checkInterfaces(settings.directions, packets, name: name)
        return try withoutActuallyEscaping(report) { (report) throws(MasqdError) in
            let run = ReplayRun(settings: settings, packets: packets, report: report)
            return try run.replayAll()
        }
    }

    /// Interface names given must be in the capture: a typo would otherwise leave every packet out.
    static func checkInterfaces(_ rules: ReplayDirectionRules, _ packets: [CapturedPacket], name: String) throws(MasqdError) {
        var names: [String] = []
        for packet in packets {
            if let interface = packet.interfaceName, !names.contains(interface) { names.append(interface) }
        }
        for (option, wanted) in [("--lan-interface", rules.lanInterface), ("--wan-interface", rules.wanInterface)] {
            guard let wanted else { continue }
            if names.isEmpty {
                throw .option(option, wanted, "\(name) names no interfaces (only pcapng's if_name does): leave it out to decide directions by address")
            }
            if !names.contains(wanted) {
                throw .option(option, wanted, "no packet of \(name) is on an interface of that name (it has: \(names.joined(separator: ", ")))")
            }
        }
    }
}
