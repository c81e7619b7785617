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
    /// The remote side opened the session (a port forward or endpoint-independent filtering).
    static let openedInbound: UInt8 = 4
    static let finBoth: UInt8 = finOutbound | finInbound

    /// The state after a packet with `flags` in one direction; `seen` holds FIN bits and the opener.
    @inline(__always)
    static func next(_ state: TCPSessionState, flags: TCPFlags, outbound: Bool, seen: inout UInt8) -> TCPSessionState {
        if flags.contains(.rst) { return .reset }
        if flags.contains(.syn), !flags.contains(.ack), state == .timeWait || state == .reset {
            // The same endpoints open a new connection: start over (port reuse after close).
            seen = outbound ? 0 : openedInbound
            return .opening
        }
        if state == .reset { return .reset } // only a new SYN (above) leaves it, even after a FIN
        if flags.contains(.fin) { seen |= outbound ? finOutbound : finInbound }
        if seen & finBoth == finBoth { return .timeWait }
        if seen & finBoth != 0 { return .closing }
        // Established once the side that did not open has answered.
        if state == .opening, outbound == (seen & openedInbound != 0) { return .established }
        return state
    }
}
