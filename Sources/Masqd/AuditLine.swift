import Glibc
import NATCore

// The journal line of a NAT event (--audit-log). Stable and greppable: one event per line,
// `key=value` fields in a fixed order, nothing with spaces inside a value:
//
//   nat-event mapping-created proto=tcp internal=192.0.2.10:40000 external=203.0.113.1:40000 reason=outbound time=2026-12-04T02:43:49.123Z
//   nat-event session-removed proto=udp internal=192.0.2.10:5353 external=203.0.113.1:5353 remote=198.51.100.5:53 reason=expired time=…
//
// `remote=` only on session, address-only and redirect lines; ICMP echo shows its identifiers
// as the ports; `time` is UTC with milliseconds (when the translator made the event, not when
// the line was written). `proto=` is the IANA keyword of the protocols masqd names (tcp, udp,
// icmp, gre, esp, ah, sctp, dccp, udplite), else the number. A port block (--port-block-size)
// has no protocol and no internal port; `external=` is the block's address and its first and
// last ports:
//
//   nat-event port-block-allocated internal=192.0.2.10 external=203.0.113.1:1024-1087 reason=outbound time=…
//
// An address-only row (a protocol without ports) has addresses only; a redirected connection
// has the router's address and local port it was delivered to as `external=`, the destination
// the client dialled as `remote=`:
//
//   nat-event address-only-created proto=esp internal=192.0.2.10 external=203.0.113.1 remote=198.51.100.5 reason=outbound time=…
//   nat-event redirect-created proto=tcp internal=192.0.2.10:40000 external=192.0.2.1:3128 remote=203.0.113.2:80 reason=outbound time=…

enum AuditLine {
    static func text(_ event: NATEvent, milliseconds: UInt64) -> String {
        if event.kind.isPortBlock {
            let ports = event.blockPorts
            return "nat-event \(event.kind) internal=\(IPv4Address(event.internalAddress))"
                + " external=\(IPv4Address(event.externalAddress)):\(ports.lowerBound)-\(ports.upperBound)"
                + " reason=\(event.reason) time=\(utcTimestamp(milliseconds: milliseconds))"
        }
        let ports = !event.kind.isAddressOnly
        func endpoint(_ address: UInt32, _ port: UInt16) -> String { ports ? "\(IPv4Address(address)):\(port)" : "\(IPv4Address(address))" }
        var line = "nat-event \(event.kind) proto=\(protocolName(event.protocolNumber))"
        line += " internal=\(endpoint(event.internalAddress, event.internalPort))"
        line += " external=\(endpoint(event.externalAddress, event.externalPort))"
        if event.kind.hasRemote { line += " remote=\(endpoint(event.remoteAddress, event.remotePort))" }
        line += " reason=\(event.reason) time=\(utcTimestamp(milliseconds: milliseconds))"
        return line
    }

    static func protocolName(_ number: UInt8) -> String { IPProtocolNumber.name(number) ?? "\(number)" }

    /// `YYYY-MM-DDTHH:MM:SS.mmmZ`.
    static func utcTimestamp(milliseconds: UInt64) -> String {
        var seconds = time_t(milliseconds / 1000)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func two(_ n: Int32) -> String { n < 10 ? "0\(n)" : "\(n)" }
        let ms = Int(milliseconds % 1000)
        let msText = ms < 10 ? "00\(ms)" : ms < 100 ? "0\(ms)" : "\(ms)"
        return "\(parts.tm_year + 1900)-\(two(parts.tm_mon + 1))-\(two(parts.tm_mday))T\(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec)).\(msText)Z"
    }
}
