import NATCore

// `--timeout NAME=SECONDS` (repeatable): the idle timeouts by protocol and TCP state.

extension EngineOptions {
    func checkTimeouts(into timeouts: inout NATTimeouts) throws(MasqdError) {
        for text in timeout {
            let pieces = text.split(separator: "=", omittingEmptySubsequences: false)
            guard pieces.count == 2, let seconds = UInt64(pieces[1]), (1...86_400 * 7).contains(seconds) else {
                throw .option("--timeout", text, "expected NAME=SECONDS with 1 <= SECONDS <= 604800")
            }
            let duration = NATDuration.seconds(seconds)
            switch pieces[0] {
            case "udp": timeouts.udp = duration
            case "tcp-established": timeouts.tcpEstablished = duration
            case "tcp-transitory": timeouts.tcpTransitory = duration
            case "tcp-opening": timeouts.tcpOpening = duration
            case "tcp-closed": timeouts.tcpClosed = duration
            case "icmp": timeouts.icmp = duration
            case "other": timeouts.other = duration
            default: throw .option("--timeout", text, "unknown timeout '\(pieces[0])' (udp, tcp-established, tcp-transitory, tcp-opening, tcp-closed, icmp, other)")
            }
        }
    }
}
