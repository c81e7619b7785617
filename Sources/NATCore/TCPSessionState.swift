// The little TCP state a NAT needs to pick the right idle timeout (RFC 5382 REQ-5):
// a session is transitory until the remote side has answered, established after that,
// transitory again once a FIN is seen, and short-lived after a RST.

public enum TCPSessionState: UInt8, Sendable, BitwiseCopyable, CustomStringConvertible {
    case none = 0          // not TCP
    case opening           // only the internal side has spoken (SYN sent, or picked up mid-stream)
    case established       // both sides have spoken
    case closing           // one FIN seen
    case timeWait          // FINs seen both ways
    case reset             // RST seen

    public var description: String {
        switch self {
        case .none: "-"
        case .opening: "OPENING"
        case .established: "ESTABLISHED"
        case .closing: "CLOSING"
        case .timeWait: "TIME_WAIT"
        case .reset: "CLOSED"
        }
    }

    static let finOutbound: UInt8 = 1
    static let finInbound: UInt8 = 2

    /// The state after a packet with `flags` in one direction; `seen` accumulates FIN bits.
    @inline(__always)
    static func next(_ state: TCPSessionState, flags: TCPFlags, outbound: Bool, seen: inout UInt8) -> TCPSessionState {
        if flags.contains(.rst) { return .reset }
        if outbound, flags.contains(.syn), !flags.contains(.ack), state == .timeWait || state == .reset {
            // The same endpoints open a new connection: start over (port reuse after close).
            seen = 0
            return .opening
        }
        if flags.contains(.fin) { seen |= outbound ? finOutbound : finInbound }
        if seen == finOutbound | finInbound { return .timeWait }
        if seen != 0 { return .closing }
        if state == .opening, !outbound { return .established }
        if state == .reset { return .reset }
        return state
    }
}
