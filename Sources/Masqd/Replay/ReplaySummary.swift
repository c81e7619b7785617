import NATCore

// What a replay did, counted, and the one line that says so at the end.

public struct ReplaySummary: Sendable {
    public internal(set) var read = 0
    /// Packets handed to the translator (fragments included), by direction.
    public internal(set) var outbound = 0
    public internal(set) var inbound = 0
    public internal(set) var hairpin = 0
    /// Left out: no direction across the NAT (seen after translation, LAN to LAN, …).
    public internal(set) var notTranslated = 0
    /// Frames of another protocol: written unchanged, or left out of a raw-IP output.
    public internal(set) var notIPv4Written = 0
    public internal(set) var notIPv4LeftOut = 0
    /// Drops by reason, in the order each reason first happened.
    public internal(set) var drops: [(reason: String, count: Int)] = []
    public internal(set) var written = 0
    public internal(set) var fragmentsHeld = 0
    public internal(set) var datagramsReassembled = 0
    /// Non-zero helper events, `masqd stats` names (`ftp_rewrites`).
    public internal(set) var helperEvents: [(name: String, count: UInt64)] = []
    public internal(set) var outputLinkType: UInt16 = 0

    public var dropped: Int { drops.reduce(0) { $0 + $1.count } }

    public func drops(_ reason: String) -> Int { drops.first { $0.reason == reason }?.count ?? 0 }

    mutating func countDrop(_ reason: String) {
        if let index = drops.firstIndex(where: { $0.reason == reason }) {
            drops[index].count += 1
        } else {
            drops.append((reason, 1))
        }
    }

    /// The summary line.
    public var line: String {
        var text = "replay: read \(read): \(outbound) outbound, \(inbound) inbound, \(hairpin) hairpin, "
        text += "\(notTranslated) not translated (left out), "
        text += "\(notIPv4Written + notIPv4LeftOut) not IPv4 (\(notIPv4Written) written, \(notIPv4LeftOut) left out); "
        text += "dropped \(dropped)"
        if !drops.isEmpty { text += " (" + drops.map { "\($0.reason) \($0.count)" }.joined(separator: ", ") + ")" }
        text += "; written \(written) (link type \(outputLinkType))"
        text += "; fragments held \(fragmentsHeld), datagrams reassembled \(datagramsReassembled)"
        text += "; helper events: " + (helperEvents.isEmpty ? "none" : helperEvents.map { "\($0.name) \($0.count)" }.joined(separator: ", "))
        return text
    }
}

/// The per-packet lines on stderr.
enum ReplayReport {
    /// `replay: packet 7 (0.012345 s): dropped: spoofed_source`
    static func dropped(_ number: Int, at time: UInt64, _ reason: String) -> String {
        "replay: packet \(number) (\(seconds(time)) s): dropped: \(reason)"
    }

    static func notTranslated(_ number: Int, at time: UInt64, source: IPv4Address, destination: IPv4Address, _ why: String) -> String {
        "replay: packet \(number) (\(seconds(time)) s): not translated: \(source) -> \(destination), \(why)"
    }

    /// Nanoseconds as seconds with six decimals.
    static func seconds(_ nanoseconds: UInt64) -> String {
        let micro = nanoseconds / 1000
        let fraction = String(micro % 1_000_000)
        return "\(micro / 1_000_000)." + String(repeating: "0", count: 6 - fraction.count) + fraction
    }

    /// The name a drop has in `masqd stats`, without `drop_`: the translator's reasons as they
    /// are, the reassembler's with `fragment_` (`fragments_drop_overlap` there).
    static func name(_ cause: PacketDropCause) -> String {
        switch cause {
        case .translator(let reason): "\(reason)"
        case .fragment(let reason): "fragment_\(reason)"
        }
    }
}
