// Which of the peer's sequence numbers arrived: its epoch and a 64-message window, as
// IPsec's anti-replay check. A new, larger epoch is a restarted peer: the window starts
// again; an older one is stale. No imports (compiled into the fuzz target).

struct SyncReceiveWindow: Sendable, Equatable {
    enum Verdict: Equatable, Sendable {
        case accept(newEpoch: Bool)
        case drop(SyncDropReason)
    }

    private(set) var epoch: UInt64 = 0
    private(set) var highest: UInt64 = 0
    /// Bit i: sequence `highest - i` arrived.
    private var seen: UInt64 = 0
    static let width: UInt64 = 64

    init() {}

    /// Whether `sequence` of `epoch` is new; records it if so.
    mutating func admit(epoch: UInt64, sequence: UInt64) -> Verdict {
        var newEpoch = false
        if epoch != self.epoch {
            guard epoch > self.epoch else { return .drop(.stale) }
            self = SyncReceiveWindow()
            self.epoch = epoch
            newEpoch = true
        }
        if sequence > highest {
            let shift = sequence - highest
            seen = shift >= Self.width ? 1 : (seen << shift) | 1
            highest = sequence
        } else {
            let age = highest - sequence
            guard age < Self.width else { return .drop(.stale) }
            guard seen & (1 << age) == 0 else { return .drop(.replayed) }
            seen |= 1 << age
        }
        return .accept(newEpoch: newEpoch)
    }
}
