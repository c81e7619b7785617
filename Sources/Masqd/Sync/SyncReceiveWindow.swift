// Which of the peer's sequence numbers arrived: its epoch and a 64-message window, as
// IPsec's anti-replay check. A new, larger epoch is a restarted peer: the window starts
// again; an older one is stale while the current one is heard. Once the current epoch has
// fallen silent (the caller says so), an older one is taken as a restart too: a peer whose
// wall clock stepped back across its restart (an RTC reset, NTP not yet synced) would
// otherwise be refused until this router restarts. The cost: messages recorded from an
// older life of the peer can be replayed while the peer is silent (they carry the valid MAC);
// they bring back old state, not forged state. No imports (compiled into the fuzz target).

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

    /// Whether `sequence` of `epoch` is new; records it if so. `currentSilent`: the current
    /// epoch has not been heard for the peer timeout (an older epoch is then a restart).
    mutating func admit(epoch: UInt64, sequence: UInt64, currentSilent: Bool = false) -> Verdict {
        var newEpoch = false
        if epoch != self.epoch {
            guard epoch > self.epoch || currentSilent else { return .drop(.stale) }
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
