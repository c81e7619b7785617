import CNetfilterQueue

/// What to do with a queued packet.
public enum PacketVerdict: Sendable, Equatable {
    /// NF_ACCEPT: let it continue (with the replacement payload, if one is given).
    case accept
    /// NF_DROP: discard it.
    case drop

    @inline(__always)
    var kernelValue: Int32 {
        switch self {
        case .accept: return Int32(CNFQ_NF_ACCEPT)
        case .drop: return Int32(CNFQ_NF_DROP)
        }
    }
}
