// Idle timeouts. Defaults meet RFC 4787 REQ-5 (UDP ≥ 2 min, 5 min recommended),
// RFC 5382 REQ-5 (TCP established ≥ 2 h 4 min, transitory ≥ 4 min) and RFC 5508 REQ-1
// (ICMP query ≥ 60 s). After a RST the kernel keeps 10 s; so do we.

public struct NATTimeouts: Sendable, Equatable {
    public var udp: NATDuration = .seconds(300)
    public var tcpEstablished: NATDuration = .seconds(7440)
    public var tcpTransitory: NATDuration = .seconds(240)
    /// A connection only one side has spoken on (a SYN unanswered): conntrack's SYN_SENT
    /// 120 s. Each retransmitted SYN renews it, and Linux's largest gap between them is 64 s,
    /// so a real connection attempt never loses its session; unanswered SYN floods (and
    /// inbound-opened attempts at a forward nobody answers) leave the tables twice as fast.
    public var tcpOpening: NATDuration = .seconds(120)
    public var tcpClosed: NATDuration = .seconds(10)
    public var icmp: NATDuration = .seconds(60)
    /// Address-only translations of the protocols without ports: conntrack's generic 600 s.
    public var other: NATDuration = .seconds(600)

    public init() {}

    @inline(__always)
    func timeout(protocolNumber: UInt8, tcpState: TCPSessionState) -> NATDuration {
        TransportProtocol(protocolNumber: protocolNumber)?.timeout(self, tcpState: tcpState) ?? icmp
    }
}
